"""Faults injected into real runs: an executor JVM killed mid-dedupe on the standalone cluster, the S3 server
stopped during shard upload, the driver killed mid-write and the stage re-run. Each run is compared with a
clean run of the same stage, byte for byte. Also the security rules of the shard reader and the source code
that no other test covers.

Every fault is triggered by an observed state (a running task, a shard object in the bucket, a part file in
`_temporary/`), never by a timer, and each test first checks that the fault really hit the work in progress.
"""
from __future__ import annotations

import ast
import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline.stagedir import SUCCESS, TEMPORARY, listed_files
from pipeline.tokenize.shards import ShardError, build_manifest, parse_manifest, write_shard
from s3server import S3Server, seaweedfs
from spark_cluster import build_pyfiles, free_port, running_cluster
from synthetic import write_corpus

REPO = Path(__file__).resolve().parents[1]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
JOB_TIMEOUT = 300  # seconds a job may take before the test gives up on it
WAIT_TIMEOUT = 120  # seconds to wait for the state that triggers a fault
INPUT_FILES = 4  # clean runs one task per input file here: with 2 cores, tasks are still queued when the first part appears
ONE_TASK_PER_FILE = ["--set", "clean.reader.split_bytes=1"]  # small files would otherwise share one task
OUTAGE_SECONDS = 4  # how long the S3 server stays down; well inside storage.S3_MAX_ATTEMPTS' backoff
TOKENIZE = ["--set", "vocab_size=512", "--set", "sample_tokens=256", "--set", "shard_bytes=8000",
            "--set", "val_fraction=0.1", "--set", "min_frequency=1"]


# ---------------------------------------------------------------------------------------------- helpers


@dataclass
class Job:
    """A spark-submit running in its own process group, its output in files (a pipe could fill and block it)."""

    proc: subprocess.Popen
    log_dir: Path

    def wait(self) -> int:
        try:
            return self.proc.wait(JOB_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the whole job (spark-submit's JVM, the Python driver, its Python workers) and wait until
        every process of its group is gone."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise AssertionError(f"processes of job group {self.proc.pid} survived SIGKILL")

    def output(self) -> str:
        return (self.log_dir / "stdout").read_text(errors="replace") + (self.log_dir / "stderr").read_text(errors="replace")

    def failure(self) -> str:
        """The tail of the job's output without Spark's INFO chatter, for assertion messages."""
        return "\n".join(line for line in self.output().splitlines() if " INFO " not in line)[-5000:]


def start_job(master: str, stage: str, args: list[str], log_dir: Path, *, pyfiles: Path | None = None,
              conf: dict[str, str] | None = None, env: dict[str, str] | None = None) -> Job:
    settings = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4",
                "spark.executorEnv.PYSPARK_PYTHON": sys.executable, **(conf or {})}
    cmd = [str(SPARK_SUBMIT), "--master", master]
    if pyfiles:
        cmd += ["--py-files", str(pyfiles)]
    for key, value in settings.items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [str(REPO / "jobs" / f"{stage}.py"), *args, *(ONE_TASK_PER_FILE if stage == "clean" else [])]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full_env.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
                    **(env or {}))
    full_env.pop("PYTHONPATH", None)
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "stdout", "wb") as out, open(log_dir / "stderr", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=log_dir, env=full_env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    return Job(proc, log_dir)


@contextlib.contextmanager
def running(job: Job):
    """Kill the job if the test leaves early."""
    try:
        yield job
    finally:
        if job.proc.poll() is None:
            job.kill()


def run_job(master: str, stage: str, args: list[str], log_dir: Path, **kwargs) -> Job:
    job = start_job(master, stage, args, log_dir, **kwargs)
    with running(job):
        assert job.wait() == 0, f"{stage} failed:\n{job.failure()}"
    return job


def wait_for(what: str, found, job: Job):
    """Poll until `found()` returns something truthy; fail if the job ends first or nothing comes."""
    deadline = time.monotonic() + WAIT_TIMEOUT
    while time.monotonic() < deadline:
        result = found()
        if result:
            return result
        if job.proc.poll() is not None:
            raise AssertionError(f"the job ended ({job.proc.returncode}) before {what}:\n{job.failure()}")
        time.sleep(0.05)
    raise AssertionError(f"no {what} after {WAIT_TIMEOUT} s")


def stage_files(stage_dir: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file of a stage; stats.json without its wall-clock `seconds`."""
    out = {}
    for p in sorted(stage_dir.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        if p.name == "stats.json":
            data = json.dumps({k: v for k, v in json.loads(data).items() if k != "seconds"}, sort_keys=True).encode()
        out[str(p.relative_to(stage_dir))] = hashlib.sha256(data).hexdigest()
    return out


def assert_committed_exactly(stage_dir: Path) -> None:
    """`_SUCCESS` lists every file of every part directory, each once, and nothing of `_temporary`."""
    listing = json.loads((stage_dir / SUCCESS).read_text())["files"]
    for subdir, files in listing.items():
        assert len(files) == len(set(files)), f"{subdir}: duplicated entries {files}"
        assert not [f for f in files if TEMPORARY in f], files
        on_disk = sorted(str(p.relative_to(stage_dir)) for p in (stage_dir / subdir).rglob("*") if p.is_file())
        assert sorted(files) == on_disk, f"{subdir}: _SUCCESS lists {files}, the directory holds {on_disk}"
        assert listed_files(str(stage_dir), subdir) == [str(stage_dir / f) for f in files]
    assert not (stage_dir / TEMPORARY).exists()


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pyfiles_zip(tmp_path_factory) -> Path:
    return build_pyfiles(tmp_path_factory.mktemp("pyfiles"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, pyfiles_zip) -> dict[str, Path]:
    """Synthetic documents with planted duplicates in INPUT_FILES files, and fault-free clean and dedupe runs
    on local[2]: the bytes every faulted run must reproduce."""
    tmp = tmp_path_factory.mktemp("reference")
    write_corpus(tmp / "generated")
    lines = [line for f in sorted((tmp / "generated").iterdir()) for line in gzip.decompress(f.read_bytes()).splitlines()]
    (tmp / "raw").mkdir()
    for k in range(INPUT_FILES):
        (tmp / "raw" / f"docs-{k}.jsonl").write_bytes(b"\n".join(lines[k::INPUT_FILES]) + b"\n")
    run_job("local[2]", "clean", ["--input", str(tmp / "raw"), "--output", str(tmp / "clean")], tmp / "logs-clean")
    run_job("local[2]", "dedupe", ["--input", str(tmp / "clean"), "--output", str(tmp / "dedupe")], tmp / "logs-dedupe")
    return {"raw": tmp / "raw", "clean": tmp / "clean", "dedupe": tmp / "dedupe"}


# ---------------------------------------------------------------------------------------------- executor killed


def _rest(ui_port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/api/v1/{path}", timeout=2) as r:
        return json.load(r)


def _running_task_of_a_later_job(ui_port: int) -> bool:
    """True while a job after the first has a task running (the first job only reads the input's footer)."""
    try:
        apps = _rest(ui_port, "applications")
        jobs = _rest(ui_port, f"applications/{apps[0]['id']}/jobs?status=running") if apps else []
    except (OSError, ValueError):  # the driver's UI is not up yet, or answered before its REST API was ready
        return False
    return any(j["jobId"] >= 1 and j["numActiveTasks"] > 0 for j in jobs)


@pytest.mark.slow
def test_dedupe_survives_its_executor_jvm_being_killed_and_writes_the_clean_runs_bytes(reference, pyfiles_zip, tmp_path):
    # Tasks last fractions of a second: the kill can fall between two of them, and then no task was lost and
    # the run proves nothing. Such a run is repeated (its output is still checked); one must lose a task.
    # Most of dedupe's later jobs are short (connected components finish on the driver), so allow five.
    with running_cluster(log_dir=tmp_path / "cluster-logs") as cluster:
        for attempt in range(5):
            out, ui_port = tmp_path / f"dedupe-{attempt}", free_port()
            job = start_job(cluster.url, "dedupe", ["--input", str(reference["clean"]), "--output", str(out)],
                            tmp_path / f"logs-{attempt}", pyfiles=pyfiles_zip,
                            conf={"spark.ui.enabled": "true", "spark.ui.port": str(ui_port),
                                  "spark.task.maxFailures": "4"})
            with running(job):
                wait_for("a running task of a later job", lambda: _running_task_of_a_later_job(ui_port), job)
                executors = cluster.executor_pids()
                assert len(executors) == 1, f"expected one executor JVM under the worker, found {executors}"
                os.kill(executors[0], signal.SIGKILL)
                # The job cannot finish without a new executor, which lives only until the application ends:
                # look for it while the job runs.
                wait_for("a replacement executor",
                         lambda: [p for p in cluster.executor_pids() if p not in executors], job)
                assert job.wait() == 0, f"dedupe did not recover from the lost executor:\n{job.failure()}"
            assert stage_files(out) == stage_files(reference["dedupe"])
            assert_committed_exactly(out)
            if "ExecutorLostFailure" in job.output():
                return
    pytest.fail("in 5 runs no task was running on the killed executor: the fault missed")


# ---------------------------------------------------------------------------------------------- driver killed


@pytest.mark.slow
def test_rerun_after_the_driver_is_killed_mid_write_equals_a_clean_run(reference, tmp_path):
    out = tmp_path / "clean"
    args = ["--input", str(reference["raw"]), "--output", str(out)]
    job = start_job("local[2]", "clean", args, tmp_path / "logs-killed")
    with running(job):
        parts = wait_for("a part file under _temporary", lambda: sorted(out.glob(f"{TEMPORARY}/*/data/part-*")), job)
        job.kill()
    assert not (out / SUCCESS).exists(), f"the stage committed before the kill (first part {parts[0]}): the fault missed"
    assert list(out.glob(f"{TEMPORARY}/*/data/part-*")), "the kill left no partial output to recover from"

    run_job("local[2]", "clean", args, tmp_path / "logs-rerun")
    assert stage_files(out) == stage_files(reference["clean"])
    assert_committed_exactly(out)


@pytest.mark.slow
def test_rerunning_a_committed_stage_leaves_it_byte_identical(reference, tmp_path):
    out = tmp_path / "clean"
    shutil.copytree(reference["clean"], out)
    run_job("local[2]", "clean", ["--input", str(reference["raw"]), "--output", str(out)], tmp_path / "logs")
    assert stage_files(out) == stage_files(reference["clean"])
    assert_committed_exactly(out)


# ---------------------------------------------------------------------------------------------- S3 outage


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


def s3_objects(server: S3Server, prefix: str) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _shards_uploaded(server: S3Server, prefix: str) -> list[str]:
    return [k for k in s3_objects(server, f"{prefix}/{TEMPORARY}/") if k.endswith(".tar")]


def start_tokenize_to_s3(server: S3Server, input_dir: Path, prefix: str, log_dir: Path, **env) -> Job:
    return start_job("local[2]", "tokenize", ["--input", str(input_dir), "--output", f"s3://{server.bucket}/{prefix}", *TOKENIZE],
                     log_dir, env={**server.env(), **env})


@pytest.mark.slow
def test_tokenize_to_s3_rides_out_an_outage_during_shard_upload(s3, reference, tmp_path):
    prefix = "outage/tokenize"
    job = start_tokenize_to_s3(s3, reference["clean"], prefix, tmp_path / "logs")
    with running(job):
        before = wait_for("a shard uploaded to S3", lambda: _shards_uploaded(s3, prefix), job)
        s3.stop()
        time.sleep(OUTAGE_SECONDS)
        s3.start()
        assert job.wait() == 0, f"tokenize failed across a {OUTAGE_SECONDS} s S3 outage:\n{job.failure()}"

    client = s3.client()
    manifest = json.loads(client.get_object(Bucket=s3.bucket, Key=f"{prefix}/manifest.json")["Body"].read())
    listed = [shard for split in manifest["splits"].values() for shard in split["shards"]]
    assert len(before) < len(listed), "every shard was uploaded before the outage: the fault missed"
    for shard in listed:
        data = client.get_object(Bucket=s3.bucket, Key=f"{prefix}/{shard['url']}")["Body"].read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (shard["bytes"], shard["sha256"]), shard["url"]
    shard_objects = [k for k in s3_objects(s3, f"{prefix}/shards/") if not k.endswith("/")]  # not directory markers
    assert shard_objects == sorted(f"{prefix}/{s['url']}" for s in listed)
    assert f"{prefix}/{SUCCESS}" in s3_objects(s3, prefix)
    assert not s3_objects(s3, f"{prefix}/{TEMPORARY}/")


@pytest.mark.slow
def test_tokenize_to_s3_that_stays_down_fails_naming_the_cause_and_commits_nothing(s3, reference, tmp_path):
    prefix = "down/tokenize"
    job = start_tokenize_to_s3(s3, reference["clean"], prefix, tmp_path / "logs", AWS_MAX_ATTEMPTS="2")
    with running(job):
        wait_for("a shard uploaded to S3", lambda: _shards_uploaded(s3, prefix), job)
        s3.stop()
        try:
            code = job.wait()
        finally:
            s3.start()
    output = job.output()
    assert code == 1, job.failure()
    summary = [line for line in output.splitlines() if line.startswith("error (in a Spark task): ")]
    assert summary and "Could not connect to server" in summary[-1] and s3.bucket in summary[-1], job.failure()
    keys = s3_objects(s3, prefix)
    assert f"{prefix}/manifest.json" not in keys and f"{prefix}/{SUCCESS}" not in keys, keys


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_an_invalid_aws_max_attempts_is_refused_naming_the_variable(value, monkeypatch):
    from pipeline import storage

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", value)
    with pytest.raises(storage.StorageError, match=f"AWS_MAX_ATTEMPTS must be a positive integer, got '{value}'"):
        storage.resolve("s3://bucket/key")


# ---------------------------------------------------------------------------------------------- security


def _evil_shard(member: str) -> bytes:
    """A valid one-sample shard followed by one member named `member`."""
    good = io.BytesIO()
    write_shard(good, [(np.arange(8, dtype=np.uint16), {"ids": ["a"], "spans": [[0, 8]]})], 0, "uint16")
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(good.getvalue())) as src, tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as dst:
        for info in src:
            dst.addfile(info, src.extractfile(info))
        evil = tarfile.TarInfo(member)
        evil.size = 2
        dst.addfile(evil, io.BytesIO(b"{}"))
    return out.getvalue()


@pytest.mark.parametrize("member", ["/etc/cron.d/x.json", "../outside.json", "000000000000/../../x.json", "a\\..\\x.json"])
def test_trainer_refuses_a_shard_whose_member_name_escapes_even_when_its_sha256_matches(member, tmp_path):
    from trainer.data import ShardStore

    data = _evil_shard(member)
    url = "shards/train/shard-000000.tar"
    record = {"url": url, "samples": 1, "tokens": 8, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
              "documents": 1, "text_bytes": 8}
    manifest = build_manifest(tokenizer={"path": "tokenizer.json", "sha256": "0" * 64, "vocab_size": 512, "eos_id": 0},
                              dtype="uint16", sample_tokens=8, seed=0, splits={"train": [record]})
    (tmp_path / url).parent.mkdir(parents=True)
    (tmp_path / url).write_bytes(data)
    store = ShardStore(parse_manifest(manifest, str(tmp_path / "manifest.json")), "train")
    try:
        with pytest.raises(ShardError, match=f"{url}: unsafe member name"):
            store.stream(0)
    finally:
        store.close()


SOURCES = sorted(p for d in ("pipeline", "trainer", "jobs") for p in (REPO / d).rglob("*.py"))


def _calls(name: str):
    """(file, line, call) for every call of a dotted name such as `yaml.load` in the project's source."""
    module, attr = name.rsplit(".", 1)
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attr
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == module):
                yield path.relative_to(REPO), node.lineno, node


def test_sources_were_found():
    assert len(SOURCES) > 20 and any(p.name == "checkpoint.py" for p in SOURCES)


def test_no_source_builds_a_webdataset_pipe_url():
    users = [f"{p.relative_to(REPO)}:{i}" for p in SOURCES for i, line in enumerate(p.read_text().splitlines(), 1)
             if "pipe:" in line]
    assert not users, f"`pipe:` URLs run shell commands: {users}"


def test_yaml_is_only_ever_safe_loaded():
    unsafe = [f"{p}:{line}" for name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all")
              for p, line, _ in _calls(name)]
    assert not unsafe, unsafe
    assert list(_calls("yaml.safe_load")), "no yaml.safe_load found: the scan is looking in the wrong place"


def test_every_torch_load_passes_weights_only_true():
    loads = list(_calls("torch.load"))
    assert loads, "no torch.load found: the scan is looking in the wrong place"
    unsafe = [f"{p}:{line}" for p, line, call in loads
              if not any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                         for k in call.keywords)]
    assert not unsafe, f"torch.load without weights_only=True unpickles arbitrary objects: {unsafe}"


def test_no_numpy_load_allows_pickles():
    unsafe = [f"{p}:{line}" for p, line, call in _calls("np.load")
              if any(k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                     for k in call.keywords)]
    assert not unsafe, unsafe
