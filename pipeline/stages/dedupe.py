"""dedupe: exact then MinHash-LSH near-duplicate removal over the documents the filter kept (any document
stage's output works: extra columns pass through)."""
from __future__ import annotations

import shutil
import tempfile
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline import spark_io, stagedir, storage
from pipeline.dedup import index_spark
from pipeline.dedup.components_spark import checkpoint
from pipeline.dedup.decisions import mark
from pipeline.dedup.dedupe_spark import FEATURES, SIGNED_FEATURES, Texts, dedupe, features_fn
from pipeline.stagedir import Route
from pipeline.stages.stage import Output, Stage


def _checkpoint_dir(output_uri: str, configured: str, attempt: str) -> tuple[str, str | None]:
    """(directory Spark checkpoints into, local temporary directory to remove afterwards or None)."""
    if configured:
        return storage.join(configured, attempt), None
    if urlparse(output_uri).scheme in ("", "file"):
        fs, path = storage.resolve(output_uri)
        return f"{path}/{stagedir.TEMPORARY}/{attempt}/cc", None
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


def _marked(decisions_uri: str) -> spark_io.Transform:
    """Each part marked with its own decisions (`write_by_part`), in the task that reads it."""

    def run(batches):
        dropped = spark_io.read_part(decisions_uri, spark_io.task_attempt()[0])
        return (mark(batch, dropped) for batch in batches)

    return run


class Dedupe(Stage):
    name = "dedupe"

    def prepare(self) -> None:
        """Every decision, before the output pass: features signed in the reading task (the text goes from
        the files to MinHash without crossing the JVM), exact and near duplicates found, and the dropped ids
        written by part for `transform`."""
        cfg = self.cfg.dedupe
        docs = spark_io.read_stage(self.spark, self.input_uri)
        self.partitions = cfg.partitions or docs.rdd.getNumPartitions()
        self.checkpoint_dir, self.local_tmp = _checkpoint_dir(self.output_uri, cfg.checkpoint_dir, self.attempt)
        self.index = index_spark.open_index(cfg.index, cfg) if cfg.index else None
        schema = SIGNED_FEATURES if self.index else FEATURES
        signed = spark_io.read_stage(self.spark, self.input_uri, transform=_signed_by_part(cfg, bool(self.index)),
                                     schema=T.StructType(schema.fields + [T.StructField("part", T.IntegerType(), False)]))
        features = checkpoint(signed, f"{self.checkpoint_dir}/features")
        parts = features.select("id", "part")
        texts = _texts_by_part(self.spark, self.input_uri, parts, f"{self.checkpoint_dir}/edge_ids")
        self.additions = None
        if self.index:
            indexed = index_spark.dedupe_against_index(docs, cfg, self.index, self.checkpoint_dir, features, texts)
            self.result, self.additions = indexed.result, indexed.additions
        else:
            self.result = dedupe(docs, cfg, self.checkpoint_dir, features, texts)
        self.decisions_uri = f"{self.checkpoint_dir}/decisions"
        spark_io.write_by_part(self.result.decisions.join(parts, "id"), self.decisions_uri)

    def transform(self) -> spark_io.Transform:
        # The output keeps the input's parts and order, minus the dropped documents.
        return _marked(self.decisions_uri)

    def finish(self, output: Output) -> dict:
        """The clusters beside the documents, and the index's next generation (committed after the stage)."""
        clusters = self.result.clusters.repartition(self.partitions, "cluster_id").sortWithinPartitions("cluster_id", "id")
        cluster_parts = spark_io.write_parts(
            clusters.withColumn("_status", F.lit("kept")).withColumn("_reason", F.lit(None).cast("string")),
            self.output_uri, {"kept": Route("clusters", ["id", "cluster_id", "kept"])}, self.attempt)
        output.written.files["clusters"] = cluster_parts.files.get("kept", [])
        index = {}
        self.pending = None
        if self.index:
            self.pending = index_spark.write_generation(self.additions, self.index, self.partitions)
            index = index_spark.index_stats(self.index, self.pending)
        return {**self.result.stats, **index, "document_schema": stagedir.DOCUMENT_SCHEMA}

    def close(self) -> None:
        if getattr(self, "local_tmp", None):
            shutil.rmtree(self.local_tmp, ignore_errors=True)

    def after_commit(self) -> None:
        # A crash between the stage's commit and the index's leaves an index without this batch; re-running
        # the stage then gives the same output and adds it.
        if self.pending:
            index_spark.commit_generation(self.index, self.pending)


STAGE = Dedupe
