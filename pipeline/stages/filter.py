"""filter: language ID, quality rules and PII placeholders over the clean stage's documents."""
from __future__ import annotations

import time

import pyarrow as pa
from pyspark.sql import SparkSession

from pipeline.filter.batch import filter_batch, filter_counters
from pipeline.filter import langid, quality
from pipeline.stages import spark_io
from pipeline.stages.config import PipelineConfig


def run(spark: SparkSession, input_uri: str, output_uri: str, cfg: PipelineConfig) -> dict:
    start = time.time()
    expected = spark_io.read_stats(input_uri)["kept"]
    filter_cfg = cfg.filter
    added = [("lang", pa.string()), ("lang_score", pa.float32())]
    try:  # before the old output is touched
        if filter_cfg.langid_model:
            langid.check_model(filter_cfg.langid_model)
        if filter_cfg.quality.enabled:
            quality.check_model(filter_cfg.quality)
    except ValueError as e:
        raise spark_io.StageError(str(e)) from None
    if filter_cfg.quality.enabled:
        added.append(("quality_score", pa.float32()))
    attempt = spark_io.begin(output_uri, input_uri)
    read_schema = spark_io.stage_schema(input_uri)
    schema = pa.schema(
        list(read_schema)
        + added
        + [("_status", pa.string()), ("_reason", pa.string()), ("_main_content", pa.bool_())]
    )
    pii_email = spark.sparkContext.accumulator(0)
    pii_ip = spark.sparkContext.accumulator(0)
    main_content = spark.sparkContext.accumulator(0)

    def annotate(batches):
        for batch in batches:
            out = filter_batch(batch, filter_cfg)
            counters = filter_counters(out)
            pii_email.add(counters.get("pii_email", 0))
            pii_ip.add(counters.get("pii_ip", 0))
            main_content.add(counters["main_content_extracted"])
            yield out.cast(schema)

    doc_columns = read_schema.names + [name for name, _ in added]
    routes = {
        "kept": spark_io.Route("data", doc_columns),
        "dropped": spark_io.Route("dropped", doc_columns + ["_reason"], sample=cfg.audit.dropped_samples_per_reason),
    }
    write = spark_io.part_writer(output_uri, routes, attempt)
    # Each part is read, filtered and written by one Python task: the text never crosses into the JVM.
    result = spark_io.collect_written(spark_io.read_stage(
        spark, input_uri, transform=lambda batches: write(annotate(batches)), schema=spark_io.WRITTEN))
    stats = spark_io.stage_stats(
        "filter", expected, result, time.time() - start, pii={"email": pii_email.value, "ip": pii_ip.value},
        main_content_extracted=main_content.value,
    )
    spark_io.commit(output_uri, attempt, dict(result.files), stats)
    return stats

