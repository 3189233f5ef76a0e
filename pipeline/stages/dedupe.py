"""dedupe: exact then MinHash-LSH near-duplicate removal over the documents the filter kept (any document
stage's output works: extra columns pass through)."""
from __future__ import annotations

import shutil
import tempfile
import time
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline import storage
from pipeline.dedup import dedupe, index_spark
from pipeline.dedup.components_spark import checkpoint
from pipeline.dedup.decisions import mark
from pipeline.dedup.dedupe_spark import FEATURES, SIGNED_FEATURES, Texts, features_fn
from pipeline.stages import spark_io
from pipeline.stages.config import PipelineConfig


def _checkpoint_dir(output_uri: str, configured: str, attempt: str) -> tuple[str, str | None]:
    """(directory Spark checkpoints into, local temporary directory to remove afterwards or None)."""
    if configured:
        return storage.join(configured, attempt), None
    if urlparse(output_uri).scheme in ("", "file"):
        fs, path = storage.resolve(output_uri)
        return f"{path}/{spark_io.TEMPORARY}/{attempt}/cc", None
    tmp = tempfile.mkdtemp(prefix="corpusforge-cc-")
    return tmp, tmp


def _signed_by_part(cfg, signature: bool) -> spark_io.Transform:
    """`features_fn` in the task reading each part, with the part's number, which the output pass needs."""
    sign = features_fn(cfg, signature)

    def run(batches):
        part = spark_io.task_attempt()[0]
        for batch in sign(batches):
            yield batch.append_column("part", pa.array(np.full(batch.num_rows, part, np.int32)))

    return run


def _texts_by_part(spark: SparkSession, input_uri: str, parts: DataFrame, ids_uri: str) -> Texts:
    """dedupe's `Texts`: the ids' texts picked out of each part in the task that reads it, so only they
    cross into the JVM (`parts`: id, part of every document)."""

    def texts(ids: DataFrame) -> DataFrame:
        spark_io.write_by_part(ids.join(parts, "id"), ids_uri)
        return spark_io.read_stage(spark, input_uri, transform=_select_by_part(ids_uri), schema="id string, text string")

    return texts


def _select_by_part(ids_uri: str) -> spark_io.Transform:
    def run(batches):
        wanted = spark_io.read_part(ids_uri, spark_io.task_attempt()[0])
        if wanted is None:
            return
        wanted = wanted.column("id").combine_chunks()
        for batch in batches:
            picked = batch.filter(pc.is_in(batch.column("id"), value_set=wanted))
            if picked.num_rows:
                yield picked.select(["id", "text"])

    return run


def _mark_and_write(decisions_uri: str, write: spark_io.Transform) -> spark_io.Transform:
    """Each part marked with its own decisions (`write_by_part`) and written, in the task that reads it."""

    def run(batches):
        dropped = spark_io.read_part(decisions_uri, spark_io.task_attempt()[0])
        return write(mark(batch, dropped) for batch in batches)

    return run


def run(spark: SparkSession, input_uri: str, output_uri: str, cfg: PipelineConfig) -> dict:
    start = time.time()
    expected = spark_io.read_stats(input_uri)["kept"]
    attempt = spark_io.begin(output_uri, input_uri)
    docs = spark_io.read_stage(spark, input_uri)
    partitions = cfg.dedupe.partitions or docs.rdd.getNumPartitions()
    checkpoint_dir, local_tmp = _checkpoint_dir(output_uri, cfg.dedupe.checkpoint_dir, attempt)
    index = index_spark.open_index(cfg.dedupe.index, cfg.dedupe) if cfg.dedupe.index else None
    try:
        # Signed in the reading task: the text goes from the files to MinHash without crossing the JVM.
        schema = SIGNED_FEATURES if index else FEATURES
        signed = spark_io.read_stage(spark, input_uri, transform=_signed_by_part(cfg.dedupe, bool(index)),
                                     schema=T.StructType(schema.fields + [T.StructField("part", T.IntegerType(), False)]))
        features = checkpoint(signed, f"{checkpoint_dir}/features")
        parts = features.select("id", "part")
        texts = _texts_by_part(spark, input_uri, parts, f"{checkpoint_dir}/edge_ids")
        if index:
            indexed = index_spark.dedupe_against_index(docs, cfg.dedupe, index, checkpoint_dir, features, texts)
            result = indexed.result
        else:
            result = dedupe(docs, cfg.dedupe, checkpoint_dir, features, texts)
        # The output keeps the input's parts and order, minus the dropped documents: each part's task reads
        # its decisions and its documents and writes them, and the text never crosses into the JVM.
        decisions_uri = f"{checkpoint_dir}/decisions"
        spark_io.write_by_part(result.decisions.join(parts, "id"), decisions_uri)
        doc_columns = docs.columns
        routes = {
            "kept": spark_io.Route("data", doc_columns),
            "dropped": spark_io.Route("dropped", doc_columns + ["_reason"], sample=cfg.audit.dropped_samples_per_reason),
        }
        write = spark_io.part_writer(output_uri, routes, attempt)
        written = spark_io.collect_written(spark_io.read_stage(
            spark, input_uri, transform=_mark_and_write(decisions_uri, write), schema=spark_io.WRITTEN))
        clusters = result.clusters.repartition(partitions, "cluster_id").sortWithinPartitions("cluster_id", "id")
        cluster_parts = spark_io.write_parts(
            clusters.withColumn("_status", F.lit("kept")).withColumn("_reason", F.lit(None).cast("string")),
            output_uri,
            {"kept": spark_io.Route("clusters", ["id", "cluster_id", "kept"])},
            attempt,
        )
        extra, pending = {}, None
        if index:
            pending = index_spark.write_generation(indexed.additions, index, partitions)
            extra = index_spark.index_stats(index, pending)
        stats = spark_io.stage_stats("dedupe", expected, written, time.time() - start, **result.stats, **extra,
                                      document_schema=spark_io.DOCUMENT_SCHEMA)
        files = dict(written.files)
        files["clusters"] = cluster_parts.files.get("kept", [])
        spark_io.commit(output_uri, attempt, files, stats)
        # The index commits after the stage: a crash in between leaves an index without this batch, and
        # re-running the stage then gives the same output and adds it.
        if pending:
            index_spark.commit_generation(index, pending)
    finally:
        if local_tmp:
            shutil.rmtree(local_tmp, ignore_errors=True)
    return stats
