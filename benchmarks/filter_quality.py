"""Quality of the filter stage's logic on the labelled shared corpus.

Reads raw/docs-*.jsonl.gz and labels/docs.jsonl.gz directly (malformed lines skipped), cleans the text
like the clean stage (NFC, control characters, whitespace runs, boilerplate lines), runs `filter_batch`
with the default config and prints:
- junk recall (junk documents dropped), false-drop rate of labelled originals per language,
- language-ID accuracy on kept originals and on lid/sentences.tsv,
- drops per rule (originals / junk), documents kept with their jusText main content, and filter_batch
  throughput (docs/s, one core);
- the rule sets side by side: FineWeb's English chain for English without main-content extraction,
  FineWeb-2's rules for every language without it and with it, then short prose exempt from Gopher's word
  minimum, the default (that and two lines for Gopher's ellipsis-line ratio), and the default with
  FineWeb-2's per-language thresholds (`fineweb2_thresholds`): junk recall, false drops per language and
  CPU cost of each, then for each of the last three steps the drops before/after per language and junk
  type with the reasons of the documents that changed;
- mojibake handling side by side: none, detect-and-drop (the default), and repair in clean (ftfy) before
  the filter: mojibake junk recall, false drops per language and CPU cost of each.

    .venv/bin/python benchmarks/filter_quality.py [--corpus ../shared/corpus] [--batch 1000]
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import evaluate  # noqa: E402
from pipeline.clean.mojibake import has_mojibake  # noqa: E402
from pipeline.clean.text import TextConfig, normalize_text  # noqa: E402
from pipeline.filter import FilterConfig, RuleSet, filter_batch  # noqa: E402
from pipeline.filter.config import default_rules, fineweb2_rules  # noqa: E402
from pipeline.filter.langid import identify  # noqa: E402


def run_filter(batches: list[pa.RecordBatch], cfg: FilterConfig) -> tuple[list[dict], float, float]:
    """Rows out of filter_batch, wall-clock and CPU seconds."""
    start, start_cpu = time.perf_counter(), time.process_time()
    results = [filter_batch(batch, cfg) for batch in batches]
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return [row for result in results for row in result.to_pylist()], elapsed, elapsed_cpu


def outcome(rows: list[dict], labels: dict[str, dict]) -> tuple[dict, dict, dict]:
    """(junk type -> [n, dropped], language -> [originals, dropped], reason -> count of dropped originals)."""
    junk, langs = collections.defaultdict(lambda: [0, 0]), collections.defaultdict(lambda: [0, 0])
    reasons = collections.Counter()
    for row in rows:
        label = labels[row["id"]]
        dropped = row["_status"] == "dropped"
        if label["kind"] == "junk":
            junk[label["junk_type"]][0] += 1
            junk[label["junk_type"]][1] += dropped
        elif label["kind"] == "original":
            langs[label["lang"]][0] += 1
            langs[label["lang"]][1] += dropped
            reasons[row["_reason"]] += dropped
    return junk, langs, reasons


def compare_mojibake_handling(batches: list[pa.RecordBatch], labels: dict[str, dict], default_cpu: float) -> None:
    """None / detect-and-drop / repair-then-filter on the same documents in one run."""
    n = sum(b.num_rows for b in batches)
    texts = [b.column("text") for b in batches]
    start = time.process_time()
    flagged = sum(has_mojibake(t).true_count for t in texts)
    detect_cpu = time.process_time() - start
    start = time.process_time()
    repaired_texts = [normalize_text(t, TextConfig(fix_mojibake=True)) for t in texts]
    repair_cpu = time.process_time() - start
    start = time.process_time()
    for t in texts:
        normalize_text(t, TextConfig())
    normalize_cpu = time.process_time() - start
    repaired = [b.set_column(b.schema.names.index("text"), "text", t) for b, t in zip(batches, repaired_texts)]
    changed = sum(pc.sum(pc.not_equal(a, b)).as_py() or 0 for a, b in zip(texts, repaired_texts))
    off, _, off_cpu = run_filter(batches, FilterConfig(mojibake=False))
    drop, _, _ = run_filter(batches, FilterConfig())
    fixed, _, _ = run_filter(repaired, FilterConfig())
    print(f"mojibake: ftfy's heuristic flags {flagged} of {n} cleaned documents; batch detector "
          f"{n / detect_cpu:,.0f} docs per CPU-second; clean's repair changes {changed} documents and costs "
          f"{repair_cpu / normalize_cpu:.2f}x the rest of text normalisation ({normalize_cpu:.2f} s -> "
          f"+{repair_cpu - normalize_cpu:.2f} s CPU); filter_batch with detection {n / default_cpu:,.0f} docs per "
          f"CPU-second, without {n / off_cpu:,.0f}")
    print("  handling                 mojibake recall  junk recall  worst false drop (lang)  originals dropped as mojibake")
    for name, rows in (("none", off), ("detect and drop", drop), ("repair in clean + drop", fixed)):
        junk, langs, reasons = outcome(rows, labels)
        n_moj, d_moj = junk["mojibake"]
        total = sum(v[0] for v in junk.values())
        worst = max(((d / o, lang) for lang, (o, d) in langs.items() if o >= 10), default=(0.0, "-"))
        print(f"  {name:24s} {d_moj / n_moj:15.3f} {sum(v[1] for v in junk.values()) / total:12.3f}"
              f"  {worst[0]:.3f} ({worst[1]}){'':14s} {reasons['mojibake']}")
    by_lang = collections.Counter(labels[r["id"]]["lang"] for r in drop
                                  if r["_reason"] == "mojibake" and labels[r["id"]]["kind"] == "original")
    per_lang = ", ".join(f"{k} {v}" for k, v in by_lang.most_common()) or "none"
    print(f"  originals dropped as mojibake, per language: {per_lang}")


def compare_rule_sets(batches: list[pa.RecordBatch], labels: dict[str, dict], default: tuple[list[dict], float]) -> None:
    """FineWeb English chain / FineWeb-2 rules / + main content / + short prose / + lists of two lines (the
    default) / + FineWeb-2's per-language thresholds, on the same documents."""
    fw2 = dict(english=fineweb2_rules(), other_languages=fineweb2_rules())
    short_prose = default_rules()
    short_prose.gopher_quality.min_list_lines = 1
    variants = {
        "FineWeb English chain, no main content": FilterConfig(english=RuleSet(), other_languages=fineweb2_rules(),
                                                               main_content=False),
        "FineWeb-2 rules, no main content": FilterConfig(**fw2, main_content=False),
        "FineWeb-2 rules + main content": FilterConfig(**fw2),
        "+ short prose": FilterConfig(english=short_prose, other_languages=short_prose),
    }
    outcomes = {}
    for name, cfg in variants.items():
        rows, _, cpu = run_filter(batches, cfg)
        outcomes[name] = (rows, cpu)
    outcomes["+ lists of two lines (default)"] = default
    per_language, _, per_language_cpu = run_filter(batches, FilterConfig(fineweb2_thresholds=True))
    outcomes["+ FineWeb-2 per-language thresholds"] = (per_language, per_language_cpu)
    results = {name: outcome(rows, labels) for name, (rows, _) in outcomes.items()}
    shown = sorted({lang for _, langs, _ in results.values() for lang, (n, d) in langs.items() if n >= 10 and d / n > 0.05},
                   key=lambda lang: -max(r[1][lang][1] / r[1][lang][0] for r in results.values()))
    print("rule sets side by side (false drops of originals: languages above 5% in any variant):")
    print(f"  {'variant':42s} {'CPU s':>6s} {'junk recall':>11s} {'over 5%':>7s}  " + " ".join(f"{lang:>6s}" for lang in shown))
    for name, (junk, langs, _) in results.items():
        recall = sum(d for _, d in junk.values()) / sum(n for n, _ in junk.values())
        over = sum(1 for n, d in langs.values() if n >= 10 and d / n > 0.05)
        print(f"  {name:42s} {outcomes[name][1]:6.1f} {recall:11.3f} {over:7d}  "
              + " ".join(f"{langs[lang][1] / langs[lang][0]:6.3f}" for lang in shown))
    compare_two("Short prose exempt from Gopher's word minimum", outcomes["FineWeb-2 rules + main content"][0],
                outcomes["+ short prose"][0], labels)
    compare_two("Gopher's bullet and ellipsis lines need a list of two", outcomes["+ short prose"][0], default[0], labels)
    compare_two("FineWeb-2 per-language thresholds", default[0], per_language, labels)


def compare_two(title: str, before: list[dict], after: list[dict], labels: dict[str, dict]) -> None:
    """False drops per language and junk dropped per type, before -> after, with (first reason before ->
    after) for the documents whose outcome changed."""
    changed = collections.defaultdict(collections.Counter)  # lang or junk type -> (reason before, after) -> n
    counts = collections.defaultdict(lambda: [0, 0, 0])  # lang or junk type -> [documents, dropped before, after]
    for a, b in zip(before, after):
        label = labels[a["id"]]
        if label["kind"] not in ("original", "junk"):
            continue
        key = label["lang"] if label["kind"] == "original" else f"junk:{label['junk_type']}"
        c = counts[key]
        c[0] += 1
        c[1] += a["_status"] == "dropped"
        c[2] += b["_status"] == "dropped"
        if a["_status"] != b["_status"]:
            changed[key][(a["_reason"] or "kept", b["_reason"] or "kept")] += 1
    print(f"{title}: dropped share per language (>= 10 originals) and per junk type, before -> after")
    for key, (n, d0, d1) in sorted(counts.items(), key=lambda kv: (kv[0].startswith("junk:"), -kv[1][0])):
        if n >= 10 and (d0 != d1 or not key.startswith("junk:")):
            why = ", ".join(f"{r0} -> {r1} {k}" for (r0, r1), k in changed[key].most_common(4))
            print(f"  {key:22s} {n:6d}  {d0 / n:6.3f} -> {d1 / n:6.3f}  {why}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus")
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    docs, labels = evaluate.cleaned_corpus(args.corpus)
    cfg = FilterConfig()
    filter_batch(pa.RecordBatch.from_pylist(docs[:10]), cfg)  # load the model outside the timing
    batches = [pa.RecordBatch.from_pylist(docs[i : i + args.batch]) for i in range(0, len(docs), args.batch)]
    out, elapsed, elapsed_cpu = run_filter(batches, cfg)

    per_lang = collections.defaultdict(lambda: [0, 0])  # lang -> [originals, dropped]
    per_source = collections.defaultdict(lambda: [0, 0])  # (lang, upstream repository) -> same
    reasons = collections.defaultdict(lambda: collections.Counter())
    junk_types = collections.defaultdict(lambda: [0, 0])
    extracted = collections.Counter()  # kind -> documents kept with their main content
    lid_ok = lid_n = 0
    for row in out:
        label = labels[row["id"]]
        kind = label["kind"]
        dropped = row["_status"] == "dropped"
        if dropped:
            reasons[row["_reason"]][kind if kind in ("original", "junk") else "copy"] += 1
        extracted[kind if kind in ("original", "junk") else "copy"] += row["_main_content"]
        if kind == "original":
            per_lang[label["lang"]][0] += 1
            per_lang[label["lang"]][1] += dropped
            source = (label["lang"], label["origin"].split(":")[0].split("/")[-1])
            per_source[source][0] += 1
            per_source[source][1] += dropped
            if not dropped:
                lid_n += 1
                lid_ok += row["lang"] == label["lang"]
        elif kind == "junk":
            junk_types[label["junk_type"]][0] += 1
            junk_types[label["junk_type"]][1] += dropped

    junk_n = sum(n for n, _ in junk_types.values())
    junk_dropped = sum(d for _, d in junk_types.values())
    print(
        f"documents {len(out)}  filter_batch {len(out) / elapsed_cpu:.0f} docs per CPU-second "
        f"({len(out) / elapsed:.0f} docs/s wall clock, one process, batch {args.batch})"
    )
    print(f"junk recall {junk_dropped / junk_n:.3f} ({junk_dropped}/{junk_n})")
    for jt, (n, d) in sorted(junk_types.items()):
        print(f"  {jt:16s} {d / n:.3f} ({d}/{n})")
    print(f"langid accuracy on kept originals {lid_ok / max(lid_n, 1):.4f} ({lid_ok}/{lid_n})")
    print("false-drop rate of originals per language (95% Wilson interval: where another corpus drawn the same way may fall):")
    worst = 0.0
    for lang, (n, d) in sorted(per_lang.items(), key=lambda kv: -kv[1][0]):
        worst = max(worst, d / n) if n >= 10 else worst
        low, high = evaluate.wilson_interval(d, n)
        print(f"  {lang:4s} {d / n:6.3f} ({d}/{n})  {low:.3f}-{high:.3f}")
    print(f"  worst (languages with >= 10 originals) {worst:.3f}")
    print("false-drop rate of originals per language and source (>= 50 originals):")
    for (lang, source), (n, d) in sorted(per_source.items(), key=lambda kv: -kv[1][0]):
        if n >= 50:
            print(f"  {lang:4s} {source:28s} {d / n:6.3f} ({d}/{n})")
    print("drops per rule:            original   junk   copy")
    for reason, c in sorted(reasons.items(), key=lambda kv: -sum(kv[1].values())):
        print(f"  {reason:28s} {c['original']:6d} {c['junk']:6d} {c['copy']:6d}")

    print(f"kept with their jusText main content: {sum(extracted.values())} "
          f"(originals {extracted['original']}, junk {extracted['junk']}, copies {extracted['copy']})")

    compare_rule_sets(batches, labels, (out, elapsed_cpu))
    compare_mojibake_handling(batches, labels, elapsed_cpu)

    sentences = [line.rstrip("\n").split("\t", 1) for line in open(args.corpus / "lid" / "sentences.tsv", encoding="utf-8")][1:]
    langs, _ = identify(pa.array([s for _, s in sentences]), cfg.langid_max_chars)
    by_lang = collections.defaultdict(lambda: [0, 0])
    for (truth, _), pred in zip(sentences, langs):
        by_lang[truth][0] += 1
        by_lang[truth][1] += pred == truth
    ok = sum(c for _, c in by_lang.values())
    print(f"langid accuracy on lid/sentences.tsv {ok / len(sentences):.4f} ({ok}/{len(sentences)}); worst: "
          + ", ".join(f"{lang} {c / n:.3f}" for lang, (n, c) in sorted(by_lang.items(), key=lambda kv: kv[1][1] / kv[1][0])[:4]))


if __name__ == "__main__":
    main()
