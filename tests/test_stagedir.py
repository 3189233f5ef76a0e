"""The stage directory and its commit protocol (pipeline/stagedir.py), on plain files and without Spark."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipeline import stagedir, storage
from pipeline.stagedir import SUCCESS, TEMPORARY, StageError, WriteResult
from synthetic import REPO


def _attempt_file(stage, attempt: str, rel: str, data: bytes = b"x") -> str:
    path = storage.join(str(stage), TEMPORARY, attempt, rel)
    storage.write_bytes(path, data)
    return path


def _result(kept: int, dropped: dict[str, int] | None = None, rejected: dict[str, int] | None = None) -> WriteResult:
    result = WriteResult()
    result.counts[("kept", None)] = kept
    for status, reasons in (("dropped", dropped or {}), ("rejected", rejected or {})):
        for reason, n in reasons.items():
            result.counts[(status, reason)] = n
    return result


def test_a_commit_moves_the_attempts_parts_into_place_and_lists_them_in_success(tmp_path):
    stage = tmp_path / "stage"
    attempt = stagedir.begin(str(stage))
    assert not stagedir.is_committed(str(stage))
    parts = [_attempt_file(stage, attempt, f"data/part-0000{i}-a0.parquet", bytes([i])) for i in (1, 0)]
    stats = stagedir.stage_stats("demo", 3, _result(2, {"too_short": 1}), 0.5)
    stagedir.commit(str(stage), attempt, {"kept": parts}, stats, extra_files={"manifest.json": b"{}"})
    assert stagedir.committed_files(str(stage)) == [str(stage / "data/part-00000.parquet"),
                                                    str(stage / "data/part-00001.parquet")]
    assert (stage / "data/part-00001.parquet").read_bytes() == bytes([1])
    assert json.loads((stage / SUCCESS).read_text()) == {
        "stage": "demo", "files": {"data": ["data/part-00000.parquet", "data/part-00001.parquet"]}}
    assert stagedir.read_stats(str(stage))["dropped"] == {"too_short": 1}
    assert (stage / "manifest.json").exists() and not (stage / TEMPORARY).exists()


def test_a_rerun_replaces_every_file_of_the_run_before(tmp_path):
    stage = tmp_path / "stage"
    first = stagedir.begin(str(stage))
    stagedir.commit(str(stage), first, {"kept": [_attempt_file(stage, first, "data/part-00000-a0.parquet"),
                                                 _attempt_file(stage, first, "data/part-00001-a0.parquet")],
                                        "dropped": [_attempt_file(stage, first, "dropped/part-00000-a0.parquet")]},
                    stagedir.stage_stats("demo", 1, _result(1), 0))
    second = stagedir.begin(str(stage))
    assert not (stage / SUCCESS).exists()  # between begin and commit the stage is not readable
    with pytest.raises(StageError, match=SUCCESS):
        stagedir.read_stats(str(stage))
    stagedir.commit(str(stage), second, {"kept": [_attempt_file(stage, second, "data/part-00000-a1.parquet")]},
                    stagedir.stage_stats("demo", 1, _result(1), 0))
    assert sorted(p.name for p in (stage / "data").iterdir()) == ["part-00000.parquet"]
    assert not (stage / "dropped").exists()


def test_counts_that_do_not_reconcile_fail_the_stage_naming_each_term():
    with pytest.raises(StageError, match=r"input 10 != kept 6 \+ dropped 2 \+ rejected 1 = 9"):
        stagedir.stage_stats("demo", 10, _result(6, {"a": 2}, {"b": 1}), 0)


@pytest.mark.parametrize("output", ["in", "in/out"])
def test_an_output_that_is_or_lies_inside_its_input_is_refused(tmp_path, output):
    (tmp_path / "in").mkdir()
    with pytest.raises(StageError, match="overlaps input"):
        stagedir.begin(str(tmp_path / output), str(tmp_path / "in"))


def test_a_directory_no_stage_wrote_is_refused_untouched(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(StageError, match="no stage wrote"):
        stagedir.begin(str(tmp_path / "mine"))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_reading_the_stage_directory_and_any_config_imports_no_spark():
    code = ("import sys, pipeline.stagedir, pipeline.stages, pipeline.stages.config, pipeline.evaluate, "
            "trainer.config, trainer.train; sys.exit('pyspark' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
