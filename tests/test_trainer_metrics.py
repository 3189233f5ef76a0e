"""What a run reports, from a one-process run in this interpreter: metrics.jsonl rows with the data-wait fraction,
the console line with throughput and ETA, and TensorBoard event files holding the same scalars, also after a
resume that lost logged steps."""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.compat.proto.event_pb2 import SessionLog

from pipeline.tokenize.shards import read_manifest
from synthetic import make_dataset
from trainer.config import load
from trainer.data import ShardStore, TrainWindows
from trainer.train import train

STEPS = 20


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _tensorboard(out: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} as TensorBoard shows it (purged events removed)."""
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _expected(rows: list[dict]) -> dict[str, list[tuple[int, float]]]:
    want: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for key, value in row.items():
            entries = value.items() if isinstance(value, dict) else [("", value)]
            for name, v in entries:
                if key != "step" and v is not None:
                    want.setdefault(f"{key}/{name}" if name else key, []).append((row["step"], v))
    return want


def _assert_same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for tag, points in want.items():
        assert [s for s, _ in got[tag]] == [s for s, _ in points], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag  # stored as float32


def _train(manifest: str, out: Path, *overrides: str) -> str:
    """Run the tiny preset for STEPS steps in `out` (resuming when it holds a checkpoint); return its console output."""
    console = io.StringIO()
    with contextlib.redirect_stdout(console):
        train(load("tiny", overrides=[f"steps={STEPS}", "eval.generate_tokens=0", *overrides]), manifest, out)
    return console.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[str, Path, str]:
    """(manifest, run directory, console output) of one uninterrupted run."""
    root = tmp_path_factory.mktemp("metrics")
    manifest = str(make_dataset(root / "data"))
    return manifest, root / "run", _train(manifest, root / "run")


def test_log_rows_carry_the_data_wait_fraction_and_the_console_shows_throughput_and_eta(run):
    _, out, console = run
    rows = _metrics(out)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert all(0 < r["data_wait"] < 1 and r["tokens_per_s"] > 0 for r in rows)
    lines = [line for line in console.splitlines() if line.startswith("step ")]
    assert len(lines) == STEPS
    pattern = r"step (\d+)/20 \| loss [\d.]+ \| lr [\d.e+-]+ \| [\d.]+k tok/s \| eta \d+:\d\d:\d\d \| data wait [\d.]+%"
    assert all(re.match(pattern, line) for line in lines), lines[:2]
    assert lines[-1].startswith("step 20/20") and "eta 0:00:00" in lines[-1]


def test_tensorboard_holds_the_metrics_rows_and_a_resume_replaces_the_steps_it_lost(run, tmp_path):
    manifest, reference, _ = run
    _assert_same(_tensorboard(reference), _expected(_metrics(reference)))

    # As if the run had died after logging step 20 but before its last checkpoint: resume from step 10.
    out = tmp_path / "resumed"
    shutil.copytree(reference, out)
    (out / "checkpoints" / "step-00000020.pt").unlink()
    assert "resumed from step-00000010.pt" in _train(manifest, out)
    rows = _metrics(out)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert [r["train_loss"] for r in rows] == [r["train_loss"] for r in _metrics(reference)]
    _assert_same(_tensorboard(out), _expected(rows))
    # The old event file stays; the new one starts by telling readers to drop its events from step 11 on.
    _, new = sorted((out / "tensorboard").iterdir())
    starts = [e.step for e in EventFileLoader(str(new)).Load()
              if e.HasField("session_log") and e.session_log.status == SessionLog.START]
    assert starts == [11]


def test_a_run_told_to_skip_bad_shards_trains_past_a_corrupt_one_and_counts_it(tmp_path):
    manifest = make_dataset(tmp_path / "data", train_shards=8)  # ~9 steps per shard: a run crosses several
    cfg = load("tiny")
    batch = cfg.data.batch_size
    windows = TrainWindows(ShardStore(read_manifest(str(manifest)), "train"), cfg.model.block_size, batch,
                           cfg.data.seed)
    (bad, _), *_ = windows.locate(STEPS // 2 * batch, 1)
    touched = [any(s == bad for s, _ in windows.locate(step * batch, batch)) for step in range(STEPS)]
    only_bad = [all(s == bad for s, _ in windows.locate(step * batch, batch)) for step in range(STEPS)]
    first_touch = touched.index(True)
    assert 0 < first_touch and any(only_bad) and not all(only_bad[first_touch:])
    url = windows.store.shards[bad].url
    shard = tmp_path / "data" / url
    shard.write_bytes(shard.read_bytes()[:-20000])  # truncated

    out = tmp_path / "run"
    console = _train(str(manifest), out, "data.on_bad_shard=skip")
    rows = _metrics(out)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert [r["skipped_shards"] for r in rows] == [0] * first_touch + [1] * (STEPS - first_touch)
    # A step with real targets reports their mean loss; a step made only of the skipped shard has none.
    assert [r["train_loss"] is None for r in rows] == only_bad
    assert all(0 < r["train_loss"] < 10 for r in rows if r["train_loss"] is not None)
    assert "skipped shards 1" in console and "loss -" in console
    _assert_same(_tensorboard(out), _expected(rows))
    final = torch.load(out / "checkpoints" / f"step-{STEPS:08d}.pt", weights_only=True)
    assert final["skipped_shards"] == [url]
