"""Scheduled batch runs (`jobs/pipeline.py --state URI`): only new input files are processed, each batch is
deduplicated against every earlier one, a new manifest version appears per batch while earlier versions
stay valid, a run without new input is a no-op, an interrupted batch resumes without redoing committed
stages, and a live lock keeps a second run out."""
from __future__ import annotations

import json
import random
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pipeline import cli, stages
from pipeline.dedup.index_spark import GENERATIONS
from pipeline.state import BATCHES, LOCK, PENDING
from pipeline.tokenize.shards import read_manifest, verify_shard
from pipeline.stages.config import PipelineConfig
from synthetic import document, near_copy

DEFAULT_STAGES = [entry.name for entry in stages.enabled(PipelineConfig())]

SETTINGS = ["tokenize.vocab_size=512", "tokenize.sample_tokens=256", "tokenize.shard_bytes=20000",
            "tokenize.val_fraction=0.1", "tokenize.min_frequency=1"]


def write_jsonl(path: Path, docs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))


def run(raw: Path, out: Path, state: Path) -> list[dict]:
    args = ["--input", str(raw), "--output", str(out), "--state", str(state)]
    return cli.pipeline_main(args + [a for s in SETTINGS for a in ("--set", s)])


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def batches(spark, tmp_path_factory):
    """Two date partitions processed by two scheduled runs, then a third run with nothing new."""
    tmp = tmp_path_factory.mktemp("scheduled")
    raw, out, state = tmp / "raw", tmp / "out", tmp / "state"
    rng = random.Random(11)
    day1 = [{"id": f"d1-{i:03d}", "text": document(rng)} for i in range(40)]
    write_jsonl(raw / "date=2026-11-01" / "docs.jsonl", day1)
    first = run(raw, out, state)
    after_first = snapshot(out)

    day2 = [{"id": f"d2-{i:03d}", "text": document(rng)} for i in range(30)]
    day2 += [{"id": "d2-near-of-d1-005", "text": near_copy(day1[5]["text"])},
             {"id": "d2-exact-of-d1-007", "text": day1[7]["text"]}]
    write_jsonl(raw / "date=2026-11-02" / "docs.jsonl", day2)
    second = run(raw, out, state)
    after_second = snapshot(out)
    third = run(raw, out, state)
    return {"raw": raw, "out": out, "state": state, "runs": [first, second, third],
            "after_first": after_first, "after_second": after_second}


def stats(out: Path, batch: str, stage: str) -> dict:
    return json.loads((out / BATCHES / batch / stage / "stats.json").read_text())


def test_each_run_processes_only_the_files_no_earlier_run_processed(batches):
    out = batches["out"]
    assert stats(out, "batch-000001", "clean")["input"] == 40
    assert stats(out, "batch-000002", "clean")["input"] == 32
    assert stats(out, "batch-000002", "clean")["input_files"] == 1
    records = [json.loads(p.read_text()) for p in sorted((batches["state"] / BATCHES).glob("*.json"))]
    assert [list(r["files"]) for r in records] == [
        [str(batches["raw"] / "date=2026-11-01" / "docs.jsonl")], [str(batches["raw"] / "date=2026-11-02" / "docs.jsonl")]]


def test_duplicates_of_an_earlier_batch_are_removed_from_the_later_one(batches):
    dedupe = stats(batches["out"], "batch-000002", "dedupe")
    assert dedupe["dropped"] == {"exact_duplicate_of_history": 1, "near_duplicate_of_history": 1}
    manifest = read_manifest(str(batches["out"] / "manifest.json"))
    assert manifest.splits["train"].documents + manifest.splits["val"].documents == 40 + 30


def test_each_batch_adds_a_manifest_version_and_earlier_versions_stay_valid(batches):
    out = batches["out"]
    assert (out / "manifest-000001.json").read_bytes() == batches["after_first"]["manifest-000001.json"]
    v1, v2 = read_manifest(str(out / "manifest-000001.json")), read_manifest(str(out / "manifest-000002.json"))
    assert (out / "manifest.json").read_bytes() == (out / "manifest-000002.json").read_bytes()
    urls_1 = {s.url for split in v1.splits.values() for s in split.shards}
    urls_2 = {s.url for split in v2.splits.values() for s in split.shards}
    assert urls_1 < urls_2 and all(u.startswith("batches/batch-000001/") for u in urls_1)
    assert any(u.startswith("batches/batch-000002/") for u in urls_2)
    for manifest in (v1, v2):
        for split in manifest.splits.values():
            for shard in split.shards:
                verify_shard(Path(manifest.resolve(shard.url)).read_bytes(), shard.sha256, shard.url)


def test_every_batch_encodes_with_the_first_batchs_tokenizer(batches):
    out = batches["out"]
    v2 = read_manifest(str(out / "manifest-000002.json"))
    assert v2.tokenizer["path"] == "batches/batch-000001/tokenize/tokenizer.json"
    first, second = (out / BATCHES / b / "tokenize" / "tokenizer.json" for b in ("batch-000001", "batch-000002"))
    assert first.read_bytes() == second.read_bytes()


def test_a_run_with_no_new_input_changes_nothing(batches):
    assert batches["runs"][2] == []
    assert snapshot(batches["out"]) == batches["after_second"]
    assert not (batches["state"] / PENDING).exists() and not (batches["state"] / LOCK).exists()


def test_an_interrupted_batch_resumes_without_rerunning_committed_stages(batches, capsys):
    """As if the run died after its stages committed but before the batch did: the next run resumes it,
    skips every stage, adds nothing to the dedup index and rewrites the same manifest version."""
    state, out = batches["state"], batches["out"]
    record = json.loads((state / BATCHES / "batch-000002.json").read_text())
    generations = (state / "index" / GENERATIONS).read_bytes()
    (state / BATCHES / "batch-000002.json").unlink()
    (state / PENDING).write_text(json.dumps({"id": record["id"], "files": record["files"]}))
    (out / "manifest-000002.json").unlink()
    capsys.readouterr()
    run(batches["raw"], out, state)
    log = capsys.readouterr().out
    assert "resuming batch-000002" in log
    assert all(f"{stage}: already committed" in log for stage in DEFAULT_STAGES)
    assert (state / "index" / GENERATIONS).read_bytes() == generations
    rewritten = {f"{BATCHES}/batch-000002/{name}" for name in ("pipeline.json", "report.html")}
    now = snapshot(out)
    assert {k: v for k, v in now.items() if k not in rewritten} == \
        {k: v for k, v in batches["after_second"].items() if k not in rewritten}
    assert json.loads((state / BATCHES / "batch-000002.json").read_text())["stages"] == record["stages"]


def test_a_resumed_batch_reruns_every_stage_after_one_that_had_to_run(batches, capsys):
    """A batch whose filter never committed (as if a version that deduplicated first had left it) runs
    filter, dedupe and tokenize again, so no later stage's committed output is reused over other input;
    the stages are deterministic and the index knows the batch, so the output is the same."""
    state, out = batches["state"], batches["out"]
    record = json.loads((state / BATCHES / "batch-000002.json").read_text())
    (state / BATCHES / "batch-000002.json").unlink()
    (state / PENDING).write_text(json.dumps({"id": record["id"], "files": record["files"]}))
    (out / BATCHES / "batch-000002" / "filter" / "_SUCCESS").unlink()
    capsys.readouterr()
    run(batches["raw"], out, state)
    log = capsys.readouterr().out
    assert "clean: already committed" in log
    assert not [stage for stage in DEFAULT_STAGES[1:] if f"{stage}: already committed" in log]
    assert json.loads((state / BATCHES / "batch-000002.json").read_text())["stages"] == record["stages"]
    shards = [k for k in batches["after_second"] if "/tokenize/shards/" in k]
    assert shards and all(snapshot(out)[k] == batches["after_second"][k] for k in shards)


def write_lock(state: Path, **fields) -> None:
    (state / LOCK).write_text(json.dumps({"run_id": "other", "host": socket.gethostname(), **fields}))


def test_a_live_lock_keeps_a_second_run_out(batches, tmp_path, capsys):
    raw = tmp_path / "raw"
    write_jsonl(raw / "docs.jsonl", [{"id": "x", "text": document(random.Random(1))}])
    state = tmp_path / "state"
    state.mkdir()
    holder = subprocess.Popen(["sleep", "60"])
    try:
        write_lock(state, pid=holder.pid, heartbeat=time.time())
        with pytest.raises(SystemExit) as stopped:
            run(raw, tmp_path / "out", state)
    finally:
        holder.kill()
        holder.wait()
    assert stopped.value.code == cli.LOCKED_EXIT
    assert f"pid {holder.pid}" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()
    assert json.loads((state / LOCK).read_text())["run_id"] == "other"


@pytest.mark.parametrize("lock", [
    {"pid": 2**22 + 12345, "heartbeat": "now"},  # this host, process gone
    {"pid": 1, "heartbeat": 0},  # alive pid, heartbeat far older than lock_timeout_seconds
], ids=["dead-process", "old-heartbeat"])
def test_a_stale_lock_is_reported_and_taken_over(batches, capsys, lock):
    state = batches["state"]
    write_lock(state, pid=lock["pid"], heartbeat=time.time() if lock["heartbeat"] == "now" else 0)
    assert run(batches["raw"], batches["out"], state) == []
    assert "stale lock of run other" in capsys.readouterr().out
    assert not (state / LOCK).exists()


def test_the_lock_heartbeat_keeps_a_long_run_live(tmp_path):
    from pipeline.state import Lock, StateConfig

    cfg = StateConfig(lock_timeout_seconds=1.0, heartbeat_seconds=0.1)
    with Lock(str(tmp_path), cfg):
        time.sleep(1.5)  # longer than the timeout: only the heartbeat keeps the lock fresh
        held = json.loads((tmp_path / LOCK).read_text())
        assert Lock(str(tmp_path), cfg).stale_reason(held) is None
    assert not (tmp_path / LOCK).exists()


def test_the_state_settings_are_in_the_pipeline_help():
    text = cli.parser(None).format_help()
    assert "--state URI" in text and "state.lock_timeout_seconds" in text
