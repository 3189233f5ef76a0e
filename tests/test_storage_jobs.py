"""Jobs run as a user runs them (`python jobs/clean.py ...` in a subprocess): storage mistakes end in one
readable line, credentials given in a URI or the environment appear in no output and no file, and the
Spark workers' Python is the job's own unless PYSPARK_PYTHON says otherwise."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic import HIDDEN, KEY, SECRET, TOKEN, write_docs

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 300


def run_job(tmp_path: Path, *args: str, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()):
    """jobs/clean.py with `args`, in a clean AWS_* environment; Spark's scratch files stay under tmp_path."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in drop}
    base.update(SPARK_LOCAL_IP="127.0.0.1", SPARK_LOCAL_DIRS=str(tmp_path / "spark-local"), **(env or {}))
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, str(REPO / "jobs" / "clean.py"), *args], cwd=cwd, env=base,
                          capture_output=True, text=True, timeout=TIMEOUT)


def leaks(proc, tmp_path: Path) -> list[str]:
    found = [f"{h!r} in {stream}" for stream in ("stdout", "stderr") for h in HIDDEN if h in getattr(proc, stream)]
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{h!r} in {path}" for h in HIDDEN if h.encode() in data]
    return found


@pytest.mark.parametrize("args, env", [
    (["--input", f"s3://{KEY}:{SECRET}@bucket/raw", "--output", "out"], {}),
    (["--input", f"s3://{KEY}:{SECRET}@bucket/raw?endpoint_override=127.0.0.1:9&scheme=http", "--output", "out"], {}),
    (["--input", "in", "--output", f"s3a://{TOKEN}@bucket/clean"], {}),
    (["--input", "s3://bucket/raw", "--output", "out"], {"AWS_ENDPOINT_URL": f"http://{KEY}:{SECRET}@127.0.0.1:9"}),
], ids=["input", "input-with-endpoint-query", "output-token", "endpoint-variable"])
def test_a_job_given_credentials_in_a_uri_fails_in_one_line_and_writes_them_nowhere(tmp_path, args, env):
    write_docs(tmp_path / "cwd" / "in", "a.jsonl", 2)
    proc = run_job(tmp_path, *args, env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: "), proc.stderr[-3000:]
    assert "AWS_" in proc.stderr
    assert not leaks(proc, tmp_path)


def test_a_mistyped_option_next_to_a_uri_with_credentials_is_named_without_them(tmp_path):
    proc = run_job(tmp_path, "--input", "in", "--output", "out", "--inptu", f"s3://{KEY}:{SECRET}@bucket/raw")
    assert proc.returncode == 2 and "--inptu" in proc.stderr and "s3://***@bucket/raw" in proc.stderr
    assert not leaks(proc, tmp_path)


def test_an_unexpected_error_still_shows_its_traceback_without_credentials(tmp_path):
    script = ("from pipeline import cli\n"
              f"def main():\n    raise ValueError('cannot use s3://{KEY}:{SECRET}@bucket/raw')\n"
              "cli._fail_cleanly(main)()\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert proc.stderr.strip().endswith("ValueError: cannot use s3://***@bucket/raw"), proc.stderr[-3000:]
    assert not leaks(proc, tmp_path)


@pytest.mark.slow
def test_a_stage_failing_against_s3_writes_no_secret_from_the_environment(tmp_path):
    """An endpoint that refuses connections fails the stage after Spark started: the error line, Spark's
    own output and every file written still carry no credential."""
    proc = run_job(tmp_path, "--input", "s3://bucket/raw", "--output", str(tmp_path / "out"),
                   env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": KEY,
                        "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN, "AWS_MAX_ATTEMPTS": "1"})
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in proc.stderr
    assert "bucket" in proc.stderr.strip().splitlines()[-1]
    assert not leaks(proc, tmp_path)


@pytest.mark.slow
def test_a_job_run_without_pyspark_python_runs_its_workers_on_its_own_interpreter(tmp_path):
    """`python3` on PATH (what Spark runs by default) is not this environment's interpreter here."""
    texts = write_docs(tmp_path / "in", "a.jsonl", 3)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != Path(sys.executable).parent)
    proc = run_job(tmp_path, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                   env={"PATH": path}, drop=("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["kept"] == len(texts)


def test_a_pyspark_python_that_cannot_import_pyarrow_fails_in_one_line_before_spark_starts(tmp_path):
    bare = tmp_path / "bare-python"
    bare.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")  # no site-packages: no pyarrow
    bare.chmod(0o755)
    write_docs(tmp_path / "in", "a.jsonl", 1)
    proc = run_job(tmp_path, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                   env={"PYSPARK_PYTHON": str(bare)})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr[-3000:]
    assert str(bare) in proc.stderr and "pyarrow" in proc.stderr and "PYSPARK_PYTHON" in proc.stderr
    assert not (tmp_path / "out").exists()
