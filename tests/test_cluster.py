"""The pipeline on a real standalone Spark cluster (a master and two workers on 127.0.0.1) against a real S3
server gives the same bytes as local[2] on a local disk, and runs as scheduled batches. Its input is one
large plain JSONL file, which both workers' executors read in byte ranges.

The executors get the project only from `--py-files build/corpusforge.zip`, as on a real cluster: the jobs
are submitted from a directory outside the repo, and a probe job checks from inside a task that `pipeline`
is imported from the zip. The cluster reads its raw input from and writes every output to SeaweedFS on
127.0.0.1; the checks read S3 with boto3, independently of the code under test.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.tokenize.shards import parse_manifest, verify_shard
from s3server import S3Server, seaweedfs
from spark_cluster import build_pyfiles, running_cluster
from synthetic import near_copy, write_corpus

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SUBMIT_TIMEOUT = 300
SETTINGS = ["clean.reader.split_bytes=1", "tokenize.vocab_size=512", "tokenize.sample_tokens=256", "tokenize.shard_bytes=20000",
            "tokenize.val_fraction=0.1", "tokenize.min_frequency=1"]
PROBE = """\
import json, sys
from pyspark.sql import SparkSession

def where(_):
    import pipeline, pipeline.stages.clean
    return [(pipeline.__file__, pipeline.stages.clean.__file__)]

sc = SparkSession.builder.appName("corpusforge-probe").getOrCreate().sparkContext
print("PROBE " + json.dumps(sorted(set(sc.parallelize(range(4), 4).mapPartitions(where).collect()))))
"""


def submit(master: str, script: Path, args: list[str], zip_path: Path, cwd: Path, s3: S3Server | None = None) -> str:
    """spark-submit from outside the repo; executors see the project only through --py-files, and S3 only
    through the AWS_* variables (no caller's AWS settings leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PYTHONPATH"}
    env.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               **(s3.env() if s3 else {}))
    cmd = [str(VENV_BIN / "spark-submit"), "--master", master, "--py-files", str(zip_path),
           "--conf", f"spark.executorEnv.PYSPARK_PYTHON={sys.executable}",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
           "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=4",
           str(script), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=SUBMIT_TIMEOUT)
    errors = "\n".join(line for line in proc.stderr.splitlines() if " INFO " not in line)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{errors[-5000:]}"
    return proc.stdout


def files_under(root: Path | str, s3: S3Server | None = None) -> dict[str, str]:
    """Relative path -> sha256 of every file under a local directory or an S3 prefix (read with boto3), so a
    mismatch names the differing files."""
    if s3 is None:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(Path(root).rglob("*")) if p.is_file()}
    prefix = str(root).rstrip("/") + "/"
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=prefix)
    return {o["Key"][len(prefix):]: hashlib.sha256(get(s3, o["Key"])).hexdigest()
            for page in pages for o in page.get("Contents", []) if not o["Key"].endswith("/")}  # not directory markers


@contextlib.contextmanager
def node_environment(variables: dict[str, str]):
    """Start the cluster's daemons with these variables, as a real cluster's nodes are configured with the
    object store's endpoint and credentials: executors inherit the worker's environment, and the driver gets
    them from `submit`. Restored afterwards so no other test sees them."""
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def get(s3: S3Server, key: str) -> bytes:
    return s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read()


def put_file(s3: S3Server, key: str, path: Path) -> None:
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=path.read_bytes())


@pytest.fixture(scope="module")
def pyfiles_zip(tmp_path_factory) -> Path:
    return build_pyfiles(tmp_path_factory.mktemp("pyfiles"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, pyfiles_zip):
    """One pipeline run on local[2] from local disk, and on the cluster from S3 to S3 with the same input (one
    plain JSONL file of several MiB, read in byte ranges) and settings; then three scheduled runs on the
    cluster against S3 (two date partitions, then nothing new)."""
    if shutil.which("java") is None:
        pytest.skip("java not found: a standalone Spark cluster needs a JVM")
    tmp = tmp_path_factory.mktemp("cluster")
    write_corpus(tmp / "raw")
    write_corpus(tmp / "large", n=2500)
    (tmp / "one").mkdir()
    with open(tmp / "one" / "all.jsonl", "wb") as out:
        for part in sorted((tmp / "large").iterdir()):
            out.write(gzip.decompress(part.read_bytes()))
    (tmp / "probe.py").write_text(PROBE)
    cwd = tmp / "submit"
    cwd.mkdir()
    job = REPO / "jobs" / "pipeline.py"
    args = [a for s in SETTINGS for a in ("--set", s)]
    submit("local[2]", job, ["--input", str(tmp / "one"), "--output", str(tmp / "local"), *args], pyfiles_zip, cwd)
    extra = tmp / "extra.jsonl"  # batch 2 also brings a near duplicate of a batch-1 document
    first_day = [json.loads(line) for line in gzip.open(tmp / "raw" / "docs-0.jsonl.gz", "rt")]
    extra.write_text(json.dumps({"id": "late-near-copy", "text": near_copy(first_day[0]["text"], "zeppelin")}) + "\n")
    with seaweedfs(tmp / "seaweedfs") as s3, node_environment(s3.env()), \
            running_cluster(cores=1, workers=2, log_dir=tmp / "cluster-logs") as cluster:
        master = cluster.url
        put_file(s3, "raw/all.jsonl", tmp / "one" / "all.jsonl")
        probe = submit(master, tmp / "probe.py", [], pyfiles_zip, cwd)
        bucket = f"s3://{s3.bucket}"
        submit(master, job, ["--input", f"{bucket}/raw", "--output", f"{bucket}/cluster", *args], pyfiles_zip, cwd, s3)
        tasks_per_worker = cluster.tasks_run(app_index=1)
        scheduled = ["--input", f"{bucket}/daily", "--output", f"{bucket}/scheduled", "--state", f"{bucket}/state", *args]
        logs = []
        put_file(s3, "daily/date=2026-11-01/docs-0.jsonl.gz", tmp / "raw" / "docs-0.jsonl.gz")
        logs.append(submit(master, job, scheduled, pyfiles_zip, cwd, s3))
        put_file(s3, "daily/date=2026-11-02/docs-1.jsonl.gz", tmp / "raw" / "docs-1.jsonl.gz")
        put_file(s3, "daily/date=2026-11-02/extra.jsonl", extra)
        logs.append(submit(master, job, scheduled, pyfiles_zip, cwd, s3))
        before_noop = files_under("scheduled", s3)
        logs.append(submit(master, job, scheduled, pyfiles_zip, cwd, s3))
        yield {"local": tmp / "local", "s3": s3, "tasks_per_worker": tasks_per_worker, "probe": json.loads(probe.split("PROBE ", 1)[1].splitlines()[0]),
               "scheduled_logs": logs, "before_noop": before_noop, "scheduled": files_under("scheduled", s3)}


def test_pyfiles_zip_holds_the_packages(pyfiles_zip):
    names = set(zipfile.ZipFile(pyfiles_zip).namelist())
    assert {"pipeline/__init__.py", "pipeline/cli.py", "trainer/__init__.py"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_package_data_loads_from_the_pyfiles_zip(pyfiles_zip, tmp_path):
    """Executors import the project from the zip, so the filter's vendored JSON must load from it too."""
    probe = ("import pipeline.filter.text as text, pipeline.filter.config as config; "
             "print(text.__file__, len(text.STOP_WORDS), len(config.fineweb2_table()['configs']))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(pyfiles_zip)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    module, stop_lists, fineweb2_configs = out.stdout.split()
    assert "corpusforge.zip" in module and int(stop_lists) > 1 and int(fineweb2_configs) > 100


def test_executors_import_the_project_from_the_pyfiles_zip(runs):
    assert runs["probe"], "the probe job returned nothing"
    for package_file, module_file in runs["probe"]:
        assert "corpusforge.zip" in package_file and "corpusforge.zip" in module_file, (package_file, module_file)


def test_one_large_input_file_is_read_by_both_workers_in_several_parts(runs):
    assert all(n > 0 for n in runs["tasks_per_worker"]), runs["tasks_per_worker"]
    for stage in ("clean", "filter", "dedupe"):
        parts = json.loads((runs["local"] / stage / "_SUCCESS").read_text())["files"]["data"]
        assert len(parts) > 1, (stage, parts)


def test_cluster_run_writes_the_same_manifest_as_local(runs):
    local = json.loads((runs["local"] / "tokenize" / "manifest.json").read_text())
    cluster = json.loads(get(runs["s3"], "cluster/tokenize/manifest.json"))
    assert sum(s["samples"] for s in local["splits"].values()) > 0
    assert cluster == local


@pytest.mark.parametrize("stage", ["clean", "filter", "dedupe"])
def test_cluster_run_writes_byte_identical_stage_data(runs, stage):
    local = files_under(runs["local"] / stage / "data")
    assert local, f"local run wrote no {stage}/data parts"
    assert files_under(f"cluster/{stage}/data", runs["s3"]) == local


def test_cluster_run_writes_byte_identical_shards_and_tokenizer(runs):
    local = files_under(runs["local"] / "tokenize" / "shards")
    assert files_under("cluster/tokenize/shards", runs["s3"]) == local
    assert get(runs["s3"], "cluster/tokenize/tokenizer.json") == (runs["local"] / "tokenize" / "tokenizer.json").read_bytes()


def test_duplicates_were_removed_in_both_runs(runs):
    """The comparison is not vacuous: dedupe found the planted exact and near duplicates on both masters."""
    for name, stats in (("local", (runs["local"] / "dedupe" / "stats.json").read_text()),
                        ("cluster", get(runs["s3"], "cluster/dedupe/stats.json"))):
        dropped = json.loads(stats).get("dropped", {})
        assert sum(dropped.values()) >= 25, (name, dropped)


def test_scheduled_runs_on_the_cluster_write_a_manifest_version_per_batch_on_s3(runs):
    s3 = runs["s3"]
    assert "manifest-000001.json" in runs["before_noop"] and "manifest-000002.json" in runs["before_noop"]
    manifest = parse_manifest(json.loads(get(s3, "scheduled/manifest.json")), f"s3://{s3.bucket}/scheduled/manifest.json")
    shards = [s for split in manifest.splits.values() for s in split.shards]
    assert {s.url.split("/")[1] for s in shards} == {"batch-000001", "batch-000002"}
    for shard in shards:
        verify_shard(get(s3, f"scheduled/{shard.url}"), shard.sha256, shard.url)
    assert json.loads(get(s3, "scheduled/manifest-000001.json"))["splits"] != manifest.splits


def test_scheduled_batch_two_processes_only_its_files_and_drops_the_copy_of_batch_one(runs):
    s3 = runs["s3"]
    clean = json.loads(get(s3, "scheduled/batches/batch-000002/clean/stats.json"))
    assert clean["input_files"] == 2
    dedupe = json.loads(get(s3, "scheduled/batches/batch-000002/dedupe/stats.json"))
    assert dedupe["dropped"].get("near_duplicate_of_history", 0) >= 1, dedupe["dropped"]
    listing = json.loads(get(s3, "scheduled/batches/batch-000002/dedupe/_SUCCESS"))["files"]
    dropped = pa.concat_tables(pq.read_table(io.BytesIO(get(s3, f"scheduled/batches/batch-000002/dedupe/{p}")))
                               for p in listing["dropped"])
    reasons = dict(zip(dropped.column("id").to_pylist(), dropped.column("reason").to_pylist()))
    assert reasons.get("late-near-copy") == "near_duplicate_of_history"


def test_a_scheduled_run_with_no_new_input_on_the_cluster_is_a_no_op(runs):
    assert "nothing to do" in runs["scheduled_logs"][2]
    assert runs["scheduled"] == runs["before_noop"]
