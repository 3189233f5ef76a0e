"""Filter quality as a held-out check sees it: from a `jobs/pipeline.py` run's output, not from filter_batch.

`benchmarks/filter_quality.py` measures the filter's logic on every cleaned document. A run of the whole
pipeline (clean -> filter -> dedupe -> tokenize) differs in what the filter sees (the clean stage's reading
of the raw files, WARC pages included) and in what survives after it: dedupe keeps one document per
duplicate cluster, which may be a copy of the original, and a page that arrives twice (its text in a JSONL
shard and its HTML in a WARC file) forms a cluster with a document the labels do not know. This script
reads the committed `clean/`, `filter/` and `dedupe/` stages of a run over the labelled corpus and prints,
per language of labelled originals:
- `filter`: the filter's false drops among the originals that reached it (clean kept them): what the
  held-out check computes from `filter/`, and what filter_quality.py measures, with its 95% Wilson
  interval (where the rate of another corpus drawn the same way may fall);
- `absent`: originals whose id is not in the run's final documents (`dedupe/data`), for whatever reason;
- `lost`: originals absent with nothing of their duplicate cluster kept (no labelled copy, nor the
  document dedupe kept in their place);
- `to unlabelled`: originals dedupe dropped for a document without a label (the same page read from WARC);
and junk recall (junk absent from `filter/data`) and language-ID accuracy on the originals filter kept.

    .venv/bin/spark-submit --master 'local[2]' jobs/pipeline.py --input ../shared/corpus/raw --output OUT
    .venv/bin/python benchmarks/pipeline_quality.py --run OUT [--corpus ../shared/corpus]
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import labelled_corpus  # noqa: E402
from pipeline import evaluate  # noqa: E402
from pipeline import storage  # noqa: E402
from pipeline.report import batches  # noqa: E402
from pipeline.stagedir import listed_files  # noqa: E402


def read_columns(stage: str, subdir: str, columns: list[str]) -> list[dict]:
    """Rows of `columns` of a committed stage's `subdir` parts."""
    return [row for batch in batches(listed_files(stage, subdir), columns) for row in batch.to_pylist()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="output directory of jobs/pipeline.py")
    parser.add_argument("--corpus", type=Path, default=labelled_corpus.DEFAULT)
    args = parser.parse_args()
    labels = evaluate.labels(args.corpus)
    run = str(args.run)

    reached = {r["id"] for r in read_columns(storage.join(run, "clean"), "data", ["id"])}
    passed = {r["id"]: r["lang"] for r in read_columns(storage.join(run, "filter"), "data", ["id", "lang"])}
    final = {r["id"] for r in read_columns(storage.join(run, "dedupe"), "data", ["id"])}
    if not reached or not passed or not final:
        sys.exit(f"{run}: no committed clean/, filter/ and dedupe/ stages")
    clusters = read_columns(storage.join(run, "dedupe"), "clusters", ["id", "cluster_id", "kept"])
    kept_in_cluster = {c["cluster_id"]: c["id"] for c in clusters if c["kept"]}
    cluster_of = {c["id"]: c["cluster_id"] for c in clusters}
    final_clusters = {labels[i]["cluster"] for i in final if i in labels and labels[i]["cluster"]}

    table = collections.defaultdict(collections.Counter)
    correct = total_passed = 0
    for doc_id, label in labels.items():
        if label["kind"] != "original":
            continue
        row = table[label["lang"]]
        row["originals"] += 1
        row["reached"] += doc_id in reached
        row["filter"] += doc_id in reached and doc_id not in passed
        absent = doc_id not in final
        winner = kept_in_cluster.get(cluster_of.get(doc_id))  # the document dedupe kept in its place
        row["absent"] += absent
        row["lost"] += absent and label["cluster"] not in final_clusters and winner not in final
        row["to unlabelled"] += doc_id in passed and absent and winner is not None and winner not in labels
        if doc_id in passed:
            total_passed += 1
            correct += passed[doc_id] == label["lang"]
    junk = [doc_id for doc_id, label in labels.items() if label["kind"] == "junk"]
    recall = f"{sum(doc_id not in passed for doc_id in junk) / len(junk):.3f}" if junk else "-"

    print(f"{args.run}: {len(reached):,} documents reached the filter, {len(passed):,} passed it, "
          f"{len(final):,} left after dedupe")
    print(f"junk recall {recall} ({len(junk):,} junk documents); "
          f"language-ID accuracy on originals the filter kept {correct / total_passed:.4f} ({correct:,}/{total_passed:,})")
    print(f"{'lang':6}{'originals':>10}{'reached':>9}{'filter':>9}{'95% interval':>14}{'absent':>9}{'lost':>9}"
          f"{'to unlabelled':>15}")
    for lang, row in sorted(table.items(), key=lambda kv: -kv[1]["originals"]):
        n = row["originals"]
        low, high = evaluate.wilson_interval(row["filter"], row["reached"])
        print(f"{lang:6}{n:>10,}{row['reached']:>9,}{row['filter'] / max(row['reached'], 1):>9.1%}"
              f"{f'{low:.1%}-{high:.1%}':>14}{row['absent'] / n:>9.1%}{row['lost'] / n:>9.1%}{row['to unlabelled']:>15,}")


if __name__ == "__main__":
    main()
