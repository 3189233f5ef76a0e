"""Command lines of the spark-submit jobs: arguments, config, the Spark session, and a readable summary."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
import typing

from pipeline import config as config_lib
from pipeline import storage
from pipeline import stages
from pipeline.stages import STAGES
from pipeline.stages.config import PipelineConfig

LOCKED_EXIT = 75  # EX_TEMPFAIL: another scheduled run holds the lock; try again later

class _Parser(argparse.ArgumentParser):
    """Usage errors echo the arguments given, and a URI among them may carry credentials."""

    def error(self, message: str):
        super().error(storage.redact(message))


def parser(stage: str | None) -> argparse.ArgumentParser:
    name = f"jobs/{stage or 'pipeline'}.py"
    desc = stages.BY_NAME[stage].description if stage else (
        f"Run the stages ({', '.join(STAGES)}) in sequence into OUTPUT/<stage> (FineWeb's order: only what passes "
        "the filter is deduplicated).")
    section = [stage, "audit"] if stage else list(STAGES) + ["audit", "state"]
    epilog = "configuration keys (YAML sections or --set section.key=value; defaults shown):\n" + "\n".join(
        line for s in section for line in config_lib.describe_keys(getattr(PipelineConfig(), s), f"{s}.")
    )
    epilog += "\n\nSpark settings come from spark-submit (--master, --conf), never from this job."
    p = _Parser(
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
        p.add_argument("--output", required=True, help="output URI; stages land in OUTPUT/clean, /filter, /dedupe, /tokenize")
        p.add_argument("--state", metavar="URI",
                       help="scheduled (cron) mode: keep run state at URI and process only input files no earlier "
                       "run processed, as OUTPUT/batches/<id>/, deduplicated against every earlier batch, with a "
                       "new OUTPUT/manifest-NNNNNN.json version; one run at a time (a live lock makes the job "
                       f"exit with code {LOCKED_EXIT}); an interrupted batch is resumed by the next run")
    p.add_argument("--config", help="YAML file with a section per stage (clean:, filter:, dedupe:, tokenize:, audit:)")
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


def _check_worker_python() -> None:
    """Spark's Python workers run PYSPARK_PYTHON, or else `python3` from PATH, which outside this project's
    environment lacks pyarrow: the first task then fails under a page of Java stack. Unset, it becomes the
    interpreter the job runs on, as a user running `python jobs/clean.py` expects; set, it must import
    pyarrow, which is checked where it exists on this host (on a cluster it may exist only on the nodes)."""
    exe = os.environ.get("PYSPARK_PYTHON")
    if not exe:
        os.environ["PYSPARK_PYTHON"] = sys.executable
        return
    found = shutil.which(exe)
    if found is None or os.path.realpath(found) == os.path.realpath(sys.executable):
        return
    if subprocess.run([found, "-c", "import pyarrow"], capture_output=True, timeout=120).returncode != 0:
        sys.exit(f"error: PYSPARK_PYTHON={exe} cannot import pyarrow, so Spark's Python workers would fail; "
                 f"point it at an interpreter with this project's dependencies, e.g. {sys.executable}")


def spark_session(app: str):
    from pyspark.sql import SparkSession

    _check_worker_python()
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


def _parse(stage: str | None, argv) -> tuple[argparse.Namespace, PipelineConfig]:
    args = parser(stage).parse_args(argv)
    try:
        return args, load_config(args, stage)
    except config_lib.ConfigError as e:
        sys.exit(storage.redact(f"config error: {e}"))


def _check_uris(*uris: str | None) -> None:
    """Resolve the job's URIs before Spark starts, so a bad scheme or a URI carrying credentials fails at
    once, in one line."""
    for uri in uris:
        if uri:
            storage.resolve(uri)


def _redacted_traceback(kind, value, tb) -> None:
    """An unexpected error still shows its traceback, with any credential in it replaced."""
    sys.stderr.write(storage.redact("".join(traceback.format_exception(kind, value, tb))))


def _fail_cleanly(main):
    """Errors about data or storage (missing input, uncommitted stage, access denied) end the job with one
    readable line and exit code 1, not a traceback. Whatever ends the job prints no credential."""

    def wrapped(*args, **kwargs):
        from pipeline.stagedir import StageError

        sys.excepthook = _redacted_traceback
        try:
            return main(*args, **kwargs)
        except (StageError, storage.StorageError, OSError) as e:
            sys.exit(storage.redact(f"error: {e}"))
        except Exception as e:  # noqa: BLE001 -- only storage errors raised inside a Spark task are shortened
            cause = _task_storage_error(e)
            if cause is None:
                raise
            sys.exit(storage.redact(f"error (in a Spark task): {cause}"))

    return wrapped


_TASK_ERROR = re.compile(r"^\s*(?:[\w.]+\.)?(?:OSError|FileNotFoundError|PermissionError|StorageError): (.+)$", re.M)


def _task_storage_error(e: Exception) -> str | None:
    """The storage error message inside a failed Spark task's exception (it reaches the driver as a
    PythonException or Py4JJavaError wrapping the task's traceback), or None for anything else."""
    if type(e).__name__ not in ("PythonException", "Py4JJavaError"):
        return None
    found = _TASK_ERROR.findall(str(e))
    return found[-1] if found else None


@_fail_cleanly
def stage_main(stage: str, argv: typing.Sequence[str] | None = None) -> dict:
    args, cfg = _parse(stage, argv)
    _check_uris(args.input, args.output)
    spark = spark_session(f"corpusforge-{stage}")
    print(f"[{stage}] {storage.display(args.input)} -> {storage.display(args.output)}", flush=True)
    stats = stages.run(stage, spark, args.input, args.output, cfg)
    print(describe(stats), flush=True)
    _print_notes([stats])
    return stats


def _print_notes(summary: list[dict]) -> None:
    """Each stage's notes (the filter's languages at risk) come last, where an operator reads first."""
    for stats in summary:
        if note := stages.notes(stats["stage"], stats):
            print(note, flush=True)


def run_stages(spark, input_uri: str, out: str, cfg: PipelineConfig, files: list[str] | None = None,
               resume: bool = False) -> list[dict]:
    """Run the stages in order into OUT/<stage>; stop early when a stage keeps nothing. With `resume`, a
    stage that already committed is not run again (its stats are read back), unless a stage before it ran:
    then its committed output was made from other input (say, by a version that ran the stages in another
    order) and it runs again too."""
    from pipeline import stagedir

    summary, previous, ran = [], input_uri, False
    planned = [entry.name for entry in stages.enabled(cfg)]
    for stage in planned:
        stage_out = storage.join(out, stage)
        if resume and not ran and stagedir.is_committed(stage_out) and _still_valid(stage, stage_out, cfg):
            stats = stagedir.read_stats(stage_out)
            print(f"[pipeline] {stage}: already committed in {storage.display(stage_out)}, not run again", flush=True)
        else:
            print(f"[pipeline] {stage}: {storage.display(previous)} -> {storage.display(stage_out)}", flush=True)
            stats = stages.run(stage, spark, previous, stage_out, cfg, files if stage == STAGES[0] else None)
            ran = True
            print(describe(stats), flush=True)
        summary.append(stats)
        if stats["kept"] == 0 and stage != planned[-1]:
            print(f"[pipeline] {stage} kept no documents: the later stages have nothing to do", flush=True)
            break
        previous = stage_out
    return summary


def _still_valid(stage: str, stage_out: str, cfg: PipelineConfig) -> bool:
    """A committed dedupe stage counts only if the index holds the generation it added: the index commits
    just after the stage, so a crash in between is repaired by running the stage again (same decisions)."""
    if stage != "dedupe" or not cfg.dedupe.index:
        return True
    from pipeline import stagedir
    from pipeline.dedup import index_spark

    stats = stagedir.read_stats(stage_out)
    if not stats.get("index_added"):
        return True
    return len(index_spark.open_index(cfg.dedupe.index, cfg.dedupe).generations) >= stats["index_generations"]


def _write_summary(out: str, summary: list[dict], seconds: float, **extra) -> None:
    storage.write_bytes(storage.join(out, "pipeline.json"),
                        json.dumps({"stages": summary, "seconds": round(seconds, 3), **extra}, indent=2).encode())
    if summary and summary[-1]["stage"] == STAGES[-1]:
        from pipeline import report

        print(f"[pipeline] report: {storage.display(report.write(out))}", flush=True)


@_fail_cleanly
def pipeline_main(argv: typing.Sequence[str] | None = None) -> list[dict]:
    args, cfg = _parse(None, argv)
    _check_uris(args.input, args.output, args.state)
    spark = spark_session("corpusforge-pipeline")
    if args.state:
        summary = scheduled_run(spark, args.input, args.output, args.state, cfg)
    else:
        start = time.time()
        summary = run_stages(spark, args.input, args.output, cfg)
        _write_summary(args.output, summary, time.time() - start)
    _print_notes(summary)
    return summary


def scheduled_run(spark, input_uri: str, output_uri: str, state_uri: str, cfg: PipelineConfig) -> list[dict]:
    """One batch of a scheduled run (pipeline/state.py): the new input files, deduplicated against every
    earlier batch, into OUTPUT/batches/<id>/ and a new manifest version. No new files: a no-op."""
    from pipeline import state as state_lib
    from pipeline import spark_io

    try:
        lock = state_lib.Lock(state_uri, cfg.state).acquire()
    except state_lib.LockHeld as e:
        print(f"[state] {e}", flush=True)
        sys.exit(LOCKED_EXIT)
    try:
        state = state_lib.State.open(state_uri)
        batch = state.next_batch(spark_io.list_inputs(input_uri))
        if batch is None:
            print(f"[state] no new input under {storage.display(input_uri)} since {len(state.committed)} "
                  f"committed batches: nothing to do", flush=True)
            return []
        print(f"[state] {'resuming' if batch.resumed else 'starting'} {batch.id}: {len(batch.files)} input files",
              flush=True)
        cfg = dataclasses.replace(
            cfg,
            dedupe=dataclasses.replace(cfg.dedupe, index=cfg.dedupe.index or state.index_uri),
            tokenize=dataclasses.replace(
                cfg.tokenize, tokenizer=cfg.tokenize.tokenizer or state.first_tokenizer(output_uri) or ""),
        )
        out = state_lib.batch_dir(output_uri, batch.id)
        start = time.time()
        summary = run_stages(spark, input_uri, out, cfg, files=sorted(batch.files), resume=batch.resumed)
        _write_summary(out, summary, time.time() - start, batch=batch.id)
        wrote_shards = bool(summary) and summary[-1]["stage"] == STAGES[-1]
        rel = f"{state_lib.BATCHES}/{batch.id}/tokenize"
        record = {
            "id": batch.id,
            "stages": {s["stage"]: {k: s[k] for k in ("input", "kept", "dropped", "rejected")} for s in summary},
            "manifest": f"{rel}/manifest.json" if wrote_shards else None,
            "tokenizer": f"{rel}/tokenizer.json" if wrote_shards else None,
        }
        version = state_lib.write_manifest_version(output_uri, state.committed + [record])
        state.commit(batch, record)
        if wrote_shards:
            print(f"[state] {batch.id} committed; manifest version {storage.display(version)}", flush=True)
        else:
            print(f"[state] {batch.id} committed without new shards; the manifest is unchanged", flush=True)
        return summary
    finally:
        lock.release()
