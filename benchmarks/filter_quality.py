"""Quality of the filter stage's logic on the labelled shared corpus.

Reads raw/docs-*.jsonl.gz and labels/docs.jsonl.gz directly (malformed lines skipped), cleans the text
like the clean stage (NFC, control characters, whitespace runs, boilerplate lines), runs `filter_batch`
with the default config and prints:
- junk recall (junk documents dropped), false-drop rate of labelled originals per language,
- language-ID accuracy on kept originals and on lid/sentences.tsv,
- drops per rule (originals / junk), and filter_batch throughput (docs/s, one core).

    .venv/bin/python benchmarks/filter_quality.py [--corpus ../shared/corpus] [--batch 1000]
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import labelled_corpus  # noqa: E402
from pipeline.filter import FilterConfig, filter_batch  # noqa: E402
from pipeline.filter.langid import identify  # noqa: E402


def read_corpus(root: Path, shards: str = "docs-*.jsonl.gz") -> tuple[list[dict], dict[str, dict]]:
    """Documents as the clean stage leaves them, and the labels by id."""
    docs = [{k: d[k] for k in ("id", "text", "source", "url", "created")}
            for d in labelled_corpus.documents(root, shards, cleaned=True)]
    return docs, labelled_corpus.labels(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus")
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    docs, labels = read_corpus(args.corpus)
    cfg = FilterConfig()
    filter_batch(pa.RecordBatch.from_pylist(docs[:10]), cfg)  # load the model outside the timing
    out = []
    batches = [pa.RecordBatch.from_pylist(docs[i : i + args.batch]) for i in range(0, len(docs), args.batch)]
    start, start_cpu = time.perf_counter(), time.process_time()
    results = [filter_batch(batch, cfg) for batch in batches]
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    for result in results:
        out.extend(result.to_pylist())

    per_lang = collections.defaultdict(lambda: [0, 0])  # lang -> [originals, dropped]
    per_source = collections.defaultdict(lambda: [0, 0])  # (lang, upstream repository) -> same
    reasons = collections.defaultdict(lambda: collections.Counter())
    junk_types = collections.defaultdict(lambda: [0, 0])
    lid_ok = lid_n = 0
    for row in out:
        label = labels[row["id"]]
        kind = label["kind"]
        dropped = row["_status"] == "dropped"
        if dropped:
            reasons[row["_reason"]][kind if kind in ("original", "junk") else "copy"] += 1
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
    print("false-drop rate of originals per language:")
    worst = 0.0
    for lang, (n, d) in sorted(per_lang.items(), key=lambda kv: -kv[1][0]):
        worst = max(worst, d / n) if n >= 10 else worst
        print(f"  {lang:4s} {d / n:6.3f} ({d}/{n})")
    print(f"  worst (languages with >= 10 originals) {worst:.3f}")
    print("false-drop rate of originals per language and source (>= 50 originals):")
    for (lang, source), (n, d) in sorted(per_source.items(), key=lambda kv: -kv[1][0]):
        if n >= 50:
            print(f"  {lang:4s} {source:28s} {d / n:6.3f} ({d}/{n})")
    print("drops per rule:            original   junk   copy")
    for reason, c in sorted(reasons.items(), key=lambda kv: -sum(kv[1].values())):
        print(f"  {reason:28s} {c['original']:6d} {c['junk']:6d} {c['copy']:6d}")

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
