"""Incremental dedup against a persisted index (`--set dedupe.index=URI`), through the dedupe stage: a later
batch loses its duplicates of history, re-running a batch is a no-op, and history is never rewritten."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import config as config_lib
from pipeline.dedup.index_spark import GENERATIONS, IndexMismatch, history_candidates
from pipeline import stages
from pipeline.stages.config import PipelineConfig
from pipeline.stagedir import SUCCESS

WORDS = ("river stone lantern orchard velvet harbor meadow copper whisper canyon glacier saddle "
         "thistle amber quarry falcon marble pepper ribbon timber walnut cobalt ember fjord").split()


def prose(n_words: int, seed: int) -> list[str]:
    return [str(w) for w in np.random.default_rng(seed).choice(WORDS, n_words)]


def substitute(words: list[str], positions: list[int]) -> str:
    return " ".join("zebra" if i in positions else w for i, w in enumerate(words))


BASE, OTHER = prose(200, 1), prose(200, 2)
# id -> text. b-near is dropped inside batch 1 (a near duplicate of a-base, which has the smaller id).
BATCH_1 = {
    "a-base": " ".join(BASE),
    "b-near": substitute(BASE, [50, 150]),
    "c-other": " ".join(OTHER),
    "d-third": " ".join(prose(150, 3)),
}
# id -> (text, expected status, expected reason)
BATCH_2 = {
    "0-near-history": (substitute(BASE, [10, 120]), "dropped", "near_duplicate_of_history"),
    "1-exact-history": (" ".join(OTHER).upper().replace(" ", ",  "), "dropped", "exact_duplicate_of_history"),
    "c-other": (" ".join(OTHER), "kept", None),  # re-submitted: the same document, not its own duplicate
    "e-new": (" ".join(prose(180, 4)), "kept", None),
    "f-new-near": (substitute(prose(180, 4), [90]), "dropped", "near_duplicate"),
}


def write_input_stage(root: Path, docs: dict[str, str], created: dict[str, str] | None = None) -> Path:
    """A committed upstream stage (data/ part, stats.json, _SUCCESS), as the clean stage leaves it."""
    (root / "data").mkdir(parents=True)
    ids = sorted(docs)
    table = pa.table({"id": ids, "text": [docs[i] for i in ids], "source": ["test"] * len(ids),
                      "url": pa.nulls(len(ids), pa.string()),
                      "created": pa.array([(created or {}).get(i) for i in ids], pa.string())})
    pq.write_table(table, root / "data" / "part-00000.parquet")
    (root / "stats.json").write_text(json.dumps({"stage": "clean", "kept": len(ids)}))
    (root / SUCCESS).write_text(json.dumps({"stage": "clean", "files": {"data": ["data/part-00000.parquet"]}}))
    return root


def outcome(stage_dir: Path) -> dict[str, tuple[str, str | None]]:
    """id -> (status, reason) of every input document (dropped/ holds all of them at this size)."""
    listing = json.loads((stage_dir / SUCCESS).read_text())["files"]
    out = {}
    for p in listing.get("data", []):
        out.update({i: ("kept", None) for i in pq.read_table(stage_dir / p).column("id").to_pylist()})
    for p in listing.get("dropped", []):
        t = pq.read_table(stage_dir / p)
        out.update({i: ("dropped", r) for i, r in zip(t.column("id").to_pylist(), t.column("reason").to_pylist())})
    return out


def snapshot(index: Path) -> dict[str, bytes]:
    return {str(p.relative_to(index)): p.read_bytes() for p in sorted(index.rglob("*")) if p.is_file()}


def index_ids(index: Path) -> list[str]:
    return sorted(i for p in index.glob("gen-*/data/*.parquet") for i in pq.read_table(p).column("id").to_pylist())


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    """Batch 1, batch 1 again, then batch 2, all against one index; the index is snapshot after each run."""
    root = tmp_path_factory.mktemp("index")
    index = root / "index"
    cfg = config_lib.load(PipelineConfig, overrides=[f"dedupe.index={index}", "dedupe.partitions=2"])
    batch_1 = write_input_stage(root / "in-1", BATCH_1)
    batch_2 = write_input_stage(root / "in-2", {i: text for i, (text, *_) in BATCH_2.items()})
    out = {}
    for name, source in (("first", batch_1), ("rerun", batch_1), ("second", batch_2)):
        stats = stages.run("dedupe", spark, str(source), str(root / name), cfg)
        out[name] = {"stats": stats, "outcome": outcome(root / name), "index": snapshot(index),
                     "ids": index_ids(index)}
    out["cfg"], out["index_uri"], out["input"] = cfg, index, batch_1
    return out


def test_first_batch_seeds_the_index_with_its_kept_documents(runs):
    first = runs["first"]
    assert first["outcome"] == {"a-base": ("kept", None), "b-near": ("dropped", "near_duplicate"),
                                "c-other": ("kept", None), "d-third": ("kept", None)}
    assert first["ids"] == ["a-base", "c-other", "d-third"]
    assert first["stats"]["index_generations"] == 1 and first["stats"]["index_documents"] == 3


def test_rerunning_a_batch_against_the_index_it_added_is_a_no_op(runs):
    first, rerun = runs["first"], runs["rerun"]
    assert rerun["outcome"] == first["outcome"]
    assert rerun["stats"]["exact_duplicates_of_history"] == rerun["stats"]["near_duplicates_of_history"] == 0
    assert rerun["index"] == first["index"]
    assert rerun["stats"]["index_generations"] == 1 and rerun["stats"]["index_documents"] == 3


def test_later_batch_loses_duplicates_of_history_with_the_history_reasons(runs):
    second = runs["second"]
    assert second["outcome"] == {i: (status, reason) for i, (_, status, reason) in BATCH_2.items()}
    assert second["stats"]["dropped"] == {"exact_duplicate_of_history": 1, "near_duplicate_of_history": 1,
                                          "near_duplicate": 1}
    assert second["ids"] == ["a-base", "c-other", "d-third", "e-new"]  # c-other is not added twice
    assert second["stats"]["index_generations"] == 2 and second["stats"]["index_documents"] == 4
    listing = json.loads((runs["index_uri"] / GENERATIONS).read_text())
    assert [g["name"] for g in listing["generations"]] == ["gen-000001", "gen-000002"]


def test_history_files_are_byte_identical_after_a_later_batch(runs):
    before = {k: v for k, v in runs["first"]["index"].items() if k.startswith("gen-000001/")}
    after = {k: v for k, v in runs["second"]["index"].items() if k.startswith("gen-000001/")}
    assert before and after == before


def test_rerunning_a_batch_whose_earliest_copy_has_the_larger_id_is_a_no_op(spark, tmp_path):
    """The keep rule prefers the earlier date over the smaller id; a re-run against the index must make the
    same choice, not drop the kept copy for its own history."""
    source = write_input_stage(tmp_path / "in", BATCH_1, created={"a-base": "2020-01-01", "b-near": "2001-01-01"})
    cfg = config_lib.load(PipelineConfig, overrides=[f"dedupe.index={tmp_path / 'index'}"])
    runs = []
    for name in ("first", "rerun"):
        stats = stages.run("dedupe", spark, str(source), str(tmp_path / name), cfg)
        runs.append((outcome(tmp_path / name), stats["dropped"], index_ids(tmp_path / "index")))
    assert runs[0][0]["a-base"] == ("dropped", "near_duplicate") and runs[0][0]["b-near"] == ("kept", None)
    assert runs[1] == runs[0] == (runs[0][0], {"near_duplicate": 1}, ["b-near", "c-other", "d-third"])


def test_an_index_built_with_other_minhash_parameters_is_refused(runs, spark, tmp_path):
    cfg = config_lib.load(PipelineConfig, overrides=[f"dedupe.index={runs['index_uri']}", "dedupe.seed=2"])
    with pytest.raises(IndexMismatch, match="seed"):
        stages.run("dedupe", spark, str(runs["input"]), str(tmp_path / "out"), cfg)


def test_a_bucket_shared_by_many_history_documents_pairs_each_new_document_once(spark):
    """k new documents in buckets holding m history documents give k pairs (to the smallest history id),
    not k*m; a re-submitted batch document is still paired by keep key order."""
    new = spark.createDataFrame([(f"n{i:02d}", f"n{i:02d}", 40, [7, 8]) for i in range(30)],
                                "id string, key string, shingles int, bands array<bigint>")
    history = [(f"h{i:03d}", [7, 8], None, None) for i in range(200)] + [("n50", [7, 8], True, "n50")]
    past = spark.createDataFrame(history, "history_id string, bands array<bigint>, in_batch boolean, history_key string")
    pairs = sorted(tuple(r) for r in history_candidates(new, past).collect())
    assert pairs == sorted([(f"n{i:02d}", "h000") for i in range(30)] + [(f"n{i:02d}", "n50") for i in range(30)])
