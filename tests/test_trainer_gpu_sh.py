"""benchmarks/gpu.sh, the GPU readiness script: its dry run takes the whole path on the CPU (embedded corpus,
pipeline through spark-submit, an eager and a compiled trainer run, the table read back from metrics.jsonl),
so the script works before a GPU is rented to run it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from synthetic import REPO

SCRIPT = REPO / "benchmarks" / "gpu.sh"


def test_help_names_every_setting_and_an_unknown_flag_is_refused():
    proc = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=True)
    for setting in ("--python", "PYTHON", "--out", "OUT", "--steps", "STEPS", "--warmup", "WARMUP", "--docs",
                    "--micro-batch", "--batch", "--data", "--peak-flops", "PEAK_FLOPS", "--dry-run", "DRY_RUN=1"):
        assert setting in proc.stdout
    bad = subprocess.run(["bash", str(SCRIPT), "--stpes", "3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown argument --stpes" in bad.stderr


@pytest.mark.slow
def test_the_dry_run_prints_tokens_per_second_mfu_and_data_wait_of_an_eager_and_a_compiled_run(tmp_path):
    out = tmp_path / "gpu"
    # A nominal peak: the CPU has none in trainer/flops.py, and the MFU column is then computed by the script.
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "PEAK_FLOPS": "1e12"}
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = {}
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in ("eager", "compile"):
            table[cells[0]] = cells[1:]
    assert set(table) == {"eager", "compile"}, proc.stdout
    for tokens_per_s, mfu, data_wait in table.values():
        assert float(tokens_per_s.replace(",", "")) > 0
        assert float(mfu.removesuffix("%")) > 0
        assert 0 <= float(data_wait.removesuffix("%")) < 100
    assert "compile / eager: " in proc.stdout
    for mode, compiled in (("eager", False), ("compile", True)):
        cfg = yaml.safe_load((out / f"train-{mode}" / "config.yaml").read_text())
        assert cfg["compile"] is compiled and cfg["steps"] == 6
    assert (out / "pipeline" / "tokenize" / "manifest.json").exists()
