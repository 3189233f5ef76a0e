"""Incremental dedup: each batch is compared with a persisted index of earlier batches' kept documents.

```
INDEX/
  generations.json                  written last: the committed generations and the MinHash parameters
  gen-000001/data/part-NNNNN.parquet   id, exact, bands, signature of one batch's newly kept documents
  gen-000001/stats.json, _SUCCESS      the stage commit discipline of `spark_io`
```
A batch adds at most one generation and never touches an earlier one; readers read only the generations
`generations.json` lists, so a crash before it is rewritten leaves the index as it was. History has no
text, so a candidate pair with history is verified by the signatures' Jaccard estimate.

A batch document whose id the index already holds is the same document: it is never dropped for
history and is not added again. A history document re-submitted in the batch is also met by the in-batch
rule (smallest keep key kept, `keep`), so it counts as history only against batch documents with a smaller
key, which that rule would keep over it. Re-running a batch against the index it already added therefore makes the
same decisions as the run that added it, and adds nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import reduce
from typing import Iterator, Optional

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline import storage
from pipeline.dedup.components_spark import checkpoint
from pipeline.dedup.dedupe_spark import (
    SIGN_ROWS, SIGNED_FEATURES, DedupeConfig, DedupeResult, Texts, _slices, dedupe, features_fn, signing_columns,
)
from pipeline import spark_io, stagedir

GENERATIONS = "generations.json"
COLUMNS = ["id", "exact", "bands", "signature"]  # one row per kept document; bands null for empty text
EXACT_REASON = "exact_duplicate_of_history"
NEAR_REASON = "near_duplicate_of_history"
ESTIMATE = T.StructType([
    T.StructField("id", T.StringType(), False),
    T.StructField("estimate", T.DoubleType(), False),
])


class IndexMismatch(stagedir.StageError):
    pass


def index_parameters(cfg: DedupeConfig) -> dict:
    """What band hashes and signatures depend on: an index only serves batches signed the same way."""
    bands, rows = cfg.lsh_params()
    return {"num_perm": cfg.num_perm, "seed": cfg.seed, "bands": bands, "rows": rows, "ngram": cfg.ngram,
            "char_ngram": cfg.char_ngram, "char_shingles": cfg.char_shingles,
            "char_script_fraction": cfg.char_script_fraction}


@dataclass
class Index:
    uri: str
    parameters: dict
    generations: list[dict] = field(default_factory=list)  # {"name", "documents"}, in commit order

    @property
    def documents(self) -> int:
        return sum(g["documents"] for g in self.generations)


def open_index(uri: str, cfg: DedupeConfig) -> Index:
    """The committed state of the index at `uri` (empty if it has none yet); refuses other parameters."""
    params = index_parameters(cfg)
    marker = storage.join(uri, GENERATIONS)
    if not storage.exists(marker):
        return Index(uri, params)
    listing = json.loads(storage.read_bytes(marker))
    if listing["parameters"] != params:
        raise IndexMismatch(
            f"dedupe index {storage.display(uri)} was built with {listing['parameters']}, this run signs with "
            f"{params}: use the same num_perm, seed, bands, rows and shingle settings, or a new index")
    return Index(uri, params, listing["generations"])


def read_history(spark, index: Index) -> Optional[DataFrame]:
    """Every committed generation's rows (COLUMNS), or None for an empty index."""
    parts = [spark_io.read_stage(spark, storage.join(index.uri, g["name"])) for g in index.generations]
    return reduce(DataFrame.unionByName, parts) if parts else None


def estimate_fn(num_perm: int):
    """The `mapInArrow` function (id, signature, history_signature) -> (id, fraction of equal minima)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in _slices(batches, SIGN_ROWS):
            a = batch.column("signature").flatten().to_numpy().reshape(batch.num_rows, num_perm)
            b = batch.column("history_signature").flatten().to_numpy().reshape(batch.num_rows, num_perm)
            yield pa.RecordBatch.from_arrays([batch.column("id"), pa.array((a == b).mean(axis=1))],
                                             names=ESTIMATE.fieldNames())

    return run


def outranks() -> F.Column:
    """Whether history document `history_id` makes batch document `id` its duplicate (module docstring);
    `history_key` is the keep key of a re-submitted history document, as the batch gives it."""
    return F.col("in_batch").isNull() | (F.col("key") < F.col("history_key"))


def history_candidates(new: DataFrame, past: DataFrame) -> DataFrame:
    """(id, history_id) pairs to verify (`new`: id, key, shingles, bands; `past`: history_id, bands,
    in_batch, history_key).

    As within a batch, a bucket is a star: each new document in it is paired with the bucket's smallest
    history id only, so k new and m history documents sharing a bucket give k pairs, not k*m. A near
    duplicate shares most of its bands with its original, so it meets the original as the smallest id of
    at least one of them. Re-submitted batch documents that the index already holds are paired as they
    are: whether one outranks a new document depends on both keep keys (`outranks`).
    """
    buckets = new.where(F.col("shingles") > 0).select("id", "key", F.posexplode("bands").alias("band", "bucket"))
    history = past.select("history_id", "in_batch", "history_key", F.posexplode("bands").alias("band", "bucket"))
    smallest = (history.where(F.col("in_batch").isNull()).groupBy("band", "bucket")
                .agg(F.min("history_id").alias("history_id"))
                .withColumn("in_batch", F.lit(None).cast(T.BooleanType()))
                .withColumn("history_key", F.lit(None).cast(T.StringType())))
    resubmitted = history.where(F.col("in_batch").isNotNull())
    return (buckets.join(smallest.unionByName(resubmitted), ["band", "bucket"]).where(outranks())
            .select("id", "history_id").distinct())


@dataclass
class IndexedResult:
    result: DedupeResult  # decisions with the history reasons too; in-batch clusters; stats
    additions: DataFrame  # COLUMNS of the kept documents the index does not hold yet


def history_drops(new: DataFrame, features: DataFrame, past: DataFrame, cfg: DedupeConfig,
                  checkpoint_dir: Optional[str] = None,
                  reasons: tuple[str, str] = (EXACT_REASON, NEAR_REASON)) -> tuple[DataFrame, DataFrame]:
    """((id, _reason) of the `new` documents that duplicate history, the candidate pairs verified).

    `new`: id, key, exact, shingles, bands; `features`: their signatures (id, signature); `past`:
    history_id, exact, bands, signature, in_batch, history_key. A document is an exact duplicate when a
    history document it does not outrank has its normalised-text digest, a near one when it shares an LSH
    bucket with one whose signature estimate reaches `cfg.threshold` (any shared bucket with verify off).
    The ablation's decontamination matches a training set against held-out documents with it too, under
    its own `reasons` (exact, near)."""
    exact = (new.select("id", "key", "exact")
             .join(past.select("history_id", "exact", "in_batch", "history_key"), "exact")
             .where(outranks()).select("id").distinct().select("id", F.lit(reasons[0]).alias("_reason")))
    candidates = history_candidates(new.join(exact, "id", "left_anti"), past)
    if checkpoint_dir:
        candidates = checkpoint(candidates, f"{checkpoint_dir}/history-candidates")
    matches = candidates
    if cfg.verify:
        pairs = (candidates.join(features.select("id", "signature"), "id")
                 .join(past.select("history_id", F.col("signature").alias("history_signature")), "history_id")
                 .select("id", "signature", "history_signature"))
        matches = pairs.mapInArrow(estimate_fn(cfg.num_perm), ESTIMATE).where(F.col("estimate") >= cfg.threshold)
    near = matches.select("id").distinct().select("id", F.lit(reasons[1]).alias("_reason"))
    return exact.unionByName(near), candidates


def dedupe_against_index(docs: DataFrame, cfg: DedupeConfig, index: Index, checkpoint_dir: str,
                         features: Optional[DataFrame] = None, texts: Optional[Texts] = None) -> IndexedResult:
    """Drop `docs` that duplicate history, then dedupe the rest among themselves (`dedupe`). `features`
    (the `SIGNED_FEATURES` of exactly these documents) and `texts` are `dedupe`'s."""
    if features is None:
        features = checkpoint(signing_columns(docs).mapInArrow(features_fn(cfg, signature=True), SIGNED_FEATURES),
                              f"{checkpoint_dir}/signed")
    history = read_history(docs.sparkSession, index)
    if history is None:
        history = docs.sparkSession.createDataFrame([], features.select(*COLUMNS).schema)
    known = features.join(history, "id", "left_semi").select("id", "key")
    new = features.join(known, "id", "left_anti")
    resubmitted = known.select(F.col("id").alias("history_id"), F.lit(True).alias("in_batch"),
                               F.col("key").alias("history_key"))
    past = history.withColumnRenamed("id", "history_id").join(resubmitted, "history_id", "left")

    matched, candidates = history_drops(new, features, past, cfg, checkpoint_dir)
    drops = checkpoint(matched, f"{checkpoint_dir}/history-drops")

    rest = features.join(drops, "id", "left_anti")
    result = dedupe(docs.join(drops, "id", "left_anti"), cfg, f"{checkpoint_dir}/batch", rest, texts)
    in_batch_dropped = result.clusters.where(~F.col("kept")).select("id")
    additions = (rest.join(known.select("id"), "id", "left_anti").join(in_batch_dropped, "id", "left_anti")
                 .select(*COLUMNS))

    reasons = {r["_reason"]: r["count"] for r in drops.groupBy("_reason").count().collect()}
    stats = {
        **result.stats,
        "exact_duplicates_of_history": reasons.get(EXACT_REASON, 0),
        "near_duplicates_of_history": reasons.get(NEAR_REASON, 0),
        "history_candidate_edges": candidates.count(),
    }
    decisions = result.decisions.unionByName(drops.select("id", "_reason"))
    return IndexedResult(DedupeResult(decisions, result.clusters, stats), additions)


@dataclass
class PendingGeneration:
    name: str
    attempt: str
    files: dict[str, list[str]]
    documents: int


def write_generation(additions: DataFrame, index: Index, partitions: int) -> Optional[PendingGeneration]:
    """Write the next generation's parts under its `_temporary` (invisible until `commit_generation`);
    None, and nothing left behind, when the batch adds no document."""
    name = f"gen-{len(index.generations) + 1:06d}"
    gen_uri = storage.join(index.uri, name)
    attempt = stagedir.begin(gen_uri)
    rows = additions.repartition(partitions, "id").sortWithinPartitions("id")
    written = spark_io.write_parts(rows, gen_uri, {"kept": stagedir.Route("data", COLUMNS)}, attempt)
    documents = written.rows.get("kept", 0)
    if documents == 0:
        stagedir.release(gen_uri)
        storage.delete(gen_uri)  # not listed in generations.json, so never part of the index
        return None
    return PendingGeneration(name, attempt, dict(written.files), documents)


def commit_generation(index: Index, pending: PendingGeneration) -> Index:
    """Commit the generation's directory, then list it in generations.json (the index's commit point)."""
    stagedir.commit(storage.join(index.uri, pending.name), pending.attempt, pending.files,
                    {"stage": "dedupe", "generation": pending.name, "documents": pending.documents})
    generations = index.generations + [{"name": pending.name, "documents": pending.documents}]
    listing = {"schema_version": 1, "parameters": index.parameters, "generations": generations,
               "documents": sum(g["documents"] for g in generations)}
    storage.write_bytes(storage.join(index.uri, GENERATIONS), json.dumps(listing, indent=1).encode())
    return Index(index.uri, index.parameters, generations)


def index_stats(index: Index, pending: Optional[PendingGeneration]) -> dict:
    """The index as it stands once this batch's generation (if any) is committed."""
    added = pending.documents if pending else 0
    return {"index_generations": len(index.generations) + (1 if pending else 0),
            "index_documents": index.documents + added, "index_added": added}
