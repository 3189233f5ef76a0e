"""What a stage does with input a careless or hostile user gives it: ids reused across files, outputs that
overlap the input or a directory the stage did not write, two runs into one output."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import config as config_lib
from pipeline import stagedir
from pipeline import stages
from pipeline.stages.config import PipelineConfig
from pipeline.stagedir import SUCCESS, StageError

ROOT = Path(__file__).resolve().parents[1]
PROSE = ("The harbor lights came on one by one as the fishing boats returned before the storm. "
         "Families waited on the stone pier with lanterns and warm bread for the crews.")
OTHER = ("A quiet library stood at the end of the valley road, its windows full of morning light. "
         "Students walked there every day to read old letters and maps of the region.")
THIRD = ("Winter arrived early that year, and the orchard trees stood bare against a grey sky. "
         "Farmers gathered the last apples into baskets and stored them in cool cellars.")
FOURTH = ("The market square filled with music on Saturday evenings when the bakers sold cakes. "
          "Children chased pigeons around the fountain while their parents talked about the harvest.")


def write_jsonl(path: Path, docs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")


def committed_rows(stage_dir: Path, subdir: str = "data") -> list[dict]:
    listing = json.loads((stage_dir / SUCCESS).read_text())["files"].get(subdir, [])
    return [row for p in listing for row in pq.read_table(stage_dir / p).to_pylist()]


def test_different_documents_sharing_an_id_across_files_all_survive_dedupe(spark, tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "same", "text": PROSE}, {"id": "a2", "text": THIRD}])
    write_jsonl(tmp_path / "in" / "b.jsonl", [{"id": "b1", "text": FOURTH}, {"id": "same", "text": OTHER}])
    cfg = PipelineConfig()
    stats = stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), cfg)
    assert stats["duplicate_ids"] == {"ids": 1, "documents": 2, "examples": ["same"], "policy": "derive"}
    ids = [r["id"] for r in committed_rows(tmp_path / "clean")]
    assert ids == ["same@a.jsonl#1", "a2", "b1", "same@b.jsonl#2"]
    deduped = stages.run("dedupe", spark, str(tmp_path / "clean"), str(tmp_path / "dedupe"), cfg)
    assert deduped["kept"] == 4 and deduped["dropped"] == {}
    assert sorted(r["text"] for r in committed_rows(tmp_path / "dedupe")) == sorted([PROSE, THIRD, FOURTH, OTHER])


def test_an_exact_copy_under_a_reused_id_is_still_dropped_once(spark, tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "x", "text": PROSE}])
    write_jsonl(tmp_path / "in" / "b.jsonl", [{"id": "x", "text": PROSE}, {"id": "y", "text": OTHER}])
    cfg = PipelineConfig()
    stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), cfg)
    stats = stages.run("dedupe", spark, str(tmp_path / "clean"), str(tmp_path / "dedupe"), cfg)
    assert stats["kept"] == 2 and stats["dropped"] == {"exact_duplicate": 1}
    assert sorted(r["text"] for r in committed_rows(tmp_path / "dedupe")) == sorted([PROSE, OTHER])


def test_duplicate_ids_fail_the_clean_stage_when_the_policy_says_so(spark, tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "same", "text": PROSE}])
    write_jsonl(tmp_path / "in" / "b.jsonl", [{"id": "same", "text": OTHER}])
    cfg = config_lib.load(PipelineConfig, overrides=["clean.duplicate_ids=fail"])
    with pytest.raises(StageError, match="1 ids are carried by more than one document.*'same'"):
        stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), cfg)
    assert not (tmp_path / "clean" / SUCCESS).exists()


def test_an_unknown_duplicate_id_policy_is_named():
    with pytest.raises(config_lib.ConfigError, match="clean.duplicate_ids"):
        config_lib.load(PipelineConfig, overrides=["clean.duplicate_ids=keep"])


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("output", [".", "nested/clean"], ids=["output_is_input", "output_inside_input"])
def test_an_output_overlapping_the_input_is_refused_and_the_input_untouched(spark, tmp_path, output):
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "a", "text": PROSE}])
    before = tree(tmp_path / "in")
    with pytest.raises(StageError, match="overlaps input"):
        stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "in" / output), PipelineConfig())
    assert tree(tmp_path / "in") == before


def test_an_input_inside_the_output_is_refused(spark, tmp_path):
    write_jsonl(tmp_path / "out" / "raw" / "a.jsonl", [{"id": "a", "text": PROSE}])
    with pytest.raises(StageError, match="overlaps input"):
        stages.run("clean", spark, str(tmp_path / "out" / "raw"), str(tmp_path / "out"), PipelineConfig())
    assert (tmp_path / "out" / "raw" / "a.jsonl").exists()


def test_a_directory_no_stage_wrote_is_refused_as_output_and_kept(spark, tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "a", "text": PROSE}])
    (tmp_path / "mine" / "data").mkdir(parents=True)
    (tmp_path / "mine" / "data" / "thesis.parquet").write_bytes(b"precious")
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    before = tree(tmp_path / "mine")
    with pytest.raises(StageError, match="already holds files no stage wrote"):
        stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "mine"), PipelineConfig())
    assert tree(tmp_path / "mine") == before


def test_a_stage_directory_left_by_a_crash_before_any_part_can_be_rerun(spark, tmp_path):
    from pipeline import stagedir

    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "a", "text": PROSE}])
    out = tmp_path / "clean"
    stages.run("clean", spark, str(tmp_path / "in"), str(out), PipelineConfig())
    stagedir.begin(str(out), str(tmp_path / "in"))  # a run that died right after starting
    assert not (out / SUCCESS).exists()
    assert stages.run("clean", spark, str(tmp_path / "in"), str(out), PipelineConfig())["kept"] == 1


def test_a_second_run_into_an_output_another_live_run_writes_is_refused(tmp_path):
    out = str(tmp_path / "out")
    stagedir.begin(out)
    other = subprocess.run(
        [sys.executable, "-c", f"from pipeline import stagedir; stagedir.begin({out!r})"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert other.returncode != 0 and "another run is writing this output" in other.stderr
    stagedir.release(out)
    assert not (tmp_path / "out" / stagedir.LOCK).exists()


def test_a_run_takes_over_the_lock_of_a_dead_run_and_removes_only_its_leftovers(tmp_path):
    out = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / "_temporary" / "dead-attempt").mkdir(parents=True)
    (out / "_temporary" / "dead-attempt" / "part-00000-a0.parquet").write_bytes(b"half")
    (out / stagedir.LOCK).write_text(json.dumps({"run_id": "gone", "host": socket.gethostname(),
                                                 "pid": int(dead.stdout), "heartbeat": time.time()}))
    attempt = stagedir.begin(str(out))
    assert os.listdir(out / "_temporary") == [attempt]
    stagedir.commit(str(out), attempt, {}, {"stage": "test"})
    assert sorted(os.listdir(out)) == ["_SUCCESS", "stats.json"]


def test_a_commit_leaves_another_attempts_temporary_files(tmp_path):
    out = str(tmp_path / "out")
    attempt = stagedir.begin(out)
    late = tmp_path / "out" / "_temporary" / "late-attempt" / "part-00000-a0.parquet"
    late.parent.mkdir(parents=True)
    late.write_bytes(b"another writer's")
    stagedir.commit(out, attempt, {}, {"stage": "test"})
    assert late.read_bytes() == b"another writer's"


def test_a_failed_run_in_this_process_does_not_lock_out_its_rerun(tmp_path):
    out = str(tmp_path / "out")
    stagedir.begin(out)  # fails before commit, leaving this process's lock
    attempt = stagedir.begin(out)
    stagedir.commit(out, attempt, {}, {"stage": "test"})
    assert not (tmp_path / "out" / stagedir.LOCK).exists()


def test_a_rerun_leaves_nothing_of_an_earlier_run_it_does_not_list(spark, tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "a", "text": PROSE}])
    (tmp_path / "in" / "a.jsonl").write_text((tmp_path / "in" / "a.jsonl").read_text() + "{not json\n")
    out = tmp_path / "clean"
    stages.run("clean", spark, str(tmp_path / "in"), str(out), PipelineConfig())
    assert (out / "rejected").is_dir()
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "a", "text": PROSE}])  # the bad line fixed
    stages.run("clean", spark, str(tmp_path / "in"), str(out), PipelineConfig())
    listed = json.loads((out / SUCCESS).read_text())["files"]
    assert sorted(os.listdir(out)) == sorted([*listed, "stats.json", SUCCESS])


def test_a_rerun_over_a_committed_stage_says_it_replaces_it(tmp_path, capsys):
    out = str(tmp_path / "out")
    stagedir.commit(out, stagedir.begin(out), {}, {"stage": "test"})
    assert "committed run" not in capsys.readouterr().out
    stagedir.commit(out, stagedir.begin(out), {}, {"stage": "test"})
    assert "holds a committed run, which this one replaces" in capsys.readouterr().out
