"""Shared fixtures: one local Spark session per test run (it costs ~7 s to start), the shared corpus, and
one default pipeline run over the fixed input of tests/data/stage-outputs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CORPUS = Path(os.environ.get("CORPUSFORGE_SHARED_CORPUS", REPO.parent / "shared" / "corpus"))
VENV_BIN = Path(sys.executable).parent

# Spark binds to the external interface unless told otherwise; executors must run this interpreter.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("corpusforge-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    """The labelled corpus in ../shared/corpus; tests that need it skip with a clear message when absent."""
    if not (SHARED_CORPUS / "raw").is_dir():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS} (set CORPUSFORGE_SHARED_CORPUS)")
    return SHARED_CORPUS


FIXED_INPUT = REPO / "tests" / "data" / "stage-outputs" / "input"


@pytest.fixture(scope="session")
def fixed_input_run(spark, tmp_path_factory) -> tuple[Path, list[dict]]:
    """(output directory, stage summaries) of `run_stages` with the default config over FIXED_INPUT, run once
    for the tests that read it (none may write into it)."""
    from pipeline import cli
    from pipeline.stages.config import PipelineConfig

    out = tmp_path_factory.mktemp("fixed-input-run")
    return out, cli.run_stages(spark, str(FIXED_INPUT), str(out), PipelineConfig())
