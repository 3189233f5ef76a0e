"""Fault tolerance and multi-node runs under real torchrun (gloo on CPU), and the FLOPs count behind MFU.

torchrun's `--max-restarts` restarts the whole worker group when one worker dies; the trainer must then resume
from its latest checkpoint and reproduce the uninterrupted run exactly. Two torchrun agents on 127.0.0.1 stand
in for two nodes meeting through a c10d rendezvous.
"""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from pipeline.tokenize.shards import ShardError, read_manifest
from synthetic import (REPO, STEPS, TORCHRUN, UNSHARE, WRAPPER, free_port, in_namespace, make_dataset,
                       run_killing_a_worker)
from trainer import flops
from trainer.config import ModelConfig, load
from trainer.data import ShardStore
from trainer.model import GPT

ARGS = ["--preset", "tiny", "--steps", str(STEPS)]


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _params(out: Path, rank: int) -> dict[str, torch.Tensor]:
    return torch.load(out / f"params-rank{rank}.pt", weights_only=True)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A dataset and an uninterrupted two-process run to compare against."""
    root = tmp_path_factory.mktemp("faults")
    manifest = make_dataset(root / "data")
    script = root / "run_trainer.py"
    script.write_text(WRAPPER)
    reference = root / "reference"
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", str(script), "--data", str(manifest),
           "--out", str(reference), *ARGS]
    proc = subprocess.run(in_namespace(cmd), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return script, manifest, reference


@pytest.mark.slow
def test_torchrun_restarts_the_group_after_a_worker_is_killed_and_the_run_matches_an_uninterrupted_one(
        setup, tmp_path):
    script, manifest, reference = setup
    out = tmp_path / "restarted"
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "--max-restarts=1", str(script),
           "--data", str(manifest), "--out", str(out), *ARGS]
    text = run_killing_a_worker(cmd, out, tmp_path / "torchrun.log")
    assert "from scratch" in text and "resumed from step-000000" in text, text[-4000:]
    got, want = _metrics(out), _metrics(reference)
    assert [r["step"] for r in got] == list(range(1, STEPS + 1))
    assert [r["train_loss"] for r in got] == [r["train_loss"] for r in want]
    assert [r.get("val_loss") for r in got] == [r.get("val_loss") for r in want]
    assert all(torch.equal(_params(out, 0)[k], _params(reference, 0)[k]) for k in _params(reference, 0))


@pytest.mark.slow
def test_two_nodes_on_loopback_meet_by_c10d_rendezvous_and_keep_replicas_equal(setup, tmp_path):
    script, manifest, reference = setup
    out = tmp_path / "two_nodes"
    port = free_port()

    def agent(node_rank: int) -> str:
        return shlex.join([
            str(TORCHRUN), "--nnodes=2", f"--node_rank={node_rank}", "--nproc_per_node=1",
            "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=two-nodes",
            "--local-addr=127.0.0.1", str(script), "--data", str(manifest), "--out", str(out), *ARGS])

    script_sh = f"""{'ip link set lo up' if UNSHARE else 'true'}
{agent(0)} & first=$!
{agent(1)}; second=$?
wait $first; first=$?
exit $((first | second))
"""
    cmd = ["unshare", "-n", "sh", "-c", script_sh] if UNSHARE else ["sh", "-c", script_sh]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    assert "world 2" in proc.stdout
    rank0, rank1 = _params(out, 0), _params(out, 1)
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    # Same world size, same global batches: the same run as two processes on one node.
    got, want = _metrics(out), _metrics(reference)
    assert [r["step"] for r in got] == list(range(1, STEPS + 1))
    assert [r["train_loss"] for r in got] == pytest.approx([r["train_loss"] for r in want], rel=1e-6)


def test_flops_per_token_of_the_tiny_preset_matches_a_hand_count():
    cfg = load("tiny").model
    cfg = ModelConfig(**{**cfg.__dict__, "vocab_size": 1000})  # padded to 1024 by the model
    # Per block, no biases: LayerNorm weights 2*64, qkv 64*192, attention proj 64*64, MLP 64*256 + 256*64.
    block = 2 * 64 + 64 * 192 + 64 * 64 + 64 * 256 + 256 * 64
    n = 2 * block + 64 + 1024 * 64  # two blocks, final LayerNorm, tied output projection
    assert n == 164_160
    assert flops.matmul_params(cfg) == n
    assert flops.flops_per_token(cfg) == 6 * 164_160 + 12 * 2 * 2 * 32 * 64 == 1_083_264


def test_matmul_params_are_the_model_parameters_without_the_position_embedding():
    for bias in (False, True):
        cfg = ModelConfig(block_size=32, n_layer=3, n_head=4, n_embd=48, bias=bias, vocab_size=500)
        model = GPT(cfg)
        assert flops.matmul_params(cfg) == model.num_params() - model.wpe.weight.numel()


def test_peak_flops_known_devices_by_name_and_none_for_unknown_ones():
    assert flops.peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert flops.peak_flops("NVIDIA H100 PCIe") == 756e12
    assert flops.peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert flops.peak_flops("NVIDIA L4") == 121e12
    assert flops.peak_flops("NVIDIA L40S") == 362e12
    assert flops.peak_flops("NVIDIA L40") is None
    assert flops.peak_flops("Tesla T4") is None
    assert flops.mfu(1_000_000, 2.0e6, 4e12) == pytest.approx(0.5)


@pytest.mark.slow
def test_cpu_runs_log_no_mfu(setup):
    _, _, reference = setup
    rows = _metrics(reference)
    assert rows and all("tokens_per_s" in r and "mfu" not in r for r in rows)


# ------------------------------------------------------------------ mistakes and unusable data, one line each

@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("mistakes") / "data").parent


def _copy(dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the dataset to damage; returns its manifest."""
    return Path(shutil.copytree(dataset, tmp_path / "data")) / "manifest.json"


def _last_token_out_of_vocabulary(shard: Path) -> None:
    """Overwrite the last token of the shard's first sample with 65535 (uint16), far past a 1024-token vocabulary."""
    with tarfile.open(shard) as tar:
        npy = next(m for m in tar if m.name.endswith(".npy"))
    with open(shard, "r+b") as f:
        f.seek(npy.offset_data + npy.size - 2)
        f.write(b"\xff\xff")


def _trainer(manifest: Path | str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """trainer/main.py as one plain process, the way a user starts a quick run."""
    cmd = [sys.executable, "trainer/main.py", "--data", str(manifest), "--out", str(out), "--preset", "tiny",
           "--steps", "2", "--set", "eval.generate_tokens=0", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("trainer: error:")]
    return line


def test_a_token_id_outside_the_vocabulary_stops_the_loader_naming_the_shard(dataset, tmp_path):
    manifest = _copy(dataset, tmp_path)
    _last_token_out_of_vocabulary(manifest.parent / "shards" / "train" / "shard-000001.tar")
    store = ShardStore(read_manifest(str(manifest)), "train", verify=False)
    with pytest.raises(ShardError, match=r"shard shards/train/shard-000001\.tar: token id 65535 is outside the "
                                         r"vocabulary of 1024"):
        store.stream(1)
    skipping = ShardStore(read_manifest(str(manifest)), "train", verify=False, on_bad_shard="skip")
    assert skipping.stream(1) is None and skipping.skipped == {1}


def test_a_run_on_data_with_an_out_of_vocabulary_token_fails_naming_the_shard(dataset, tmp_path):
    manifest = _copy(dataset, tmp_path)
    for shard in (manifest.parent / "shards" / "train").iterdir():
        _last_token_out_of_vocabulary(shard)
    line = _one_error_line(_trainer(manifest, tmp_path / "run", "--set", "data.verify_sha256=false"))
    assert "token id 65535 is outside the vocabulary of 1024" in line and "shards/train/shard-" in line


def test_a_run_whose_every_training_shard_is_bad_fails_saying_none_was_usable(tmp_path):
    """Two shards, so the run must read past the first bad one before it knows that none is usable."""
    manifest = make_dataset(tmp_path / "data", train_shards=2, val_shards=1)
    for shard in (tmp_path / "data" / "shards" / "train").iterdir():
        data = bytearray(shard.read_bytes())
        data[2000] ^= 0x01
        shard.write_bytes(bytes(data))
    out = tmp_path / "run"
    line = _one_error_line(_trainer(manifest, out, "--steps", "1000", "--set", "data.on_bad_shard=skip"))
    assert line.startswith("trainer: error: no training shard was usable: all 2 were skipped "
                           "(data.on_bad_shard=skip); shard shards/train/shard-000000.tar: sha256 mismatch"), line
    assert not (out / "checkpoints" / "step-00001000.pt").exists()


def test_a_model_vocabulary_smaller_than_the_tokenizers_is_refused_before_training(dataset, tmp_path):
    out = tmp_path / "run"
    line = _one_error_line(_trainer(dataset / "manifest.json", out, "--set", "model.vocab_size=100"))
    assert line == ("trainer: error: model.vocab_size 100 is smaller than the tokenizer's 1024 ids; "
                    "set 0 to take the manifest's")
    assert not out.exists()


def test_a_tokenizer_path_outside_the_run_is_refused_before_training(dataset, tmp_path):
    manifest = _copy(dataset, tmp_path)
    data = json.loads(manifest.read_text())
    data["tokenizer"]["path"] = "../tokenizer.json"
    manifest.write_text(json.dumps(data))
    out = tmp_path / "run"
    line = _one_error_line(_trainer(manifest, out))
    assert "'../tokenizer.json' must be relative to the manifest and stay below it (tokenizer.path)" in line
    assert not out.exists()


def test_data_that_does_not_exist_is_one_line_naming_it_and_what_to_pass(tmp_path):
    line = _one_error_line(_trainer(tmp_path / "nosuch.json", tmp_path / "run"))
    assert line == (f"trainer: error: --data {tmp_path / 'nosuch.json'}: not found; pass the manifest.json the "
                    "tokenize stage wrote (OUTPUT/tokenize/manifest.json)")


def test_data_given_the_dataset_directory_is_one_line_naming_its_manifest(dataset, tmp_path):
    line = _one_error_line(_trainer(dataset, tmp_path / "run"))
    assert line == f"trainer: error: --data {dataset} is a directory; pass {dataset / 'manifest.json'}"


def test_an_unknown_trainer_key_is_one_line_naming_it_and_the_valid_keys(dataset, tmp_path):
    line = _one_error_line(_trainer(dataset / "manifest.json", tmp_path / "run", "--set", "optim.lrr=1"))
    assert line.startswith("trainer: error: unknown config key optim.lrr; valid keys: optim.lr, ")


def test_an_out_of_range_trainer_setting_is_one_line_naming_the_key(dataset, tmp_path):
    line = _one_error_line(_trainer(dataset / "manifest.json", tmp_path / "run", "--steps", "-1"))
    assert line == "trainer: error: steps must be at least 1, not -1"


@pytest.mark.slow
def test_under_torchrun_a_wrong_data_path_is_reported_once_by_rank_0(tmp_path):
    """torchrun itself still ends with its ChildFailedError summary: that traceback is the only one."""
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "trainer/main.py", "--data",
           str(tmp_path / "nosuch.json"), "--out", str(tmp_path / "run"), *ARGS]
    proc = subprocess.run(in_namespace(cmd), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("trainer: error:")]
    assert errors == [f"trainer: error: --data {tmp_path / 'nosuch.json'}: not found; pass the manifest.json the "
                      "tokenize stage wrote (OUTPUT/tokenize/manifest.json)"], proc.stderr[-3000:]
    assert proc.stderr.count("Traceback") == 1 and "ChildFailedError" in proc.stderr, proc.stderr[-3000:]
    assert "trainer/train.py" not in proc.stderr and "StorageError" not in proc.stderr
