"""Near-duplicate quality of `pipeline.dedup` against datasketch on the labelled shared corpus.

Ground truth (corpus README): Jaccard of word 5-gram shingles of `text.lower().split()`; junk and
malformed lines are left out of the scores (junk is still fed to both systems). True pairs are the pairs
inside labelled duplicate clusters whose Jaccard is >= threshold (the corpus removed every unlabelled pair
above 0.2). Both systems see the same documents in the same run:

- corpusforge: the Spark `dedupe` path (local[2]); its links are the verified edges and the exact groups.
- datasketch: `MinHash(num_perm)` of the ground-truth shingles, `MinHashLSH(threshold, num_perm)`;
  its links are the LSH query results (datasketch has no verification step).

Scores: link precision (links whose true Jaccard >= threshold), pair recall (true pairs that end in one
cluster), cluster-pair precision (pairs in one predicted cluster with true Jaccard >= threshold), and
labelled-duplicate recall (near copies with labelled Jaccard >= threshold and exact copies that end in
their original's cluster). Last, which member corpusforge keeps: of the found clusters that hold a labelled
original and a copy of it, how often the kept member is the original, beside how often the smallest id
(the rule before `pipeline.dedup.keep`) would have been.

    .venv/bin/python benchmarks/dedup_quality.py [--corpus /work/shared/corpus] [--threshold 0.8]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import evaluate  # noqa: E402
from pipeline.dedup.config import DedupeConfig  # noqa: E402
from pipeline.dedup.dedupe_spark import dedupe  # noqa: E402


def read_corpus(root: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """Documents the reader keeps (id -> document) and labels (id -> label)."""
    return {d["id"]: d for d in evaluate.documents(root)}, evaluate.labels(root)


def truth_shingles(text: str, n: int = 5) -> set[str]:
    tokens = text.lower().split()
    return {" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


class Truth:
    """Exact Jaccard of any pair, memoising shingle sets; None when either side has no shingles."""

    def __init__(self, docs: dict[str, str]):
        self.docs = docs
        self.cache: dict[str, set[str]] = {}

    def shingles(self, i: str) -> set[str]:
        if i not in self.cache:
            self.cache[i] = truth_shingles(self.docs[i])
        return self.cache[i]

    def jaccard(self, a: str, b: str) -> float | None:
        x, y = self.shingles(a), self.shingles(b)
        if not x or not y:
            return None
        return len(x & y) / len(x | y)


def components(ids, links) -> dict[str, str]:
    """Cluster of every id under the links (a benchmark-side union-find, for datasketch's pairs)."""
    parent = {i: i for i in ids}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in ids}


def score(name, links, cluster_of, scored, truth, true_pairs, labelled, threshold, seconds):
    true_pairs = [(a, b) for a, b in true_pairs if a in scored and b in scored]
    labelled = [(a, b) for a, b in labelled if a in scored and b in scored]
    links = [(a, b) for a, b in links if a in scored and b in scored]
    link_j = [truth.jaccard(a, b) for a, b in links]
    link_j = [j for j in link_j if j is not None]
    link_precision = sum(j >= threshold for j in link_j) / max(len(link_j), 1)
    recall = sum(cluster_of.get(a, a) == cluster_of.get(b, b) for a, b in true_pairs) / max(len(true_pairs), 1)
    members = defaultdict(list)
    for i, c in cluster_of.items():
        if i in scored:
            members[c].append(i)
    cluster_j = [truth.jaccard(a, b) for m in members.values() if len(m) > 1 for a, b in itertools.combinations(m, 2)]
    cluster_j = [j for j in cluster_j if j is not None]
    cluster_precision = sum(j >= threshold for j in cluster_j) / max(len(cluster_j), 1)
    found = sum(cluster_of.get(i, i) == cluster_of.get(o, o) for i, o in labelled) / max(len(labelled), 1)
    return {"system": name, "links": len(link_j), "link_precision": link_precision, "pair_recall": recall,
            "cluster_pairs": len(cluster_j), "cluster_pair_precision": cluster_precision,
            "labelled_recall": found, "seconds": seconds}


def run_corpusforge(docs: dict[str, dict], cfg: DedupeConfig):
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("dedup-quality")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "8")
             .config("spark.driver.memory", "4g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = [(i, d["text"], d.get("created"), d.get("url")) for i, d in docs.items()]
            df = spark.createDataFrame(rows, "id string, text string, created string, url string").repartition(8)
            start = time.perf_counter()
            result = dedupe(df, cfg, f"{tmp}/checkpoint")
            clusters = result.clusters.collect()  # benchmark only: the stage never collects
            seconds = time.perf_counter() - start
            verified = spark.read.parquet(f"{tmp}/checkpoint/verified").collect()
    finally:
        spark.stop()
    cluster_of = {r["id"]: r["cluster_id"] for r in clusters}
    groups = defaultdict(list)
    for r in clusters:
        groups[r["cluster_id"]].append(r["id"])
    # Links: verified near edges, plus each exact copy to the smallest member of its cluster.
    links = [(r["src"], r["dst"]) for r in verified]
    near_nodes = {x for link in links for x in link}
    links += [(min(m), i) for m in groups.values() for i in m if i != min(m) and i not in near_nodes]
    return links, cluster_of, result.stats, seconds


def kept_originals(cluster_of: dict[str, str], labels: dict[str, dict]) -> tuple[int, int, int]:
    """(clusters holding a labelled original and a copy of it, those keeping the original, those whose
    smallest id is the original)."""
    members = defaultdict(list)
    for i, c in cluster_of.items():
        members[c].append(i)
    found = kept = smallest = 0
    for kept_id, ids in members.items():
        originals = [i for i in ids if labels.get(i, {}).get("kind") == "original"
                     and any(labels.get(j, {}).get("dup_of") == i for j in ids)]
        if len(originals) == 1:
            found += 1
            kept += kept_id == originals[0]
            smallest += min(ids) == originals[0]
    return found, kept, smallest


def run_datasketch(docs: dict[str, str], threshold: float, num_perm: int):
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    links = []
    for i in sorted(docs):
        tokens = docs[i].lower().split()
        sh = truth_shingles(docs[i]) if len(tokens) >= 5 else ({" ".join(tokens)} if tokens else set())
        if not sh:
            continue
        m = MinHash(num_perm=num_perm)
        m.update_batch([s.encode("utf-8") for s in sh])
        links += [(j, i) for j in lsh.query(m)]
        lsh.insert(i, m)
    seconds = time.perf_counter() - start
    return links, components(docs, links), seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="/work/shared/corpus")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--num-perm", type=int, default=128)
    args = ap.parse_args()

    documents, labels = read_corpus(Path(args.corpus))
    docs = {i: d["text"] for i, d in documents.items()}
    scored = {i for i in docs if labels.get(i, {}).get("kind") in ("original", "near_dup", "exact_dup")}
    truth = Truth(docs)
    clusters = defaultdict(list)
    for i in scored:
        if labels[i]["cluster"]:
            clusters[labels[i]["cluster"]].append(i)
    true_pairs = [(a, b) for m in clusters.values() for a, b in itertools.combinations(sorted(m), 2)
                  if (j := truth.jaccard(a, b)) is not None and j >= args.threshold]
    labelled = [(i, labels[i]["dup_of"]) for i in scored if labels[i]["dup_of"] in scored and (
        labels[i]["kind"] == "exact_dup" or (labels[i]["jaccard"] or 0) >= args.threshold)]
    print(f"documents {len(docs)}, scored (no junk) {len(scored)}, true pairs J>={args.threshold}: "
          f"{len(true_pairs)}, labelled copies J>={args.threshold} or exact: {len(labelled)}")

    # The ground truth splits on whitespace, which makes whole sentences of zh/ja text single tokens:
    # a second row per system leaves those documents out.
    spaced = {i for i in scored if labels[i]["lang"] not in ("zh", "ja")}
    cfg = DedupeConfig(threshold=args.threshold, num_perm=args.num_perm)
    rows = []
    links, cluster_of, stats, seconds = run_corpusforge(documents, cfg)
    for name, subset in (("corpusforge", scored), ("corpusforge (no zh/ja)", spaced)):
        rows.append(score(name, links, cluster_of, subset, truth, true_pairs, labelled, args.threshold, seconds))
    found, kept, smallest = kept_originals(cluster_of, labels)
    keep_line = (f"kept member is the labelled original in {kept:,} of {found:,} found clusters ({kept / found:.1%}); "
                 f"the smallest id would be in {smallest:,} ({smallest / found:.1%})")
    links, cluster_of, seconds = run_datasketch(docs, args.threshold, args.num_perm)
    for name, subset in (("datasketch", scored), ("datasketch (no zh/ja)", spaced)):
        rows.append(score(name, links, cluster_of, subset, truth, true_pairs, labelled, args.threshold, seconds))

    print("corpusforge stats:", json.dumps({k: v for k, v in stats.items() if k != "parameters"}))
    print(f"corpusforge bands x rows = {stats['parameters']['bands']} x {stats['parameters']['rows']}")
    print(keep_line)
    cols = ["system", "links", "link_precision", "pair_recall", "cluster_pairs", "cluster_pair_precision",
            "labelled_recall", "seconds"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
