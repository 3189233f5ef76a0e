"""Checkpoints under OUT/checkpoints/: written atomically, the last k kept, the newest found on start.

A checkpoint holds only tensors and plain containers, so it loads with `torch.load(weights_only=True)`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

_NAME = re.compile(r"^step-(\d{8})\.pt$")


def path_for(directory: Path, step: int) -> Path:
    return directory / f"step-{step:08d}.pt"


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary files from an interrupted save are ignored)."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest(directory: Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None


def save(directory: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write to a temporary name, fsync, rename, fsync the directory; then drop all but the newest `keep`."""
    directory.mkdir(parents=True, exist_ok=True)
    final = path_for(directory, step)
    tmp = directory / f".{final.name}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if keep > 0:
        for old in list_checkpoints(directory)[:-keep]:
            old.unlink()
    return final


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)
