"""filter: language ID, quality rules and PII placeholders over the clean stage's documents."""
from __future__ import annotations

import dataclasses
import time
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipeline.filter.config import FilterConfig
from pipeline.filter.pii import replace_pii_batch

from pipeline.filter.batch import filter_batch, filter_counters
from pipeline.filter import langid, quality
from pipeline.stages import spark_io
from pipeline.stages.config import PipelineConfig


_SCORE_BINS_SCHEMA = pa.schema([("lang", pa.string()), ("bin", pa.int64()), ("n", pa.int64())])


def language_scores(spark: SparkSession, input_uri: str, cfg: FilterConfig) -> dict[str, dict]:
    """Per-language n, median, std and threshold of this run's language scores, from a first pass that
    identifies each part's documents as filter_batch does (after PII replacement) and counts their scores
    in fixed bins; only per-language bin counts, summed by Spark, reach the driver."""

    def bins(batches):
        for batch in batches:
            texts = pc.fill_null(batch.column("text"), "")
            if cfg.pii:
                texts, _, _ = replace_pii_batch(texts)
            langs, scores = langid.identify(texts, cfg.langid_max_chars, cfg.langid_model)
            counts: dict[tuple[str, int], int] = defaultdict(int)
            for lang, b in zip(langs, np.minimum((scores.astype(np.float64) * langid.SCORE_BINS).astype(np.int64),
                                                 langid.SCORE_BINS - 1).tolist()):
                counts[(lang, b)] += 1
            yield pa.RecordBatch.from_pylist([{"lang": l, "bin": b, "n": n} for (l, b), n in counts.items()],
                                             schema=_SCORE_BINS_SCHEMA)

    df = spark_io.read_stage(spark, input_uri, transform=bins, schema=spark_io.spark_schema(_SCORE_BINS_SCHEMA))
    hists: dict[str, np.ndarray] = {}
    for row in df.groupBy("lang", "bin").agg(F.sum("n").alias("n")).collect():
        hists.setdefault(row.lang, np.zeros(langid.SCORE_BINS, dtype=np.int64))[row.bin] += row.n
    return langid.language_score_stats(hists, cfg.adaptive_min_docs, cfg.min_lang_score)


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
    lang_scores = None
    if filter_cfg.lang_threshold == "adaptive":
        lang_scores = language_scores(spark, input_uri, filter_cfg)
        filter_cfg = dataclasses.replace(filter_cfg, lang_thresholds={
            lang: s["threshold"] for lang, s in lang_scores.items() if s["adaptive"]})
        for lang, s in lang_scores.items():  # the threshold used: an explicit per-language minimum wins
            s["threshold"] = filter_cfg.min_lang_score_for(lang)
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
        **({"lang_scores": lang_scores} if lang_scores is not None else {}),
    )
    spark_io.commit(output_uri, attempt, dict(result.files), stats)
    return stats

