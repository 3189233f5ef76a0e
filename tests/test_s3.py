"""The whole pipeline and the trainer against a real S3 server (SeaweedFS on 127.0.0.1), and credential hygiene.

Input is a slice of the shared corpus uploaded to `s3://BUCKET/raw/`; `jobs/pipeline.py` runs through
spark-submit with only `s3://` URIs and the AWS_* variables, so every byte goes through pipeline.storage.
The checks read S3 with boto3, independently of the code under test.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import storage
from pipeline.tokenize.shards import iter_shard, shard_documents
from pipeline.tokenize.tokenizer import decode_documents, load_tokenizer
from s3server import S3Server, seaweedfs

pytestmark = [pytest.mark.slow, pytest.mark.corpus]

REPO = Path(__file__).resolve().parents[1]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
LINES = 400  # of raw/docs-00.jsonl.gz, split over two input files
MAX_LINE_BYTES = 100_000  # keeps the corpus's 2 MB `huge_document` lines out of a quick test
SETTINGS = ["tokenize.vocab_size=2048", "tokenize.shard_bytes=100000", "tokenize.sample_tokens=512",
            "tokenize.val_fraction=0.1"]
TIMEOUT = 300


def _env(server: S3Server, **credentials) -> dict[str, str]:
    """The test's environment without any AWS_* of the caller's, pointed at the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, **server.env(**credentials), "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable}


def spark_submit_pipeline(server: S3Server, cwd: Path, output: str, **credentials) -> subprocess.CompletedProcess:
    cmd = [str(SPARK_SUBMIT), "--master", "local[2]", "--conf", "spark.ui.enabled=false",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
           str(REPO / "jobs" / "pipeline.py"), "--input", f"s3://{server.bucket}/raw", "--output", output]
    for s in SETTINGS:
        cmd += ["--set", s]
    return subprocess.run(cmd, cwd=cwd, env=_env(server, **credentials), capture_output=True, text=True,
                          timeout=TIMEOUT)


def get(server: S3Server, key: str) -> bytes:
    return server.client().get_object(Bucket=server.bucket, Key=key)["Body"].read()


def objects(server: S3Server, prefix: str) -> dict[str, str]:
    """{key: etag} of every object under prefix."""
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def committed(server: S3Server, stage: str, subdir: str = "data") -> list[str]:
    listing = json.loads(get(server, f"run/{stage}/_SUCCESS"))["files"].get(subdir, [])
    return [f"run/{stage}/{p}" for p in listing]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="module")
def run(s3, shared_corpus, tmp_path_factory):
    """Upload the slice, run the pipeline from s3://BUCKET/raw to s3://BUCKET/run, then train from S3."""
    lines = gzip.decompress((shared_corpus / "raw" / "docs-00.jsonl.gz").read_bytes()).split(b"\n")[:LINES]
    lines = [line for line in lines if len(line) <= MAX_LINE_BYTES]
    half = len(lines) // 2
    client = s3.client()
    for name, part in (("a.jsonl.gz", lines[:half]), ("b.jsonl.gz", lines[half:])):
        client.put_object(Bucket=s3.bucket, Key=f"raw/{name}", Body=gzip.compress(b"\n".join(part) + b"\n"))

    work = tmp_path_factory.mktemp("s3run")
    job = spark_submit_pipeline(s3, work, f"s3://{s3.bucket}/run")
    assert job.returncode == 0, f"pipeline failed ({job.returncode}):\n{job.stdout[-3000:]}\n{job.stderr[-5000:]}"

    train_out = work / "train"
    trainer = subprocess.run(
        [sys.executable, str(REPO / "trainer" / "main.py"), "--data", f"s3://{s3.bucket}/run/tokenize/manifest.json",
         "--out", str(train_out), "--preset", "tiny", "--steps", "10"],
        cwd=work, env=_env(s3), capture_output=True, text=True, timeout=TIMEOUT)
    assert trainer.returncode == 0, f"trainer failed:\n{trainer.stdout[-3000:]}\n{trainer.stderr[-3000:]}"
    return {"input_lines": len(lines), "job": job, "trainer": trainer, "train_out": train_out}


def test_storage_reads_hadoops_s3a_name_as_the_same_object(s3, monkeypatch):
    """Dedupe's executors read back what Spark wrote under `dedupe.checkpoint_dir`, which is `s3a://` on a
    cluster with Hadoop's S3A connector."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    s3.client().put_object(Bucket=s3.bucket, Key="s3a-check/part=0/x.parquet", Body=b"same bytes")
    assert storage.list_files(f"s3a://{s3.bucket}/s3a-check") == [f"s3a://{s3.bucket}/s3a-check/part=0/x.parquet"]
    assert storage.read_bytes(f"s3a://{s3.bucket}/s3a-check/part=0/x.parquet") == b"same bytes"


def test_clean_keeps_every_record_of_objects_named_with_hash_and_question_mark(s3, tmp_path):
    """`#` and `?` are ordinary characters in an S3 key: the objects are listed, read and counted."""
    names = {"a#b.jsonl": 3, "c?d=e.jsonl": 2, "f%23g.jsonl": 1}
    for name, n in names.items():
        body = "".join(json.dumps({"id": f"{name}-{i}", "text": f"Document {i} of {name} speaks of rivers."}) + "\n"
                       for i in range(n))
        s3.client().put_object(Bucket=s3.bucket, Key=f"odd-names/raw/{name}", Body=body.encode())
    cmd = [str(SPARK_SUBMIT), "--master", "local[1]", "--conf", "spark.ui.enabled=false",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
           str(REPO / "jobs" / "clean.py"), "--input", f"s3://{s3.bucket}/odd-names/raw",
           "--output", f"s3://{s3.bucket}/odd-names/clean"]
    job = subprocess.run(cmd, cwd=tmp_path, env=_env(s3), capture_output=True, text=True, timeout=TIMEOUT)
    assert job.returncode == 0, f"clean failed ({job.returncode}):\n{job.stdout[-3000:]}\n{job.stderr[-5000:]}"
    stats = json.loads(get(s3, "odd-names/clean/stats.json"))
    assert stats["input"] == stats["kept"] == sum(names.values())


def test_every_stage_commits_to_s3_and_stats_reconcile(s3, run):
    keys = objects(s3, "run/")
    stats = {}
    for stage in ("clean", "filter", "dedupe", "tokenize"):
        assert f"run/{stage}/_SUCCESS" in keys
        assert not [k for k in keys if k.startswith(f"run/{stage}/_temporary/")], "temporary files left behind"
        stats[stage] = json.loads(get(s3, f"run/{stage}/stats.json"))
        s = stats[stage]
        assert s["input"] == s["kept"] + sum(s["dropped"].values()) + sum(s["rejected"].values())
    assert stats["clean"]["input"] == run["input_lines"]
    assert stats["dedupe"]["kept"] == stats["tokenize"]["input"] > 50
    assert "run/pipeline.json" in keys


def test_every_shard_fetched_from_s3_matches_the_manifest(s3, run):
    manifest = json.loads(get(s3, "run/tokenize/manifest.json"))
    tokenizer = get(s3, f"run/tokenize/{manifest['tokenizer']['path']}")
    assert hashlib.sha256(tokenizer).hexdigest() == manifest["tokenizer"]["sha256"]
    listed = set()
    for split in manifest["splits"].values():
        assert split["shards"]
        for shard in split["shards"]:
            data = get(s3, f"run/tokenize/{shard['url']}")
            samples = list(iter_shard(data, shard["url"]))
            assert hashlib.sha256(data).hexdigest() == shard["sha256"], shard["url"]
            assert len(data) == shard["bytes"]
            assert len(samples) == shard["samples"]
            assert sum(len(tokens) for _, tokens, _ in samples) == shard["tokens"]
            assert len({i for _, _, meta in samples for i in meta["ids"]}) == shard["documents"]
            listed.add(f"run/tokenize/{shard['url']}")
    in_bucket = {k for k in objects(s3, "run/tokenize/shards/") if k.endswith(".tar")}
    assert in_bucket == listed
    assert len(manifest["splits"]["train"]["shards"]) >= 2


def test_shards_decode_to_exactly_the_filter_stages_kept_documents(s3, run):
    manifest = json.loads(get(s3, "run/tokenize/manifest.json"))
    tok = load_tokenizer(get(s3, f"run/tokenize/{manifest['tokenizer']['path']}").decode())
    docs = {}
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            docs.update(shard_documents(iter_shard(get(s3, f"run/tokenize/{shard['url']}"), shard["url"])))

    kept = {}
    for key in committed(s3, "filter"):
        for row in pq.read_table(io.BytesIO(get(s3, key)), columns=["id", "text"]).to_pylist():
            kept[row["id"]] = row["text"]
    assert kept and set(docs) == set(kept)
    decoded = decode_documents(tok, docs)
    mismatched = [i for i in sorted(kept) if decoded[i] != kept[i]]
    assert not mismatched, f"{len(mismatched)} documents do not round-trip, e.g. {mismatched[:3]}"


def test_trainer_trains_from_an_s3_manifest_and_writes_metrics(run):
    rows = [json.loads(line) for line in (run["train_out"] / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "train_loss" in r]
    assert [r["step"] for r in train] == list(range(1, 11))
    assert all(math.isfinite(r["train_loss"]) for r in train)
    evals = [r for r in rows if "val_loss" in r]
    assert evals and math.isfinite(evals[-1]["val_loss"]) and evals[-1]["val_bpb"] > 0


def test_credentials_appear_in_no_output_file_and_no_log(s3, run):
    secrets = {"access key": s3.key.encode(), "secret key": s3.secret.encode()}
    leaks = []
    written = objects(s3, "run/")
    assert {"run/pipeline.json", "run/tokenize/manifest.json", "run/filter/stats.json"} <= set(written)
    assert any(k.endswith(".parquet") for k in written)
    for key in written:  # whole objects: Parquet footers (schema metadata) are stored uncompressed
        data = get(s3, key)
        leaks += [f"{what} in s3://{s3.bucket}/{key}" for what, value in secrets.items() if value in data]
    for path in run["train_out"].rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaks += [f"{what} in {path}" for what, value in secrets.items() if value in data]
    for name in ("job", "trainer"):
        proc = run[name]
        for stream in ("stdout", "stderr"):
            text = getattr(proc, stream).encode()
            leaks += [f"{what} in {name} {stream}" for what, value in secrets.items() if value in text]
    assert not leaks, leaks


def test_wrong_credentials_fail_naming_the_bucket_and_change_nothing(s3, run, tmp_path):
    before = objects(s3, "")
    wrong_secret = "wrong-" + s3.secret[::-1]
    job = spark_submit_pipeline(s3, tmp_path, f"s3://{s3.bucket}/run", secret=wrong_secret)
    output = job.stdout + job.stderr
    assert job.returncode != 0
    assert re.search(r"access[ _]denied", output, re.IGNORECASE), output[-3000:]
    assert s3.bucket in output, output[-3000:]
    assert s3.secret not in output and wrong_secret not in output
    assert objects(s3, "") == before, "a run with wrong credentials changed the bucket"
