"""Build the unseen-languages check set: labelled real text in languages and scripts the shared corpus
(../shared/corpus) does not have, to measure how the filter generalises. Never tune on it.

Sources (public GitHub snapshots, brought here with the `fetch` tool as bare git directories):
- MicrosoftTranslator/NTREX (CC BY-SA 4.0): NTREX-128, professional translations of the WMT19 English
  news test set into 128 languages; DOCUMENT_IDS.tsv marks the 123 news articles. A document is a run of
  4-10 consecutive sentences of one article (headline included when the run starts the article).
- GNOME/gnome-user-docs (CC BY-SA 3.0): the translated GNOME desktop help (gnome-help/<lang>/<lang>.po);
  every msgstr is a paragraph, a document is up to 8 consecutive paragraphs of one help page, Mallard
  markup removed.
Junk (kind=junk, lang null) is generated from the same languages' text with a fixed seed: menus of short
UI strings / text fragments (nav_boilerplate), one line repeated (keyword_spam), a comma list of words
(keyword_list), random letters of the script, numbers and symbols (symbol_soup), paragraphs whose UTF-8
bytes were read as cp1252 / latin-1 / cp1251 (mojibake).

Output (same layout and fields as the shared corpus, see its README.md):
  OUT/raw/docs-NN.jsonl.gz   {"id", "text", "source", "url", "lang_hint", "created"}
  OUT/labels/docs.jsonl.gz   {"id", "lang", "kind", "dup_of", "cluster", "junk_type", "file", "line", "origin"}
  OUT/lid/sentences.tsv      lang<TAB>sentence (up to 300 per language)
  OUT/README.md              counts

    .venv/bin/python benchmarks/unseen_corpus.py build [--out /work/unseen-corpus] [--seed 1]
    .venv/bin/python benchmarks/unseen_corpus.py report [--out /work/unseen-corpus]
    .venv/bin/python benchmarks/filter_quality.py --corpus /work/unseen-corpus

`report` runs the default filter on the set and prints, per language, the false-drop rate of clean
documents, LID accuracy and scores, and for languages losing more than 5% the drop reasons and the
predicted languages with their scores.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import html
import json
import random
import re
import statistics
import subprocess
import sys
import unicodedata
from pathlib import Path

MIRROR = Path("/work/.mirror")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus"

# NTREX-128 file code -> lid.176 code, for languages lid.176 knows and the shared corpus lacks.
NTREX = {
    "afr": "af", "amh": "am", "bak": "ba", "bel": "be", "ben": "bn", "bod": "bo", "bos": "bs", "bul": "bg",
    "cat": "ca", "ckb-Arab": "ckb", "cym": "cy", "dan": "da", "div": "dv", "est": "et", "eus": "eu",
    "fil": "tl", "gle": "ga", "glg": "gl", "guj": "gu", "hrv": "hr", "hye": "hy", "isl": "is", "kan": "kn",
    "kat": "ka", "kaz": "kk", "khm": "km", "kir": "ky", "kmr": "ku", "lao": "lo", "lav": "lv", "lit": "lt",
    "ltz": "lb", "mal": "ml", "mar": "mr", "mkd": "mk", "mlg": "mg", "mlt": "mt", "mon": "mn", "msa": "ms",
    "mya": "my", "nep": "ne", "nno": "nn", "nob": "no", "pan": "pa", "pus": "ps", "ron": "ro", "sin": "si",
    "slk": "sk", "slv": "sl", "snd-Arab": "sd", "som": "so", "sqi": "sq", "srp-Cyrl": "sr", "swa": "sw",
    "tam": "ta", "tat": "tt", "tel": "te", "tgk-Cyrl": "tg", "tha": "th", "tuk": "tk", "uig": "ug",
    "ukr": "uk", "urd": "ur", "uzb": "uz", "yor": "yo",
}
# gnome-help translation -> lid.176 code (complete enough translations of languages the shared corpus lacks).
GNOME = {"as": "as", "ca": "ca", "da": "da", "eo": "eo", "eu": "eu", "gl": "gl", "gu": "gu", "hr": "hr",
         "kk": "kk", "lv": "lv", "mr": "mr", "sr": "sr", "ta": "ta", "te": "te", "uk": "uk"}
# Scripts without spaces between words: lid sentences are chosen by characters, not words.
NO_SPACES = {"th", "lo", "km", "my", "bo"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(repo), *args], check=True, capture_output=True).stdout.decode("utf-8")


def find_repo(given: Path | None, name: str) -> Path:
    repo = given or MIRROR / name / "repo"
    if not (repo / "HEAD").exists():
        sys.exit(f"{repo} is no git directory: fetch github:{name.replace('+', '/')} first or pass its path")
    return repo


# --- NTREX -------------------------------------------------------------------------------------------

def ntrex_documents(repo: Path, rng: random.Random, max_docs: int) -> dict[str, list[dict]]:
    """lang -> documents (text, origin, sentences) from NTREX-128."""
    doc_ids = git(repo, "show", "HEAD:DOCUMENT_IDS.tsv").splitlines()
    commit = git(repo, "rev-parse", "HEAD").strip()[:12]
    out = {}
    for code, lang in sorted(NTREX.items()):
        path = f"NTREX-128/newstest2019-ref.{code}.txt"
        lines = [unicodedata.normalize("NFC", s).strip() for s in git(repo, "show", f"HEAD:{path}").splitlines()]
        if len(lines) != len(doc_ids):
            print(f"skip {path}: {len(lines)} lines for {len(doc_ids)} document ids", file=sys.stderr)
            continue
        articles = collections.defaultdict(list)  # doc id -> [(line number, sentence)]
        for i, (doc, sentence) in enumerate(zip(doc_ids, lines)):
            if sentence:
                articles[doc.strip()].append((i + 1, sentence))
        local = random.Random(f"{rng.random()}:{code}")
        chunks = []
        for doc, sentences in articles.items():
            k = 0
            while k < len(sentences):
                size = local.randint(4, 10)
                if len(sentences) - (k + size) < 4:  # a short remainder joins this run
                    size = len(sentences) - k
                chunks.append((doc, sentences[k : k + size], k == 0))
                k += size
        local.shuffle(chunks)
        docs = []
        for doc, run, first in chunks[:max_docs]:
            sents = [s for _, s in run]
            paragraphs, rest = ([sents[0]], sents[1:]) if first else ([], sents)
            while rest:
                n = local.randint(2, 4)
                paragraphs.append(" ".join(rest[:n]))
                rest = rest[n:]
            docs.append({"text": "\n\n".join(paragraphs), "source": "news",
                         "origin": f"MicrosoftTranslator/NTREX@{commit}:{path}#{doc}:{run[0][0]}-{run[-1][0]}",
                         "sentences": sents})
        out[lang] = docs
    return out


# --- GNOME help --------------------------------------------------------------------------------------

def parse_po(text: str) -> list[dict]:
    """Entries of a .po file: msgid, msgstr, locations, flags (obsolete #~ and previous #| lines skipped)."""
    entries, cur, field = [], None, None

    def flush():
        if cur is not None and "msgid" in cur:
            entries.append(cur)

    for line in text.splitlines():
        if not line.strip():
            flush()
            cur, field = None, None
            continue
        if cur is None:
            cur = {"locations": [], "flags": set()}
        if line.startswith("#:"):
            cur["locations"] += line[2:].split()
        elif line.startswith("#,"):
            cur["flags"] |= {f.strip() for f in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        else:
            m = re.match(r'(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+"(.*)"\s*$', line)
            if m:
                field = m.group(1)
                cur[field] = unescape_po(m.group(2))
            elif line.startswith('"') and field:
                cur[field] += unescape_po(line.strip()[1:-1])
    flush()
    return entries


def unescape_po(s: str) -> str:
    return re.sub(r'\\(["\\nt])', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


TAG = re.compile(r"<[^<>]+>")


def gnome_paragraph(msgid: str, msgstr: str) -> str | None:
    """A translated help paragraph as plain text, or None for UI labels, credits, images and markup that
    leaves holes (self-closing links and media)."""
    if not msgstr or msgid in ("translator-credits", "") or msgid.startswith("external ref="):
        return None
    if "/>" in msgstr or "<_:" in msgstr:
        return None
    text = html.unescape(TAG.sub("", msgstr))
    text = unicodedata.normalize("NFC", re.sub(r"\s+", " ", text)).strip()
    return text if len(text) >= 40 else None


def gnome_documents(repo: Path, rng: random.Random, max_docs: int) -> dict[str, list[dict]]:
    commit = git(repo, "rev-parse", "HEAD").strip()[:12]
    out = {}
    for code, lang in sorted(GNOME.items()):
        path = f"gnome-help/{code}/{code}.po"
        pages = collections.defaultdict(list)  # help page -> [(line, paragraph)]
        seen = set()
        for entry in parse_po(git(repo, "show", f"HEAD:{path}")):
            if "fuzzy" in entry["flags"] or not entry["locations"] or "msgid_plural" in entry:
                continue
            text = gnome_paragraph(entry["msgid"], entry.get("msgstr", ""))
            if text is None or text in seen:
                continue
            seen.add(text)
            page, _, line = entry["locations"][0].rpartition(":")
            pages[page].append((int(line) if line.isdigit() else 0, text))
        local = random.Random(f"{rng.random()}:gnome:{code}")
        chunks = []
        for page, paragraphs in sorted(pages.items()):
            paragraphs.sort()
            for k in range(0, len(paragraphs), 8):
                part = [p for _, p in paragraphs[k : k + 8]]
                if len(part) >= 2 and sum(map(len, part)) >= 200:
                    chunks.append((page, k // 8, part))
        local.shuffle(chunks)
        out[lang] = [{"text": "\n\n".join(part), "source": "docs",
                      "origin": f"GNOME/gnome-user-docs@{commit}:{path}#{page}.{n}", "sentences": part}
                     for page, n, part in chunks[:max_docs]]
    return out


# --- junk --------------------------------------------------------------------------------------------

def make_junk(lang: str, docs: list[dict], rng: random.Random, per_type: int) -> list[dict]:
    """Simple web-corpus junk built from one language's own text, `per_type` documents of each type."""
    words = [w.strip(".,;:!?()\"'«»“”„") for d in docs for w in d["text"].split()]
    words = [w for w in words if w]
    letters = sorted({c for d in docs for c in d["text"] if c.isalpha()})
    paragraphs = [p for d in docs for p in d["text"].split("\n\n")]
    out = []

    def fragment(lo: int, hi: int) -> str:
        if lang in NO_SPACES:  # words are not spaced: cut a few characters from a paragraph
            p = rng.choice(paragraphs)
            start = rng.randrange(max(1, len(p) - 12))
            return p[start : start + rng.randint(3, 12)].strip()
        k = rng.randrange(max(1, len(words) - hi))
        return " ".join(words[k : k + rng.randint(lo, hi)])

    for _ in range(per_type):
        items = [fragment(1, 3) for _ in range(rng.randint(8, 25))]
        sep = rng.choice(["\n", " | ", " · ", "\n• "])
        year = rng.randint(2005, 2024)
        out.append(("nav_boilerplate", sep.join(items) + f"\n© {year} " + " ".join(items[:2])))
        line = rng.choice(paragraphs).split(". ")[0] if rng.random() < 0.5 else fragment(2, 6)
        out.append(("keyword_spam", "\n".join([line] * rng.randint(20, 80))))
        out.append(("keyword_list", ", ".join(fragment(1, 2) for _ in range(rng.randint(40, 150)))))
        rows = []
        for _ in range(rng.randint(10, 40)):
            style = rng.random()
            if style < 0.4:
                rows.append("".join(rng.choice(letters) for _ in range(rng.randint(20, 80))))
            elif style < 0.7:
                rows.append(" ".join(str(rng.randint(0, 99999)) for _ in range(rng.randint(5, 15))))
            else:
                rows.append("".join(rng.choice("#*=-_+~|/\\<>[]{}%$@&0123456789abcdef") for _ in range(rng.randint(10, 60))))
        out.append(("symbol_soup", "\n".join(rows)))
        start = rng.randrange(len(paragraphs))
        out.append(("mojibake", "\n\n".join(mojibake(p, rng.choice(("cp1252", "latin-1", "cp1251")))
                                             for p in paragraphs[start : start + rng.randint(2, 5)])))
    return [{"text": text, "junk_type": jt, "junk_lang": lang} for jt, text in out]


def mojibake(text: str, codec: str) -> str:
    """`text`'s UTF-8 bytes read as `codec`, bytes the codec leaves undefined read as Latin-1 (what a
    browser's windows-1252 does)."""
    return "".join(bytes([b]).decode(codec, errors="ignore") or chr(b) for b in text.encode("utf-8"))


# --- build -------------------------------------------------------------------------------------------

def shared_languages() -> set[str]:
    path = SHARED / "labels" / "docs.jsonl.gz"
    if not path.exists():
        return set()
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return {json.loads(line)["lang"] for line in f} - {None}


def build(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    by_lang = collections.defaultdict(list)
    for lang, docs in ntrex_documents(find_repo(args.ntrex, "MicrosoftTranslator+NTREX"), rng, args.max_docs).items():
        by_lang[lang] += docs
    for lang, docs in gnome_documents(find_repo(args.gnome, "GNOME+gnome-user-docs"), rng, args.max_docs).items():
        by_lang[lang] += docs
    clash = set(by_lang) & shared_languages()
    if clash:
        sys.exit(f"languages also in the shared corpus: {sorted(clash)}")

    records = []  # (record, label)
    used_ids = set()

    def new_id() -> str:
        while True:
            i = f"{rng.getrandbits(48):012x}"
            if i not in used_ids:
                used_ids.add(i)
                return i

    lid_rows = []
    for lang in sorted(by_lang):
        docs = by_lang[lang]
        for d in docs:
            rec = {"id": new_id(), "text": d["text"], "source": d["source"], "url": None, "lang_hint": None, "created": None}
            records.append((rec, {"lang": lang, "kind": "original", "junk_type": None, "origin": d["origin"]}))
        for j in make_junk(lang, docs, rng, args.junk_per_type):
            rec = {"id": new_id(), "text": j["text"], "source": "web", "url": None, "lang_hint": None, "created": None}
            records.append((rec, {"lang": None, "kind": "junk", "junk_type": j["junk_type"],
                                  "origin": f"generated:{j['junk_type']}:{lang}"}))
        sentences = sorted({s for d in docs for s in d["sentences"]
                            if 20 <= len(s) <= 300 and (lang in NO_SPACES or len(s.split()) >= 4)})
        lid_rows += [(lang, s) for s in random.Random(f"{args.seed}:lid:{lang}").sample(sentences, min(300, len(sentences)))]

    rng.shuffle(records)
    out = args.out
    for sub in ("raw", "labels", "lid"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for old in (out / "raw").glob("docs-*.jsonl.gz"):
        old.unlink()
    shards = [records[k :: args.shards] for k in range(args.shards)]
    labels = []
    for k, shard in enumerate(shards):
        name = f"raw/docs-{k:02d}.jsonl.gz"
        with gzip.GzipFile(out / name, "wb", mtime=0) as f:
            for line, (rec, label) in enumerate(shard, 1):
                f.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
                labels.append({"id": rec["id"], "lang": label["lang"], "kind": label["kind"], "dup_of": None,
                               "cluster": None, "junk_type": label["junk_type"], "file": name, "line": line,
                               "origin": label["origin"]})
    with gzip.GzipFile(out / "labels" / "docs.jsonl.gz", "wb", mtime=0) as f:
        for label in labels:
            f.write((json.dumps(label, ensure_ascii=False) + "\n").encode("utf-8"))
    with open(out / "lid" / "sentences.tsv", "w", encoding="utf-8") as f:
        f.write("lang\tsentence\n")
        for lang, s in lid_rows:
            f.write(f"{lang}\t{s}\n")

    counts = collections.Counter((l["lang"], l["origin"].split("/")[0]) for l in labels if l["kind"] == "original")
    junk = collections.Counter(l["junk_type"] for l in labels if l["kind"] == "junk")
    table = ["| lang | originals | NTREX news | GNOME help | lid sentences |", "|---|---|---|---|---|"]
    lid_counts = collections.Counter(lang for lang, _ in lid_rows)
    for lang in sorted(by_lang):
        n, g = counts[(lang, "MicrosoftTranslator")], counts[(lang, "GNOME")]
        table.append(f"| {lang} | {n + g} | {n} | {g} | {lid_counts[lang]} |")
    readme = (f"# Unseen-languages check set\n\nBuilt by corpusforge's benchmarks/unseen_corpus.py (seed {args.seed}); "
              "layout and fields as ../shared/corpus (no duplicates, no malformed lines). Sources: "
              "MicrosoftTranslator/NTREX (CC BY-SA 4.0), GNOME/gnome-user-docs gnome-help translations "
              "(CC BY-SA 3.0); junk generated from the same text. For evaluation only, never for tuning.\n\n"
              f"Lines: {len(labels)}; originals {sum(counts.values())}; junk {sum(junk.values())} "
              f"({', '.join(f'{k} {v}' for k, v in sorted(junk.items()))}).\n\n" + "\n".join(table) + "\n")
    (out / "README.md").write_text(readme, encoding="utf-8")
    print(readme)


# --- report ------------------------------------------------------------------------------------------

def report(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import pyarrow as pa

    from benchmarks import filter_quality
    from pipeline import evaluate
    from pipeline.filter import FilterConfig, adaptive

    docs, labels = evaluate.cleaned_corpus(args.out)
    batches = [pa.RecordBatch.from_pylist(docs[i : i + 1000]) for i in range(0, len(docs), 1000)]
    cfg = FilterConfig()
    rows, _, _ = filter_quality.run_filter(batches, cfg)
    # The filter stage learns its adaptive settings from a first pass over the run's documents; filter_batch
    # alone (above, as filter_quality.py runs it) keeps the fixed minimum and every rule for every language.
    bins = [row for b in batches for row in adaptive.first_pass_bins(b, cfg).to_pylist()]
    adaptive_cfg, _ = adaptive.adapt(cfg, adaptive.histograms(tuple(row.values()) for row in bins))
    staged = {r["id"]: r for r in filter_quality.run_filter(batches, adaptive_cfg)[0]}
    per = collections.defaultdict(list)
    junk = collections.defaultdict(lambda: [0, 0])
    for row in rows:
        label = labels[row["id"]]
        if label["kind"] == "original":
            per[label["lang"]].append(row)
        elif label["kind"] == "junk":
            jt = junk[label["junk_type"]]
            jt[0] += 1
            jt[1] += row["_status"] == "dropped"
    n_junk, d_junk = sum(n for n, _ in junk.values()), sum(d for _, d in junk.values())
    print(f"junk recall {d_junk / n_junk:.3f} ({d_junk}/{n_junk}): "
          + ", ".join(f"{k} {d / n:.3f}" for k, (n, d) in sorted(junk.items())))
    n_adapt = sum(staged[r["id"]]["_status"] == "dropped" for r in rows if labels[r["id"]]["kind"] == "junk")
    print(f"junk recall with the stage's adaptive settings {n_adapt / n_junk:.3f}")
    print("| lang | originals | dropped | false-drop | 95% interval | adaptive: threshold, false-drop | LID right "
          "| median score | top drop reasons |")
    print("|---|---|---|---|---|---|---|---|---|")
    heavy = []
    for lang, rs in sorted(per.items(), key=lambda kv: -sum(r["_status"] == "dropped" for r in kv[1]) / len(kv[1])):
        n, d = len(rs), sum(r["_status"] == "dropped" for r in rs)
        low, high = evaluate.wilson_interval(d, n)
        right = sum(r["lang"] == lang for r in rs)
        med = statistics.median(r["lang_score"] for r in rs)
        reasons = collections.Counter(r["_reason"] for r in rs if r["_status"] == "dropped")
        why = ", ".join(f"{k} {v}" for k, v in reasons.most_common(3))
        d_adapt = sum(staged[r["id"]]["_status"] == "dropped" for r in rs)
        threshold = adaptive_cfg.min_lang_score_for(lang)
        print(f"| {lang} | {n} | {d} | {d / n:.3f} | {low:.3f}-{high:.3f} | {threshold:.2f}, {d_adapt / n:.3f} "
              f"| {right / n:.3f} | {med:.2f} | {why} |")
        if d / n > 0.05:
            heavy.append((lang, rs))
    print("\nlanguages losing more than 5%: predicted language (documents, median score) of dropped documents")
    for lang, rs in heavy:
        dropped = [r for r in rs if r["_status"] == "dropped"]
        pred = collections.defaultdict(list)
        for r in dropped:
            pred[r["lang"]].append(r["lang_score"])
        print(f"  {lang}: " + ", ".join(f"{p} ({len(s)}, {statistics.median(s):.2f})"
                                       for p, s in sorted(pred.items(), key=lambda kv: -len(kv[1]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="rebuild the set from the fetched snapshots")
    b.add_argument("--out", type=Path, default=Path("/work/unseen-corpus"), help="output directory (outside the repo)")
    b.add_argument("--ntrex", type=Path, help="git dir of MicrosoftTranslator/NTREX (default: under /work/.mirror)")
    b.add_argument("--gnome", type=Path, help="git dir of GNOME/gnome-user-docs (default: under /work/.mirror)")
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--max-docs", type=int, default=80, help="documents per language and source")
    b.add_argument("--junk-per-type", type=int, default=2, help="junk documents per language and junk type")
    b.add_argument("--shards", type=int, default=2)
    r = sub.add_parser("report", help="per-language false drops, LID scores and drop reasons of the default filter")
    r.add_argument("--out", type=Path, default=Path("/work/unseen-corpus"), help="the built set")
    args = parser.parse_args()
    build(args) if args.command == "build" else report(args)


if __name__ == "__main__":
    main()
