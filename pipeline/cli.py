"""Command lines of the spark-submit jobs: arguments, config, the Spark session, and a readable summary."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import typing

from pipeline import config as config_lib
from pipeline import storage
from pipeline.stages.config import PipelineConfig

STAGES = ("clean", "dedupe", "filter", "tokenize")

DESCRIPTIONS = {
    "clean": "Read raw documents (JSONL, JSONL.gz/.zst, Parquet, WARC/WET, HTML), normalise Unicode, control "
    "characters, whitespace and boilerplate lines; unusable records go to rejected/ with file, line and reason.",
    "dedupe": "Remove exact duplicates (hash of normalised text), then near duplicates (MinHash LSH, verified "
    "edges, distributed connected components); keeps the smallest id of each cluster; writes clusters/.",
    "filter": "Identify the language (fastText lid.176), apply Gopher/C4/FineWeb quality rules (language-aware), "
    "replace e-mail and public IP addresses; every drop carries its reason.",
    "tokenize": "Train (or load) a byte-level BPE, encode every document with EOS, and write WebDataset token "
    "shards for train/val plus tokenizer.json and manifest.json.",
}


def _config_keys(obj, prefix: str = "") -> list[str]:
    lines = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            lines += _config_keys(value, f"{prefix}{f.name}.")
        else:
            lines.append(f"  {prefix}{f.name} = {json.dumps(value)}")
    return lines


def parser(stage: str | None) -> argparse.ArgumentParser:
    name = f"jobs/{stage or 'pipeline'}.py"
    desc = DESCRIPTIONS[stage] if stage else "Run clean, dedupe, filter and tokenize in sequence into OUTPUT/<stage>."
    section = [stage] if stage else list(STAGES) + ["audit"]
    epilog = "configuration keys (YAML sections or --set section.key=value; defaults shown):\n" + "\n".join(
        line for s in section for line in _config_keys(getattr(PipelineConfig(), s), f"{s}.")
    )
    epilog += "\n\nSpark settings come from spark-submit (--master, --conf), never from this job."
    p = argparse.ArgumentParser(
        prog=f"spark-submit {name}",
        description=desc,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if stage:
        p.add_argument("--input", required=True, help="input URI: a directory or file (local path, file://, s3://, hdfs://); "
                       + ("raw files" if stage == "clean" else "the previous stage's output directory"))
        p.add_argument("--output", required=True, help="this stage's output directory URI")
    else:
        p.add_argument("--input", required=True, help="raw input URI (directory or file; local, file://, s3://, hdfs://)")
        p.add_argument("--output", required=True, help="output URI; stages land in OUTPUT/clean, /dedupe, /filter, /tokenize")
    p.add_argument("--config", help="YAML file with a section per stage (clean:, dedupe:, filter:, tokenize:, audit:)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set dedupe.threshold=0.85 (repeatable)")
    return p


def load_config(args, stage: str | None) -> PipelineConfig:
    overrides = []
    top = {f.name for f in dataclasses.fields(PipelineConfig)}
    for pair in args.set:
        key = pair.split("=", 1)[0]
        # In a stage job, a bare key means that stage's section: --set threshold=0.85
        overrides.append(pair if key.split(".")[0] in top or not stage else f"{stage}.{pair}")
    return config_lib.load(PipelineConfig, args.config, overrides)


def spark_session(app: str):
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(app).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    print(f"[{app}] Spark {spark.version}, master {spark.sparkContext.master}, UI {spark.sparkContext.uiWebUrl}", flush=True)
    return spark


def describe(stats: dict) -> str:
    parts = [f"{stats['stage']}: input {stats['input']:,} -> kept {stats['kept']:,}"]
    for kind in ("dropped", "rejected"):
        if stats.get(kind):
            reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(stats[kind].items(), key=lambda kv: -kv[1]))
            parts.append(f"  {kind} {sum(stats[kind].values()):,}: {reasons}")
    if "tokens" in stats:
        parts.append(f"  tokens {stats['tokens']}, shards {stats['shards']}")
    parts.append(f"  {stats['seconds']:.1f} s")
    return "\n".join(parts)


def _runners():
    from pipeline.stages import clean, dedupe, filter, tokenize

    return {"clean": clean.run, "dedupe": dedupe.run, "filter": filter.run, "tokenize": tokenize.run}


def _parse(stage: str | None, argv) -> tuple[argparse.Namespace, PipelineConfig]:
    args = parser(stage).parse_args(argv)
    try:
        return args, load_config(args, stage)
    except config_lib.ConfigError as e:
        sys.exit(f"config error: {e}")


def _fail_cleanly(main):
    """Errors about data or storage (missing input, uncommitted stage, access denied) end the job with one
    readable line and exit code 1, not a traceback."""

    def wrapped(*args, **kwargs):
        from pipeline.stages.spark_io import StageError

        try:
            return main(*args, **kwargs)
        except (StageError, storage.StorageError, OSError) as e:
            sys.exit(f"error: {e}")

    return wrapped


@_fail_cleanly
def stage_main(stage: str, argv: typing.Sequence[str] | None = None) -> dict:
    args, cfg = _parse(stage, argv)
    spark = spark_session(f"corpusforge-{stage}")
    print(f"[{stage}] {storage.display(args.input)} -> {storage.display(args.output)}", flush=True)
    stats = _runners()[stage](spark, args.input, args.output, cfg)
    print(describe(stats), flush=True)
    return stats


@_fail_cleanly
def pipeline_main(argv: typing.Sequence[str] | None = None) -> list[dict]:
    args, cfg = _parse(None, argv)
    spark = spark_session("corpusforge-pipeline")
    runners = _runners()
    start = time.time()
    summary, previous = [], args.input
    for stage in STAGES:
        out = storage.join(args.output, stage)
        print(f"[pipeline] {stage}: {storage.display(previous)} -> {storage.display(out)}", flush=True)
        stats = runners[stage](spark, previous, out, cfg)
        print(describe(stats), flush=True)
        summary.append(stats)
        previous = out
    storage.write_bytes(
        storage.join(args.output, "pipeline.json"),
        json.dumps({"stages": summary, "seconds": round(time.time() - start, 3)}, indent=2).encode(),
    )
    from pipeline import report

    print(f"[pipeline] report: {storage.display(report.write(args.output))}", flush=True)
    return summary
