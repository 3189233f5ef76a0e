"""dedupe: exact then MinHash-LSH near-duplicate removal over the clean stage's documents."""
from __future__ import annotations

import shutil
import tempfile
import time
from urllib.parse import urlparse

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipeline import storage
from pipeline.dedup import dedupe, index_spark
from pipeline.dedup.components_spark import checkpoint
from pipeline.dedup.dedupe_spark import FEATURES, features_fn
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


def run(spark: SparkSession, input_uri: str, output_uri: str, cfg: PipelineConfig) -> dict:
    start = time.time()
    expected = spark_io.read_stats(input_uri)["kept"]
    attempt = spark_io.begin(output_uri)
    docs = spark_io.read_stage(spark, input_uri)
    partitions = cfg.dedupe.partitions or docs.rdd.getNumPartitions()
    checkpoint_dir, local_tmp = _checkpoint_dir(output_uri, cfg.dedupe.checkpoint_dir, attempt)
    index = index_spark.open_index(cfg.dedupe.index, cfg.dedupe) if cfg.dedupe.index else None
    try:
        if index:
            indexed = index_spark.dedupe_against_index(docs, cfg.dedupe, index, checkpoint_dir)
            result = indexed.result
        else:
            # Signed in the reading task: the text goes from the files to MinHash without crossing the JVM.
            signed = spark_io.read_stage(spark, input_uri, transform=features_fn(cfg.dedupe), schema=FEATURES)
            features = checkpoint(signed, f"{checkpoint_dir}/features")
            result = dedupe(docs, cfg.dedupe, checkpoint_dir, features=features)
        # Output layout depends on the data only: ids hashed into a fixed number of parts, sorted by id.
        marked = result.docs.repartition(partitions, "id").sortWithinPartitions("id")
        doc_columns = docs.columns
        routes = {
            "kept": spark_io.Route("data", doc_columns),
            "dropped": spark_io.Route("dropped", doc_columns + ["_reason"], sample=cfg.audit.dropped_samples_per_reason),
        }
        written = spark_io.write_parts(marked, output_uri, routes, attempt)
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
        stats = spark_io.stage_stats("dedupe", expected, written, time.time() - start, **result.stats, **extra)
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
