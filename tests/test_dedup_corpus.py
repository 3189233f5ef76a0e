"""Quality of the Spark dedupe on the labelled shared corpus (junk left out, as its README says)."""
from __future__ import annotations

import random
from collections import defaultdict

import pytest

from pipeline import evaluate
from pipeline.dedup.config import DedupeConfig
from pipeline.dedup.dedupe_spark import dedupe


def labelled_sample(corpus, others: int = 2000):
    """Every document of a labelled duplicate cluster plus `others` documents without duplicates."""
    labels = {i: rec for i, rec in evaluate.labels(corpus).items() if rec["kind"] in ("original", "near_dup", "exact_dup")}
    singles = sorted(i for i, rec in labels.items() if rec["cluster"] is None)
    wanted = {i for i, rec in labels.items() if rec["cluster"]} | set(random.Random(0).sample(singles, others))
    docs = [(d["id"], d["text"]) for d in evaluate.documents(corpus) if d["id"] in wanted]
    return docs, labels


@pytest.mark.corpus
def test_labelled_duplicates_are_found_and_distinct_documents_stay_apart(spark, shared_corpus, tmp_path):
    docs, labels = labelled_sample(shared_corpus)
    frame = spark.createDataFrame(docs, "id string, text string").repartition(4)
    clusters = {r["id"]: r["cluster_id"] for r in dedupe(frame, DedupeConfig(), str(tmp_path)).clusters.collect()}
    present = {i for i, _ in docs}
    copies = [i for i in present if labels[i]["dup_of"] in present
              and (labels[i]["kind"] == "exact_dup" or (labels[i]["jaccard"] or 0) >= 0.8)]
    found = sum(clusters.get(i, i) == clusters.get(labels[i]["dup_of"]) for i in copies)
    assert found / len(copies) >= 0.97
    # The corpus has no unlabelled pair above Jaccard 0.2, so a predicted cluster that spans two
    # labelled clusters (or a labelled cluster and a document without duplicates) is a false merge.
    spans = defaultdict(set)
    for i, c in clusters.items():
        spans[c].add(labels[i]["cluster"] or i)
    assert [truth for truth in spans.values() if len(truth) > 1] == []
