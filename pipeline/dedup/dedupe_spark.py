"""Exact and near-duplicate removal over a Spark DataFrame of documents.

1. Exact: documents whose normalised text has the same 128-bit digest form a group.
2. Near: one member per exact group gets a MinHash signature (inside `mapInArrow`, a batch at a time);
   each LSH band bucket links its members to the bucket's smallest id (a star: k-1 edges, never k^2).
3. Verification: each candidate edge is kept only if the true Jaccard of the two shingle sets reaches
   the threshold, so LSH parameters can favour recall without costing precision.
4. Clusters: connected components of the verified edges (`components_spark`), merged with the exact
   groups.

Keep rule (`keep`): every cluster keeps its first publication at its canonical address, the member with
the smallest keep key (created date, URL form, id); every other member is dropped as `exact_duplicate`
(its normalised text equals a preferred member's) or `near_duplicate`. Every step is a function of
ids, keys and text only, so the output does not depend on partitioning or cores.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Optional

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline.dedup import keep, minhash
from pipeline.dedup.config import DedupeConfig
from pipeline.dedup.components_spark import checkpoint, connected_components

log = logging.getLogger(__name__)

# Arrow batches are cut to this many documents (or pairs) before shingling, which bounds the NumPy
# temporaries (8 bytes x shingles x a few arrays) whatever spark.sql.execution.arrow.maxRecordsPerBatch is.
SIGN_ROWS = 2000


@dataclass
class DedupeResult:
    decisions: DataFrame  # id, _reason: the dropped documents only (each part marks its own: decisions.mark)
    clusters: DataFrame  # id, cluster_id, kept: every document in a duplicate cluster of >= 2
    stats: dict[str, Any] = field(default_factory=dict)


FEATURES = T.StructType([
    T.StructField("id", T.StringType(), False),
    T.StructField("key", T.StringType(), False),
    T.StructField("exact", T.BinaryType(), False),
    T.StructField("shingles", T.LongType(), False),
    T.StructField("bands", T.ArrayType(T.LongType(), False), True),
])
# The same plus the full MinHash signature (uint64 viewed as int64), which the persisted index keeps so
# that later batches can verify candidates against history without its text.
SIGNED_FEATURES = T.StructType(FEATURES.fields + [
    T.StructField("signature", T.ArrayType(T.LongType(), False), False),
])
JACCARD = T.StructType([
    T.StructField("src", T.StringType(), False),
    T.StructField("dst", T.StringType(), False),
    T.StructField("jaccard", T.DoubleType(), False),
])


def _slices(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)


def features_fn(cfg: DedupeConfig, signature: bool = False):
    """The `mapInArrow` function (id, text[, created, url]) -> (id, keep key, exact digest, shingle count,
    band hashes), plus the signature when asked (schema `SIGNED_FEATURES`)."""
    spec, (bands, rows), num_perm, seed = cfg.shingle_spec(), cfg.lsh_params(), cfg.num_perm, cfg.seed
    schema = SIGNED_FEATURES if signature else FEATURES

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in _slices(batches, SIGN_ROWS):
            tokens = minhash.normalized_tokens(batch.column("text"))
            hashes, counts = minhash.shingles(tokens, spec)
            sig = minhash.signatures(hashes, counts, num_perm, seed)
            band = minhash.band_hashes(sig, bands, rows)
            offsets = pa.array(np.arange(0, band.size + 1, bands, dtype=np.int32))
            band_lists = pa.ListArray.from_arrays(offsets, pa.array(band.ravel()), mask=pa.array(counts == 0))
            exact = pa.array(minhash.exact_hashes(minhash.join_tokens(tokens)), pa.binary())
            columns = [batch.column("id"), keep.keep_keys(batch), exact, pa.array(counts), band_lists]
            if signature:
                sig_offsets = pa.array(np.arange(0, sig.size + 1, num_perm, dtype=np.int32))
                columns.append(pa.ListArray.from_arrays(sig_offsets, pa.array(sig.view(np.int64).ravel())))
            yield pa.RecordBatch.from_arrays(columns, names=schema.fieldNames())

    return run


def jaccard_fn(cfg: DedupeConfig):
    """The `mapInArrow` function (src, dst, src_text, dst_text) -> (src, dst, jaccard of shingle sets)."""
    spec = cfg.shingle_spec()

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in _slices(batches, SIGN_ROWS):
            left = minhash.shingle_sets(batch.column("src_text"), spec)
            right = minhash.shingle_sets(batch.column("dst_text"), spec)
            scores = [minhash.jaccard(a, b) for a, b in zip(left, right)]
            yield pa.RecordBatch.from_arrays(
                [batch.column("src"), batch.column("dst"), pa.array(scores, pa.float64())],
                names=["src", "dst", "jaccard"],
            )

    return run


def signing_columns(docs: DataFrame) -> DataFrame:
    """What `features_fn` reads of `docs`: id, text and the keep key's columns that `docs` has."""
    return docs.select("id", "text", *[c for c in keep.COLUMNS if c in docs.columns])


def candidate_edges(features: DataFrame) -> DataFrame:
    """(src, dst) with src the smallest id of a band bucket that dst shares with it; distinct over bands.

    The bucket minimum is an aggregate and the star a join against it, so a bucket of any size costs
    one row per member and never a list of members in memory. Almost every bucket holds one document:
    only the others' minima are joined, which keeps that side small enough to broadcast.
    """
    buckets = features.where(F.col("shingles") > 0).select(
        "id", F.posexplode("bands").alias("band", "bucket"))
    roots = (buckets.groupBy("band", "bucket").agg(F.min("id").alias("src"), F.count("*").alias("members"))
             .where(F.col("members") > 1).drop("members"))
    return (
        buckets.join(roots, ["band", "bucket"])
        .where(F.col("id") != F.col("src"))
        .select("src", F.col("id").alias("dst"))
        .distinct()
    )


Texts = Callable[[DataFrame], DataFrame]  # ids (column id) -> their documents' (id, text)


def texts_of(docs: DataFrame) -> Texts:
    """The `Texts` of a DataFrame of documents: one pass over it, a semi-join against the ids (which Spark
    can broadcast)."""
    return lambda ids: docs.select("id", "text").join(ids, "id", "left_semi")


def verify_edges(candidates: DataFrame, texts: Texts, cfg: DedupeConfig, checkpoint_dir: str) -> DataFrame:
    """Candidate edges whose true shingle-set Jaccard reaches the threshold, with that Jaccard.

    Only the documents on a candidate edge, a small share, are joined to the edges: their texts are cut
    out in one pass (`texts`) and written aside, so neither the whole text nor the documents' own reading
    is repeated for each end.
    """
    ends = candidates.select(F.col("src").alias("id")).unionByName(candidates.select(F.col("dst").alias("id")))
    text = checkpoint(texts(ends.distinct()), f"{checkpoint_dir}/edge_texts")
    pairs = (
        candidates.join(text.select(F.col("id").alias("src"), F.col("text").alias("src_text")), "src")
        .join(text.select(F.col("id").alias("dst"), F.col("text").alias("dst_text")), "dst")
        .select("src", "dst", "src_text", "dst_text")
    )
    return pairs.mapInArrow(jaccard_fn(cfg), JACCARD).where(F.col("jaccard") >= cfg.threshold)


def dedupe(docs: DataFrame, cfg: DedupeConfig, checkpoint_dir: str,
           features: Optional[DataFrame] = None, texts: Optional[Texts] = None) -> DedupeResult:
    """Decide the exact and near duplicates in `docs` (columns id, text, ...): see the module docstring.

    `docs` is evaluated twice (signatures, texts of candidate pairs): cache or checkpoint it first if it is
    expensive or not deterministic. Intermediate results are written as
    Parquet under `checkpoint_dir` (Spark must be able to write there); the caller removes it.
    `features` (the `FEATURES` columns of exactly these documents) saves signing them again when the
    caller already has them, as the incremental index does; `texts` gives the candidate pairs' texts
    some cheaper way than a pass over `docs` (the stage reads them in Python, by part).
    """
    bands, rows = cfg.lsh_params()
    if features is None:
        features = checkpoint(signing_columns(docs).mapInArrow(features_fn(cfg), FEATURES),
                              f"{checkpoint_dir}/features")
    else:
        features = features.select(*FEATURES.fieldNames())

    groups = features.groupBy("exact").agg(F.min_by("id", "key").alias("rep"), F.count("*").alias("size"))
    exact_of = features.join(groups.where(F.col("size") > 1), "exact").select("id", "rep")
    representatives = features.join(exact_of.where(F.col("id") != F.col("rep")), "id", "left_anti")

    candidates = checkpoint(candidate_edges(representatives), f"{checkpoint_dir}/candidates")
    edges = candidates
    if cfg.verify:
        verified = verify_edges(candidates, texts or texts_of(docs), cfg, checkpoint_dir).select("src", "dst")
        edges = checkpoint(verified, f"{checkpoint_dir}/verified")
    near, cc_rounds, cc_driver_edges = connected_components(
        edges, f"{checkpoint_dir}/cc", cfg.max_cc_rounds, cfg.cc_driver_max_edges)

    # Cluster of an exact-group member: its representative's component, or the group itself.
    in_exact = exact_of.join(near.withColumnRenamed("id", "rep"), "rep", "left").select(
        "id",
        F.coalesce("component", "rep").alias("cluster_id"),
        (F.col("id") != F.col("rep")).alias("exact"),
    )
    near_only = near.join(exact_of, "id", "left_anti").select(
        "id", F.col("component").alias("cluster_id"), F.lit(False).alias("exact"))
    # The components are labelled by their smallest id; each cluster keeps its smallest keep key.
    labelled = in_exact.unionByName(near_only).join(features.select("id", "key"), "id")
    kept = labelled.groupBy("cluster_id").agg(F.min_by("id", "key").alias("kept_id"))
    members = checkpoint(labelled.join(kept, "cluster_id").select(
        "id", F.col("kept_id").alias("cluster_id"), "exact"), f"{checkpoint_dir}/members")

    decisions = members.where(F.col("id") != F.col("cluster_id")).select(
        "id", F.when(F.col("exact"), "exact_duplicate").otherwise("near_duplicate").alias("_reason"))
    clusters = members.select("id", "cluster_id", (F.col("id") == F.col("cluster_id")).alias("kept"))

    reasons = {r["_reason"]: r["count"] for r in decisions.groupBy("_reason").count().collect()}
    n_candidates = candidates.count()
    n_verified = edges.count()
    sizes = members.groupBy("cluster_id").count().groupBy("count").agg(F.count("*").alias("clusters"))
    stats = {
        "exact_duplicates": reasons.get("exact_duplicate", 0),
        "near_duplicates": reasons.get("near_duplicate", 0),
        "candidate_edges": n_candidates,
        "verified_edges": n_verified,
        "rejected_edges": n_candidates - n_verified,
        "cc_rounds": cc_rounds,
        "cc_driver_edges": cc_driver_edges,
        "cluster_size_histogram": {r["count"]: r["clusters"] for r in sorted(sizes.collect())},
        "parameters": {**asdict(cfg), "bands": bands, "rows": rows},
    }
    log.info("dedupe: %s", {k: v for k, v in stats.items() if k != "parameters"})
    return DedupeResult(decisions, clusters, stats)
