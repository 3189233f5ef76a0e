"""A run's metrics, written by the master rank: OUT/metrics.jsonl and TensorBoard event files in OUT/tensorboard/.

Both get the same rows: every key of a row but `step` is a TensorBoard scalar of that name at that step
(a null value, such as the train_loss of a step whose windows were all skipped, is left out); a mapping
such as `tokens_by_source` or `val_bpb_by_lang` is one scalar per entry, `tokens_by_source/NAME`.
A run resumed from step s first forgets what a killed predecessor logged after s: metrics.jsonl is rewritten
up to s, and the new event file starts with `purge_step=s + 1`, which tells TensorBoard readers to drop the
older events from step s + 1 on (the old event files themselves are left alone).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def rewrite_metrics(path: Path, upto_step: int) -> None:
    """Drop rows past the checkpoint we resume from: a killed run may have logged steps it then lost."""
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= upto_step]
    path.write_text("".join(r + "\n" for r in rows))


def scalars(row: dict[str, Any]) -> list[tuple[str, float]]:
    """(TensorBoard tag, value) of every figure in a row: nulls left out, mappings one tag per entry."""
    out = []
    for key, value in row.items():
        if key == "step" or value is None:
            continue
        if isinstance(value, dict):
            out += [(f"{key}/{name}", v) for name, v in value.items() if v is not None]
        else:
            out.append((key, value))
    return out


class MetricsLog:
    def __init__(self, out: Path, resume_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.path = out / "metrics.jsonl"
        rewrite_metrics(self.path, resume_step)
        self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=resume_step + 1 if resume_step else None)

    def write(self, row: dict[str, Any]) -> None:
        """Append a row to both; flushed at once so a killed run's event files match its metrics.jsonl."""
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in scalars(row):
            self.tb.add_scalar(key, value, row["step"])
        self.tb.flush()

    def close(self) -> None:
        self.tb.close()
