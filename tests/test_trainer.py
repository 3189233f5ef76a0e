"""The trainer end to end under real torchrun (gloo on CPU): it learns, replicas agree, and resuming after a
kill or with another world size reproduces the uninterrupted run."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pipeline.tokenize.shards import read_manifest
from synthetic import REPO, STEPS, TORCHRUN, UNSHARE, WRAPPER, make_dataset
from trainer.data import ShardStore, TrainWindows

pytestmark = pytest.mark.slow


def _command(script: Path, nproc: int, manifest: Path, out: Path, *extra: str) -> list[str]:
    """torchrun inside a private loopback-only network namespace when allowed (its store binds all interfaces)."""
    cmd = [str(TORCHRUN), "--standalone", f"--nproc_per_node={nproc}", str(script), "--data", str(manifest),
           "--out", str(out), "--preset", "tiny", "--steps", str(STEPS), *extra]
    if UNSHARE:
        cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up; exec "$@"', "sh", *cmd]
    return cmd


def _run(script: Path, nproc: int, manifest: Path, out: Path, *extra: str) -> str:
    proc = subprocess.run(_command(script, nproc, manifest, out, *extra), capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    manifest = make_dataset(root / "data")
    script = root / "run_trainer.py"
    script.write_text(WRAPPER)
    reference = root / "reference"
    _run(script, 2, manifest, reference)
    return script, manifest, reference


def test_two_process_run_lowers_validation_loss_and_keeps_replicas_equal(setup):
    _, manifest, out = setup
    rows = _metrics(out)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    evals = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in evals] == [10, 20, 30]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    data = json.loads(manifest.read_text())
    for r in evals:
        assert r["val_tokens"] == data["splits"]["val"]["tokens"]
        assert r["val_bpb"] == pytest.approx(r["val_loss"] * r["val_tokens"] / 0.6931471805599453
                                             / data["splits"]["val"]["text_bytes"])
    rank0 = torch.load(out / "params-rank0.pt", weights_only=True)
    rank1 = torch.load(out / "params-rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "step-00000010.pt", "step-00000020.pt", "step-00000030.pt"]
    assert (out / "config.yaml").exists() and (out / "sample.txt").read_text().strip()


def test_killed_and_resumed_run_matches_the_uninterrupted_one_at_every_step(setup, tmp_path):
    script, manifest, reference = setup
    out = tmp_path / "killed"
    proc = subprocess.Popen(_command(script, 2, manifest, out), cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "checkpoints" / "step-00000010.pt"
    try:
        while not first.exists() and proc.poll() is None:
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "checkpoints" / f"step-{STEPS:08d}.pt").exists(), "the run finished before it was killed"

    stdout = _run(script, 2, manifest, out)
    assert "resumed from step-000000" in stdout
    got, want = _metrics(out), _metrics(reference)
    assert [r["step"] for r in got] == list(range(1, STEPS + 1))
    assert [r["train_loss"] for r in got] == [r["train_loss"] for r in want]
    assert [r.get("val_loss") for r in got] == [r.get("val_loss") for r in want]


def test_resuming_on_two_processes_a_run_started_on_one_consumes_the_same_samples(setup, tmp_path):
    script, manifest, reference = setup
    out = tmp_path / "grow"
    _run(script, 1, manifest, out)
    for late in ("step-00000020.pt", "step-00000030.pt"):
        (out / "checkpoints" / late).unlink()
    stdout = _run(script, 2, manifest, out)
    assert "world 2" in stdout and "resumed from step-00000010.pt" in stdout
    got, want = _metrics(out), _metrics(reference)
    assert [r["step"] for r in got] == list(range(1, STEPS + 1))
    # Same global batches at every step, so the same losses up to float summation order.
    assert [r["train_loss"] for r in got] == pytest.approx([r["train_loss"] for r in want], rel=1e-5)
    final = torch.load(out / "checkpoints" / f"step-{STEPS:08d}.pt", weights_only=True)
    assert final["loader"] == torch.load(reference / "checkpoints" / f"step-{STEPS:08d}.pt",
                                         weights_only=True)["loader"]


def test_two_processes_skipping_a_truncated_shard_finish_in_step_and_count_it(setup, tmp_path):
    script, manifest, _ = setup
    data = tmp_path / "data"
    shutil.copytree(manifest.parent, data)
    # Truncate the shard of the last step's windows: the ranks meet it mid-run, each on its own windows.
    windows = TrainWindows(ShardStore(read_manifest(str(data / "manifest.json")), "train"), 64, 16, 1234)
    (bad, _), *_ = windows.locate((STEPS - 1) * 16, 1)
    shard = data / windows.store.shards[bad].url
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])

    out = tmp_path / "skip"
    stdout = _run(script, 2, data / "manifest.json", out, "--set", "data.on_bad_shard=skip")
    rows = _metrics(out)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert rows[0]["skipped_shards"] == 0 and rows[-1]["skipped_shards"] == 1 and "skipped shards 1" in stdout
    rank0 = torch.load(out / "params-rank0.pt", weights_only=True)
    rank1 = torch.load(out / "params-rank1.pt", weights_only=True)
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)


def test_help_explains_every_option():
    proc = subprocess.run([sys.executable, str(REPO / "trainer" / "main.py"), "--help"], capture_output=True,
                          text=True, check=True)
    for option in ("--data", "--out", "--config", "--set", "--preset", "--steps", "--ckpt-every", "--eval-every"):
        assert option in proc.stdout
    assert "tiny" in proc.stdout and "gpt2-124m" in proc.stdout
