"""Decontamination on any corpus: exactly the documents sharing an n-gram with a benchmark are dropped.

Runs the default pipeline over a corpus's raw files, then writes a benchmark file from what it kept: passages
of some documents verbatim, passages of others lightly edited (one word in 25 replaced, or one character in
25 in scripts written without spaces), and text that appears nowhere (words of the corpus, as the stage
segments them, in random order).
It runs the pipeline again with that benchmark, resuming from the first run's committed stages up to dedupe
(same input, same settings), so decontamination and tokenize run on the same documents, and checks against
a reference computed here from the words themselves (`pipeline.decontaminate.words`), without the stage's
hashing and join: a document is contaminated exactly when one of its word n-grams is a benchmark record's.

- every expected document is in dropped/ with reason `benchmark_overlap`, the benchmark's name and a
  positive n-gram count, and nothing else is dropped;
- decontaminate's kept documents are dedupe's, in order, minus those;
- the counts reconcile (input = kept + dropped) and tokenize read exactly what decontaminate kept.

    .venv/bin/python benchmarks/decontamination_check.py --corpus ../shared/corpus
    .venv/bin/python benchmarks/decontamination_check.py --corpus /path/to/held-out-corpus --picks 60

Exits 1 when any check fails.
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.labelled_corpus import DEFAULT  # noqa: E402
from pipeline import cli, config as config_lib  # noqa: E402
from pipeline.decontaminate import REASON, DecontaminateConfig, words  # noqa: E402
from pipeline.stages.config import PipelineConfig  # noqa: E402

EDIT_EVERY = 25
PASSAGE_WORDS = 60  # words of a verbatim or edited passage (characters x 3 in scripts without spaces)


def rows(stage: Path, subdir: str = "data") -> list[dict]:
    listing = json.loads((stage / "_SUCCESS").read_text())["files"].get(subdir, [])
    return [r for p in listing for r in pq.read_table(stage / p).to_pylist()]


def passage(text: str, rng: random.Random, edit: bool) -> str:
    """A window of the text (PASSAGE_WORDS words, or three times as many characters in text with few
    spaces), every EDIT_EVERY-th word or non-space character replaced when `edit`."""
    words = text.split()
    if len(words) >= len(text) / 20:  # spaced text: words
        start = rng.randrange(max(1, len(words) - PASSAGE_WORDS))
        window = words[start : start + PASSAGE_WORDS]
        if edit:
            window = [("zebra" if i % EDIT_EVERY == EDIT_EVERY - 1 else w) for i, w in enumerate(window)]
        return " ".join(window)
    start = rng.randrange(max(1, len(text) - 3 * PASSAGE_WORDS))
    window = list(text[start : start + 3 * PASSAGE_WORDS])
    if edit:
        window = [("□" if i % EDIT_EVERY == EDIT_EVERY - 1 and not c.isspace() else c) for i, c in enumerate(window)]
    return "".join(window)


def pick(kept: list[dict], n: int, rng: random.Random) -> list[dict]:
    """n documents spread over the languages (round robin over them, in a seeded order)."""
    by_lang: dict[str, list[dict]] = collections.defaultdict(list)
    for d in kept:
        by_lang[d.get("lang") or "?"].append(d)
    for docs in by_lang.values():
        rng.shuffle(docs)
    order = sorted(by_lang)
    rng.shuffle(order)
    chosen: list[dict] = []
    while len(chosen) < n and any(by_lang.values()):
        for lang in order:
            if by_lang[lang] and len(chosen) < n:
                chosen.append(by_lang[lang].pop())
    return chosen


def benchmark_items(kept: list[dict], picks: int, rng: random.Random) -> list[dict]:
    chosen = pick(kept, picks, rng)
    sample = rng.sample(kept, min(200, len(kept)))
    vocabulary = [w for ws in words(pa.array([d["text"] for d in sample])).to_pylist() for w in ws]
    items = [{"question": passage(d["text"], rng, edit=i % 2 == 1), "answer": "A", "kind": ("verbatim", "edited")[i % 2],
              "source_id": d["id"]} for i, d in enumerate(chosen)]
    for _ in range(max(1, picks // 2)):
        items.append({"question": " ".join(rng.choice(vocabulary) for _ in range(PASSAGE_WORDS)), "answer": "B",
                      "kind": "unrelated", "source_id": None})
    return items


def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)} if len(words) >= n else {tuple(words)}


def expected_ids(docs: list[dict], doc_ngrams: list[set], items: list[dict], cfg: DecontaminateConfig) -> list[str]:
    """Documents sharing a word n-gram (tuples of words, not hashes; `doc_ngrams` per document) with a
    benchmark record (its fields joined by a newline, as the stage reads them)."""
    bench = set()
    for w in words(pa.array(["\n".join(i[f] for f in cfg.fields) for i in items])).to_pylist():
        bench |= ngrams(w, cfg.ngram)
    return [d["id"] for d, grams in zip(docs, doc_ngrams) if not bench.isdisjoint(grams)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=DEFAULT, help="a corpus directory with raw/ (default: %(default)s)")
    ap.add_argument("--files", type=int, default=0, help="use only the first N raw files (0: all)")
    ap.add_argument("--picks", type=int, default=40, help="kept documents put into the benchmark, half verbatim, half edited")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=None, help="working directory (default: a temporary one, removed)")
    args = ap.parse_args(argv)

    from pyspark.sql import SparkSession

    work = args.work or Path(tempfile.mkdtemp(prefix="decontamination-check-"))
    raw = sorted((args.corpus / "raw").iterdir())
    raw = raw[: args.files] if args.files else raw
    (work / "raw").mkdir(parents=True, exist_ok=True)
    for f in raw:
        target = work / "raw" / f.name
        if not target.exists():
            target.symlink_to(f.resolve())
    spark = (SparkSession.builder.master("local[2]").appName("decontamination-check")
             .config("spark.driver.host", "127.0.0.1").config("spark.ui.enabled", "false").getOrCreate())
    try:
        plain = cli.run_stages(spark, str(work / "raw"), str(work / "plain"), PipelineConfig())
        deduped = rows(work / "plain" / "dedupe")
        items = benchmark_items(deduped, args.picks, random.Random(args.seed))
        (work / "bench").mkdir(exist_ok=True)
        (work / "bench" / "quiz.jsonl").write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))
        # every dropped document is written to dropped/, not a sample of them, so all can be checked
        cfg = config_lib.load(PipelineConfig, overrides=[f"decontaminate.benchmarks={work / 'bench'}",
                                                          "decontaminate.fields=question,answer",
                                                          "audit.dropped_samples_per_reason=1000000"])
        shutil.copytree(work / "plain", work / "bench-run", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("decontaminate", "tokenize"))
        run = cli.run_stages(spark, str(work / "raw"), str(work / "bench-run"), cfg, resume=True)
    finally:
        spark.stop()

    stats = {s["stage"]: s for s in run}
    doc_ngrams = [ngrams(w, cfg.decontaminate.ngram) if w else set()
                  for w in words(pa.array([d["text"] for d in deduped])).to_pylist()]
    expected = expected_ids(deduped, doc_ngrams, items, cfg.decontaminate)
    dropped = rows(work / "bench-run" / "decontaminate", "dropped")
    got = [d["id"] for d in dropped]
    kept = rows(work / "bench-run" / "decontaminate")
    dec = stats["decontaminate"]
    checks = {
        "dropped exactly the expected documents": sorted(got) == sorted(expected),
        "each with its reason, benchmark and n-gram count": all(
            d["reason"] == REASON and d["benchmark"] == "quiz" and d["benchmark_ngrams"] > 0 for d in dropped),
        "stats count them per benchmark": dec["dropped"] == ({REASON: len(expected)} if expected else {})
        and dec["benchmarks"]["quiz"]["documents"] == len(expected),
        "kept = dedupe's documents, in order, minus them": kept == [d for d in deduped if d["id"] not in set(expected)],
        "input = kept + dropped": dec["input"] == dec["kept"] + sum(dec["dropped"].values()) + sum(dec["rejected"].values()),
        "tokenize read what decontaminate kept": stats["tokenize"]["input"] == dec["kept"],
        "the document of every verbatim and edited passage dropped": {i["source_id"] for i in items if i["source_id"]} <= set(got),
        "no unrelated passage matched": not expected_ids(deduped, doc_ngrams,
                                                         [i for i in items if i["kind"] == "unrelated"], cfg.decontaminate),
    }
    kinds = collections.Counter(i["kind"] for i in items)
    langs = collections.Counter(d.get("lang") for d in deduped if d["id"] in set(expected))
    print(f"corpus {args.corpus} ({len(raw)} raw files): {plain[2]['kept']:,} documents after dedupe")
    print(f"benchmark: {kinds['verbatim']} verbatim, {kinds['edited']} edited, {kinds['unrelated']} unrelated passages")
    print(f"expected contaminated {len(expected)}, dropped {len(got)}; by language: "
          + ", ".join(f"{k}={v}" for k, v in sorted(langs.items(), key=lambda kv: str(kv[0]))))
    print(f"decontaminate seconds {dec.get('seconds')}")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
