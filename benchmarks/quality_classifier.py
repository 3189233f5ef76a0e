"""The fastText quality classifier filter on the labelled shared corpus: what it adds, and what it costs.

The classifier is trained from the pipeline's own decisions, never from the corpus labels: the default
filter runs over shards 00-03, its kept documents become `keep` and its dropped
ones `junk` (`quality_train_spark.train`, default TrainConfig, seed 0). Shards 04-07 are then filtered without
and with the classifier (threshold 0.5) and compared on the labels: junk recall and false drops of
originals per language. Last, scoring throughput: `quality.scores` (prefix, whitespace, batch predict,
score extraction) against bare fastText `predict` on the same prepared texts, side by side.

    .venv/bin/python benchmarks/quality_classifier.py [--corpus ../shared/corpus] [--batch 1000]
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import labelled_corpus  # noqa: E402
from pipeline import evaluate  # noqa: E402
from pipeline.config import merge  # noqa: E402
from pipeline.filter import FilterConfig, filter_batch  # noqa: E402
from pipeline.filter import quality  # noqa: E402
from pipeline.filter.quality_train_spark import Examples, TrainConfig, train  # noqa: E402


def filtered(docs: list[dict], cfg: FilterConfig, batch: int) -> list[dict]:
    return [row for i in range(0, len(docs), batch)
            for row in filter_batch(pa.RecordBatch.from_pylist(docs[i : i + batch]), cfg).to_pylist()]


def summary(rows: list[dict], labels: dict[str, dict]) -> tuple[float, dict[str, tuple[int, int]], collections.Counter]:
    junk = [r["_status"] == "dropped" for r in rows if labels[r["id"]]["kind"] == "junk"]
    langs: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    by_kind = collections.Counter()
    for r in rows:
        label = labels[r["id"]]
        if label["kind"] == "original":
            langs[label["lang"]][0] += 1
            langs[label["lang"]][1] += r["_status"] == "dropped"
        if r["_reason"] == quality.REASON:
            by_kind[label["kind"]] += 1
    return sum(junk) / len(junk), {k: tuple(v) for k, v in langs.items()}, by_kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=labelled_corpus.DEFAULT)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    labels = evaluate.labels(args.corpus)
    fields = ("id", "text", "source", "url", "created")
    first = [{k: d[k] for k in fields} for d in evaluate.documents(args.corpus, "docs-0[0-3].jsonl.gz", cleaned=True)]
    second = [{k: d[k] for k in fields} for d in evaluate.documents(args.corpus, "docs-0[4-7].jsonl.gz", cleaned=True)]

    cfg = TrainConfig()
    decided = filtered(first, FilterConfig(), args.batch)
    rows = [("__label__keep" if r["_status"] == "kept" else "__label__junk", r["text"]) for r in decided]
    rng = random.Random(cfg.seed)
    rng.shuffle(rows)
    texts = quality.model_input(pa.array([t for _, t in rows]), cfg.max_chars)
    examples = [(label, t) for (label, _), t in zip(rows, texts) if t.strip()]
    cut = int(len(examples) * (1 - cfg.holdout_fraction))
    counts = collections.Counter(label for label, _ in examples)
    out = tempfile.mkdtemp(prefix="quality-bench-")
    report = train(Examples(examples[:cut], examples[cut:], dict(counts)), out, cfg)
    print(f"trained on shards 00-03 ({dict(counts)}) in {report['seconds']:.1f} s; held out: "
          + json.dumps(report["holdout"]["model.bin"]))

    model = f"{out}/model.bin"
    base = filtered(second, FilterConfig(), args.batch)
    (r0, langs0, _) = summary(base, labels)
    runs = {}
    for name, languages in (("all languages", []), ("English only", ["en"])):
        cfg_f = merge(FilterConfig(), {"quality": {"model": model, "languages": languages}})
        runs[name] = summary(filtered(second, cfg_f, args.batch), labels)
        print(f"shards 04-07, {len(second)} documents, classifier on {name}: junk recall {r0:.3f} -> "
              f"{runs[name][0]:.3f}; quality_classifier drops by label kind: {dict(runs[name][2])}")
    print("false drops of originals per language (>= 10 originals): default | classifier on all | on English only")
    for lang, (n, d0) in sorted(langs0.items(), key=lambda kv: -kv[1][0]):
        if n >= 10:
            print(f"  {lang:4s} {d0 / n:6.3f} | " + " | ".join(f"{r[1][lang][1] / n:6.3f}" for r in runs.values())
                  + f"  ({n} originals)")

    cfg_q = merge(FilterConfig(), {"quality": {"model": model}}).quality
    texts = pa.array([d["text"] for d in second])
    ft = quality.load_model(model)
    prepared = quality.model_input(texts, cfg_q.max_chars)
    chunks = [texts.slice(i, args.batch) for i in range(0, len(texts), args.batch)]
    start = time.process_time()
    for i in range(0, len(prepared), args.batch):
        ft.predict(prepared[i : i + args.batch], k=-1)
    bare = time.process_time() - start
    start = time.process_time()
    for chunk in chunks:
        quality.scores(chunk, cfg_q)
    ours = time.process_time() - start
    print(f"scoring {len(second)} documents: quality.scores {len(second) / ours:,.0f} docs per CPU-second, bare "
          f"fastText predict on prepared texts {len(second) / bare:,.0f}: ratio {bare / ours:.2f}")


if __name__ == "__main__":
    main()
