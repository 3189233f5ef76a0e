"""The data report of a pipeline run: one self-contained HTML page (plots inline as base64 PNG).

Reads OUT/<stage>/stats.json and the Parquet parts each stage's `_SUCCESS` lists, with pyarrow only (no
Spark): parts are streamed a row group at a time and only aggregates (counts, fixed-bin histograms, a
bounded top-k of clusters, a few excerpts) are kept, so memory does not grow with the corpus.
A stage that has not committed is shown as missing; the rest of the report still renders.
"""
from __future__ import annotations

import base64
import heapq
import html
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import storage
from pipeline import stages
from pipeline.stages import STAGES
from pipeline.stages.config import PipelineConfig
from pipeline.stagedir import listed_files

DOC_STAGES = tuple(e.name for e in stages.REGISTRY if e.documents)  # stages whose data/ holds documents
# Document length bins in characters: [0, 1), then 8 log-spaced bins per decade up to 10 M (the last is open-ended).
BINS_PER_DECADE = 8
LENGTH_EDGES = np.concatenate([[0], 10 ** (np.arange(7 * BINS_PER_DECADE + 1) / BINS_PER_DECADE)])
EXCERPT_CHARS = 300
SAMPLES_PER_REASON = 3
TOP_CLUSTERS = 5
MEMBERS_SHOWN = 6
TOP_LANGS = 20
# A language of this many documents gets its own row in the languages table, however many come before it:
# one with enough documents to be judged never hides in "other" (filter.at_risk_min_docs' default).
LISTED_LANG_DOCS = 20
DROP_REASONS_SHOWN = 2  # per language in the languages table
BATCH_ROWS = 4096


# ---------------------------------------------------------------------------------------------- reading


def batches(files: list[str], columns: list[str]):
    """Record batches of `columns`, BATCH_ROWS rows at a time, so no whole part is ever in memory."""
    for uri in files:
        fs, path = storage.resolve(uri)
        with fs.open_input_file(path) as f:
            yield from pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS, columns=columns)


def excerpt(text: str | None, n: int = EXCERPT_CHARS) -> str:
    if text is None:
        return ""
    return text if len(text) <= n else text[:n] + " …"


@dataclass
class StageData:
    """Aggregates of one document stage's data/ parts."""

    documents: int = 0
    chars: int = 0
    text_bytes: int = 0
    parquet_bytes: int = 0
    length_hist: np.ndarray = field(default_factory=lambda: np.zeros(len(LENGTH_EDGES), dtype=np.int64))


def scan_documents(stage_uri: str, want_ids: set[str] = frozenset()) -> tuple[StageData, dict[str, str]]:
    """Stream a stage's data/: counts, text size, length histogram; plus the text of `want_ids`."""
    agg = StageData()
    found: dict[str, str] = {}
    files = listed_files(stage_uri, "data")
    agg.parquet_bytes = sum(storage.size(f) for f in files)
    wanted = pa.array(sorted(want_ids), type=pa.string())
    for b in batches(files, ["id", "text"]):
        text = b.column("text")
        chars = pc.utf8_length(text).to_numpy(zero_copy_only=False)
        agg.documents += b.num_rows
        agg.chars += int(chars.sum())
        agg.text_bytes += int(pc.sum(pc.binary_length(text)).as_py() or 0)
        bins = np.searchsorted(LENGTH_EDGES, chars, side="right") - 1
        agg.length_hist += np.bincount(bins, minlength=len(LENGTH_EDGES))
        if len(wanted):
            hit = b.filter(pc.is_in(b.column("id"), value_set=wanted))
            found.update(zip(hit.column("id").to_pylist(), hit.column("text").to_pylist()))
    return agg, found


def largest_clusters(dedupe_uri: str, k: int = TOP_CLUSTERS) -> list[tuple[int, str, list[tuple[str, bool]]]]:
    """The k largest duplicate clusters as (size, cluster_id, [(id, kept)]): the kept member first, then up to
    MEMBERS_SHOWN - 1 dropped ones.

    dedupe hashes cluster_id into its cluster parts, so a cluster lies within one part: sizes are counted per
    part and only the top k survive across parts."""
    files = listed_files(dedupe_uri, "clusters")
    top: list[tuple[int, str]] = []
    for uri in files:
        sizes: Counter = Counter()
        for b in batches([uri], ["cluster_id"]):
            for row in pa.table({"c": b.column("cluster_id")}).group_by("c").aggregate([([], "count_all")]).to_pylist():
                sizes[row["c"]] += row["count_all"]
        for cid, n in sizes.items():
            item = (n, cid)
            if len(top) < k:
                heapq.heappush(top, item)
            elif item > top[0]:
                heapq.heapreplace(top, item)
    chosen = {cid for _, cid in top}
    members: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    if chosen:
        value_set = pa.array(sorted(chosen), type=pa.string())
        for b in batches(files, ["id", "cluster_id", "kept"]):
            hit = b.filter(pc.is_in(b.column("cluster_id"), value_set=value_set))
            for cid, i, kept in zip(*(hit.column(c).to_pylist() for c in ("cluster_id", "id", "kept"))):
                if kept or len(members[cid]) < MEMBERS_SHOWN:
                    members[cid].append((i, kept))
    ranked = sorted(top, key=lambda t: (-t[0], t[1]))
    return [(n, cid, sorted(members[cid], key=lambda m: (not m[1], m[0]))[:MEMBERS_SHOWN]) for n, cid in ranked]


def sample_rows(files: list[str], columns: list[str], per_reason: int = SAMPLES_PER_REASON) -> dict[str, list[dict]]:
    """Up to `per_reason` rows of each `reason` in dropped/ or rejected/ parts (already bounded audit samples)."""
    out: dict[str, list[dict]] = defaultdict(list)
    for b in batches(files, columns + ["reason"]):
        for row in b.to_pylist():
            rows = out[row["reason"] or "unknown"]
            if len(rows) < per_reason:
                rows.append(row)
    return dict(sorted(out.items()))


# ---------------------------------------------------------------------------------------------- plots


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    alt = _esc(fig.axes[0].get_title())
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return f'<img alt="{alt}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode("ascii")}">'


def _figure(width: float = 8, height: float = 4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def plot_funnel(stages: list[str], documents: list[int]) -> str:
    fig, ax = _figure(7, 3)
    ax.bar(stages, documents, color="#4477aa")
    for x, n in enumerate(documents):
        ax.annotate(f"{n:,}", (x, n), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("documents")
    ax.set_title("Documents after each stage")
    return _png(fig)


def plot_drops(drops: list[tuple[str, str, int]]) -> str:
    """Horizontal bars, one per (stage, reason), largest first."""
    drops = sorted(drops, key=lambda d: -d[2])
    fig, ax = _figure(8, max(2.5, 0.25 * len(drops) + 1))
    labels = [f"{s}: {r}" for s, r, _ in drops]
    ax.barh(labels[::-1], [n for _, _, n in drops][::-1], color="#cc6677")
    ax.set_xlabel("documents")
    ax.set_title("Dropped and rejected documents by reason")
    return _png(fig)


def plot_langs(rows: list[tuple[str, float, int]]) -> str:
    fig, ax = _figure(8, max(3, 0.3 * len(rows) + 1))
    y = np.arange(len(rows))[::-1]
    ax.barh(y + 0.2, [b for _, b, _ in rows], height=0.4, label="before filter", color="#bbbbbb")
    ax.barh(y - 0.2, [a for _, _, a in rows], height=0.4, label="after filter", color="#228833")
    ax.set_yticks(y, [lang for lang, _, _ in rows])
    ax.set_xscale("symlog")
    ax.set_xlabel("documents (symlog)")
    ax.legend()
    ax.set_title("Languages before and after filtering")
    return _png(fig)


def plot_lengths(hists: dict[str, np.ndarray]) -> str:
    fig, ax = _figure(8, 4)
    edges = np.maximum(np.append(LENGTH_EDGES, LENGTH_EDGES[-1] * 10 ** (1 / BINS_PER_DECADE)), 0.5)
    for stage, hist in hists.items():
        ax.stairs(hist, edges, label=stage)
    used = np.flatnonzero(np.sum(list(hists.values()), axis=0))
    if len(used):
        ax.set_xlim(edges[used[0]], edges[used[-1] + 1])
    ax.set_xscale("log")
    ax.set_xlabel("document length (characters, log bins)")
    ax.set_ylabel("documents")
    ax.legend()
    ax.set_title("Document length per stage")
    return _png(fig)


def plot_cluster_sizes(hist: dict[int, int]) -> str:
    fig, ax = _figure(7, 3)
    sizes = sorted(hist)
    ax.bar([str(s) for s in sizes], [hist[s] for s in sizes], color="#aa3377")
    ax.set_yscale("log")
    ax.set_xlabel("cluster size (documents)")
    ax.set_ylabel("clusters (log)")
    ax.set_title("Duplicate cluster sizes")
    return _png(fig)


# ---------------------------------------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;
vertical-align:top}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.4em;margin:0;max-height:12em;overflow:auto;font-size:85%}
img{max-width:100%}.note{color:#666;font-size:90%}section{margin-bottom:2.5em}
.alarm{border-left:6px solid #cc3311;background:#fdf0ed;padding:.2em 1em;margin:1em 0}
"""


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


class Raw(str):
    """Markup already escaped (a <pre> of escaped text) to put in a table cell as is."""


def _table(header: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    def cell(tag, i, v):
        cls = ' class="n"' if i in numeric else ""
        if isinstance(v, float):
            v = f"{v:,.2f}"
        elif isinstance(v, int):
            v = f"{v:,}"
        raw = v if isinstance(v, Raw) else _esc(v)
        return f"<{tag}{cls}>{raw}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _pre(text: str | None) -> Raw:
    return Raw(f"<pre>{_esc(excerpt(text))}</pre>")


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_esc(title)}</h2>\n{body}\n</section>'


def _read_stats(out: str) -> dict[str, dict]:
    stats = {}
    for stage in STAGES:
        uri = storage.join(out, stage)
        if storage.exists(storage.join(uri, "_SUCCESS")):
            stats[stage] = json.loads(storage.read_bytes(storage.join(uri, "stats.json")))
    return stats


def build(out: str) -> str:
    """The HTML report of the pipeline run in OUT (the directory holding clean/, filter/, dedupe/, tokenize/)."""
    stats = _read_stats(out)
    if not stats:
        raise FileNotFoundError(f"no committed stage under {storage.display(out)} (looked for {', '.join(STAGES)})")
    stage_uri = {s: storage.join(out, s) for s in STAGES}

    clusters = largest_clusters(stage_uri["dedupe"]) if "dedupe" in stats else []
    want = {i for _, _, members in clusters for i, _ in members}
    data: dict[str, StageData] = {}
    texts: dict[str, str] = {}
    for stage in DOC_STAGES:
        if stage in stats:
            data[stage], found = scan_documents(stage_uri[stage], want if stage == "clean" else set())
            texts.update(found)

    sections = [
        _summary(out, stats),
        _funnel(stats, data),
        _drops(stats),
        _filter_changes(stats),
        _languages(stats),
        _lengths(data),
        _dedup(stats, clusters, texts),
        _samples(stats, stage_uri),
        _throughput(stats, data),
    ]
    toc = "".join(f'<li><a href="#{sid}">{_esc(title)}</a></li>' for sid, title in SECTION_TITLES.items())
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>corpusforge report: {_esc(storage.display(out))}</title><style>{CSS}</style></head><body>\n"
        f"<h1>corpusforge data report</h1>{_at_risk(stats)}<ul>{toc}</ul>\n" + "\n".join(sections)
        + "\n</body></html>\n"
    )


SECTION_TITLES = {
    "summary": "Run",
    "funnel": "Funnel: documents, tokens and bytes per stage",
    "drops": "Drops by reason",
    "filter-changes": "Filter: main-content rescues and PII replacements",
    "languages": "Languages before and after filtering",
    "lengths": "Document lengths",
    "dedup": "Duplicate clusters",
    "samples": "Dropped and rejected documents",
    "throughput": "Time and throughput",
}


def _missing(stage: str) -> str:
    return f'<p class="note">The {stage} stage has not committed in this run.</p>'


def _summary(out: str, stats: dict) -> str:
    # A stage the default settings do not run (decontamination without benchmarks) is listed when it ran.
    default = {e.name for e in stages.enabled(PipelineConfig())}
    rows = [[s, "committed" if s in stats else "missing"] for s in STAGES if s in stats or s in default]
    body = f"<p>Run directory: <code>{_esc(storage.display(out))}</code></p>" + _table(["stage", "status"], rows)
    pipeline_json = storage.join(out, "pipeline.json")
    if storage.exists(pipeline_json):
        seconds = json.loads(storage.read_bytes(pipeline_json)).get("seconds")
        body += f"<p>Whole pipeline: {seconds:,.1f} s (pipeline.json).</p>"
    return _section("summary", SECTION_TITLES["summary"], body)


def _funnel(stats: dict, data: dict[str, StageData]) -> str:
    rows, names, docs = [], [], []
    if "clean" in stats:
        rows.append(["input records", stats["clean"]["input"], "", "", ""])
        names.append("input")
        docs.append(stats["clean"]["input"])
    for stage in STAGES:
        if stage not in stats:
            continue
        s = stats[stage]
        if stage == "tokenize":
            tokens = sum(s.get("tokens", {}).values())
            text_bytes = sum(s.get("text_bytes", {}).values())
            rows.append([stage, s["kept"], tokens, text_bytes, ""])
        else:
            d = data[stage]
            rows.append([stage, s["kept"], "", d.text_bytes, d.parquet_bytes])
        names.append(stage)
        docs.append(s["kept"])
    body = _table(["after stage", "documents", "tokens", "text bytes (UTF-8)", "Parquet bytes"], rows, {1, 2, 3, 4})
    body += ('<p class="note">Documents from stats.json; text bytes summed over the streamed data/ parts '
             "(tokenize: manifest text_bytes); tokens exist only after tokenize (train + val).</p>")
    body += plot_funnel(names, docs)
    return _section("funnel", SECTION_TITLES["funnel"], body)


def _drops(stats: dict) -> str:
    rows, drops = [], []
    for stage in STAGES:
        if stage not in stats:
            continue
        for kind in ("dropped", "rejected"):
            for reason, n in sorted(stats[stage].get(kind, {}).items(), key=lambda kv: -kv[1]):
                share = n / stats[stage]["input"] if stats[stage]["input"] else 0.0
                rows.append([stage, kind, reason, n, f"{100 * share:.2f} %"])
                drops.append((stage, reason, n))
    if not rows:
        return _section("drops", SECTION_TITLES["drops"], "<p>No document was dropped or rejected.</p>")
    body = _table(["stage", "kind", "reason", "documents", "of stage input"], rows, {3, 4}) + plot_drops(drops)
    return _section("drops", SECTION_TITLES["drops"], body)


def _at_risk(stats: dict) -> str:
    """The languages the filter kept far less often than the rest, above the sections: a loss the run-wide
    figures below hide."""
    at_risk = stats.get("filter", {}).get("languages_at_risk")
    if not at_risk:
        return ""
    s = stats["filter"]
    rows = [[lang, r["documents"], r["kept"], f"{100 * r['keep_rate']:.1f} %",
             ", ".join(f"{reason} {n:,}" for reason, n in r["drop_reasons"].items()),
             " ".join(f"{q} {v:.3f}" for q, v in r["score_quantiles"].items())]
            for lang, r in at_risk.items()]
    body = (f'<p>The filter kept {s["kept"]:,} of {s["input"]:,} documents ({100 * s["kept"] / s["input"]:.1f} %), '
            "but these languages far less often (filter/stats.json <code>languages_at_risk</code>): the rules or "
            "the language-ID model may serve them badly.</p>")
    body += _table(["lang", "documents", "kept", "kept %", "largest drop reasons", "language score quantiles"],
                   rows, {1, 2, 3})
    return f'<div class="alarm" id="languages-at-risk"><h2>Languages at risk</h2>\n{body}\n</div>'


def _filter_changes(stats: dict) -> str:
    """What the filter changed in the text of documents, which the drop counts do not show."""
    title = SECTION_TITLES["filter-changes"]
    if "filter" not in stats:
        return _section("filter-changes", title, _missing("filter"))
    s = stats["filter"]
    pii = s.get("pii", {})
    words = s.get("lang_words")
    rows = [["kept with their extracted main content", s.get("main_content_extracted", "")],
            ["kept under their language's minimum score, vouched for by its commonest words",
             "" if words is None else sum(w["vouched"] for w in words.values())],
            ["e-mail addresses replaced by <EMAIL>", pii.get("email", "")],
            ["public IP addresses replaced by <IP>", pii.get("ip", "")]]
    body = _table(["change", "count"], rows, {1})
    body += ('<p class="note">From filter/stats.json (empty: not recorded in this run). A rescued document failed a '
             "rule as a whole page and passed every rule as its jusText main content; a vouched document scored "
             "under its language's threshold but holds that language's commonest words at half their typical "
             "share or more (filter/stats.json lang_words, per language); PII placeholders are counted in the kept "
             "and dropped text.</p>")
    return _section("filter-changes", title, body)


def _languages(stats: dict) -> str:
    if "filter" not in stats:
        return _section("languages", SECTION_TITLES["languages"], _missing("filter"))
    counts = stats["filter"].get("languages")
    if counts is None:
        return _section("languages", SECTION_TITLES["languages"],
                        '<p class="note">This run\'s filter/stats.json has no per-language counts.</p>')
    rows = [(lang, c["kept"] + sum(c["dropped"].values()) + sum(c["rejected"].values()), c["kept"], c["dropped"])
            for lang, c in counts.items()]  # stats.json lists languages by document count
    top = [r for i, r in enumerate(rows) if i < TOP_LANGS or r[1] >= LISTED_LANG_DOCS]
    rest = [r for i, r in enumerate(rows) if i >= TOP_LANGS and r[1] < LISTED_LANG_DOCS]
    if rest:
        other: Counter = Counter()
        for *_, dropped in rest:
            other.update(dropped)
        top.append(("other", sum(r[1] for r in rest), sum(r[2] for r in rest), dict(other)))
    body = (
        '<p class="note">Every document the filter read, by the language it identified, and the ones it kept, '
        "with the reasons that dropped most of the others (filter/stats.json: exact counts). A language kept "
        "far less often than the rest is one the rules or the language-ID model serve badly. Every language of "
        f"{LISTED_LANG_DOCS} or more documents has its own row; \"other\" sums the smaller ones after the "
        f"{TOP_LANGS} largest.</p>"
    )
    cells = [[lang, before, after, f"{100 * after / before:.1f} %" if before else "",
              ", ".join(f"{reason} {n:,}" for reason, n in Counter(dropped).most_common(DROP_REASONS_SHOWN))]
             for lang, before, after, dropped in top]
    body += _table(["lang", "before filter", "after filter", "kept", "largest drop reasons"], cells, {1, 2, 3})
    body += plot_langs([(lang, before, after) for lang, before, after, _ in top])
    return _section("languages", SECTION_TITLES["languages"], body)


def _lengths(data: dict[str, StageData]) -> str:
    if not data:
        return _section("lengths", SECTION_TITLES["lengths"], _missing("clean"))
    rows = [[s, d.documents, d.chars, round(d.chars / d.documents) if d.documents else 0] for s, d in data.items()]
    body = _table(["stage", "documents", "characters", "mean characters"], rows, {1, 2, 3})
    body += plot_lengths({s: d.length_hist for s, d in data.items()})
    return _section("lengths", SECTION_TITLES["lengths"], body)


def _dedup(stats: dict, clusters: list, texts: dict[str, str]) -> str:
    if "dedupe" not in stats:
        return _section("dedup", SECTION_TITLES["dedup"], _missing("dedupe"))
    s = stats["dedupe"]
    hist = {int(k): v for k, v in s.get("cluster_size_histogram", {}).items()}
    keys = ["exact_duplicates", "near_duplicates", "candidate_edges", "verified_edges", "rejected_edges", "cc_rounds",
            "cc_driver_edges"]
    body = _table(["measure", "value"], [[k, s[k]] for k in keys if k in s], {1})
    if hist:
        body += _table(["cluster size", "clusters"], [[k, hist[k]] for k in sorted(hist)], {0, 1})
        body += plot_cluster_sizes(hist)
    if clusters:
        body += f"<h3>The {len(clusters)} largest clusters</h3>"
        rows = []
        for size, cid, members in clusters:
            for i, kept in members:
                rows.append([cid, size, i, "kept" if kept else "dropped", _pre(texts.get(i))])
        body += _table(["cluster", "size", "id", "decision", "text (from clean/data)"], rows, {1})
    else:
        body += "<p>No duplicate clusters.</p>"
    return _section("dedup", SECTION_TITLES["dedup"], body)


def _samples(stats: dict, stage_uri: dict[str, str]) -> str:
    body = ""
    for stage in DOC_STAGES:
        if stage not in stats:
            continue
        samples = sample_rows(listed_files(stage_uri[stage], "dropped"), ["id", "text"])
        if samples:
            rows = [[reason, r["id"], _pre(r["text"])] for reason, rs in samples.items() for r in rs]
            body += f"<h3>{stage}: dropped</h3>" + _table(["reason", "id", "text"], rows)
    if "clean" in stats:
        rejected = sample_rows(listed_files(stage_uri["clean"], "rejected"), ["file", "line", "detail", "excerpt"])
        if rejected:
            rows = [[reason, r["file"], str(r["line"]), r["detail"], _pre(r["excerpt"])]
                    for reason, rs in rejected.items() for r in rs]
            body += "<h3>clean: rejected</h3>" + _table(["reason", "file", "line", "detail", "excerpt"], rows)
    if not body:
        body = "<p>No dropped or rejected documents were sampled.</p>"
    note = f'<p class="note">Up to {SAMPLES_PER_REASON} per reason from each stage\'s dropped/ and clean/rejected/.</p>'
    return _section("samples", SECTION_TITLES["samples"], note + body)


def _throughput(stats: dict, data: dict[str, StageData]) -> str:
    rows, previous_bytes = [], None
    for stage in STAGES:
        if stage not in stats:
            previous_bytes = None
            continue
        s = stats[stage]
        seconds = s["seconds"] or float("nan")
        in_bytes = data[stage].text_bytes if stage == "clean" else previous_bytes
        mb = ["", ""] if in_bytes is None else [in_bytes / 1e6, in_bytes / 1e6 / seconds]
        rows.append([stage, s["seconds"], s["input"], s["input"] / seconds, *mb])
        previous_bytes = data[stage].text_bytes if stage in data else None
    body = _table(["stage", "seconds", "input documents", "documents/s", "input text MB", "MB/s"], rows, {1, 2, 3, 4, 5})
    body += ('<p class="note">Seconds from each stats.json. Input text is the previous stage\'s kept text; for '
             "clean, whose raw input size is not recorded, its own kept text.</p>")
    return _section("throughput", SECTION_TITLES["throughput"], body)


def write(out: str, dest: str | None = None) -> str:
    """Build the report of OUT and write it to `dest` (default OUT/report.html); returns the destination."""
    dest = dest or storage.join(out, "report.html")
    storage.write_bytes(dest, build(out).encode("utf-8"))
    return dest
