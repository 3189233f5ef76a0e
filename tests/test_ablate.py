"""The stage ablation, reduced: a 200-document corpus (plus verbatim copies of half of them under new ids,
so that held-out documents have duplicates on the training side), a 512-token BPE and 8 training steps,
run twice into two directories."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import config as cfglib
from pipeline.dedup import minhash
from pipeline.default_corpus import build
from pipeline.tokenize.shards import iter_shard, read_manifest
from pipeline.stages import ablation as ablate

STEPS, EVERY = 8, 4
SETTINGS = [
    f"train.steps={STEPS}",
    f"train.eval.every={EVERY}",
    "holdout.fraction=0.2",
    "tokenize.vocab_size=512",
    "tokenize.sample_tokens=256",
    "variants=[{name: strict, set: [filter.min_lang_score=0.9, filter.english.gopher_quality.min_doc_words=150]}]",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ablate-corpus")
    build(out, max_docs=200)
    originals = []
    for shard in ("docs-00.jsonl.gz", "docs-01.jsonl.gz"):
        with gzip.open(out / shard, "rt", encoding="utf-8") as f:
            originals += [json.loads(line) for line in f]
    copies = [{**doc, "id": doc["id"] + "-copy"} for doc in originals]
    (out / "copies.jsonl").write_text("".join(json.dumps(c) + "\n" for c in copies), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def runs(spark, corpus, tmp_path_factory) -> list[tuple[Path, dict]]:
    cfg = ablate.load_config(None, SETTINGS)
    out = []
    for name in ("first", "second"):
        path = tmp_path_factory.mktemp(f"ablate-{name}")
        out.append((path, ablate.run(spark, str(corpus), str(path), cfg)))
    return out


def _docs(stage_dir: Path) -> dict[str, str]:
    listing = json.loads((stage_dir / "_SUCCESS").read_text())
    rows = {}
    for rel in listing["files"].get("data", []):
        table = pq.read_table(stage_dir / rel, columns=["id", "text"])
        rows.update(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))
    return rows


def _normalized(texts) -> list[str]:
    """Texts as the dedupe stage compares them exactly."""
    return minhash.normalize(pa.array(list(texts), pa.string())).to_pylist()


def _shard_ids(manifest_path: Path, split: str) -> set[str]:
    manifest = read_manifest(str(manifest_path))
    ids = set()
    for shard in manifest.splits[split].shards:
        data = Path(manifest.resolve(shard.url)).read_bytes()
        ids.update(i for _, _, meta in iter_shard(data, shard.url) for i in meta["ids"])
    return ids


def test_the_table_has_a_row_per_variant_with_the_counts_of_each_stage_it_ran(runs):
    out, result = runs[0]
    assert [v["name"] for v in result["variants"]] == ["raw", "dedupe", "filter", "strict"]
    chains = {v["name"]: list(v["stages"]) for v in result["variants"]}
    assert chains["raw"] == ["clean", "holdout", "decontaminate", "tokenize"]
    assert chains["dedupe"] == ["clean", "holdout", "decontaminate", "dedupe", "tokenize"]
    assert chains["filter"] == chains["strict"] == ["clean", "holdout", "decontaminate", "filter", "dedupe", "tokenize"]
    for v in result["variants"]:
        stages = list(v["stages"].values())
        for before, after in zip(stages, stages[1:]):
            assert after["input"] == before["kept"]
        assert all(s["input"] == s["kept"] + s["dropped"] for s in stages)
    by_name = {v["name"]: v for v in result["variants"]}
    assert by_name["strict"]["stages"]["filter"]["kept"] < by_name["filter"]["stages"]["filter"]["kept"]
    assert by_name["dedupe"]["stages"]["dedupe"]["dropped"] > 0

    table = [line for line in (out / "ablation.md").read_text().splitlines() if line.startswith("|")]
    assert len(table) == 2 + 4
    assert {line.count("|") for line in table} == {table[0].count("|")}
    for column in ("variant", "dedupe kept / dropped", "train tokens available", "tokens trained",
                   "final val loss", "val bits per byte"):
        assert column in table[0]
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_variant_trains_on_the_same_number_of_tokens_and_is_evaluated_at_the_same_points(runs):
    _, result = runs[0]
    tokens_per_step = 16 * 64  # the tiny preset's batch of 16 windows of 64 tokens
    assert {v["tokens_trained"] for v in result["variants"]} == {STEPS * tokens_per_step}
    assert {tuple(e["tokens"] for e in v["evaluations"]) for v in result["variants"]} == {
        tuple(range(EVERY * tokens_per_step, STEPS * tokens_per_step + 1, EVERY * tokens_per_step))}
    assert len({v["train_tokens_available"] for v in result["variants"]}) == 4


def test_heldout_documents_and_their_duplicates_never_reach_a_training_shard(runs):
    out, result = runs[0]
    heldout = _docs(out / "stages" / "heldout" / "holdout")  # every held-out document
    evaluation = _docs(out / "stages" / "heldout" / "dedupe")  # those that passed the filter
    clean = _docs(out / "stages" / "clean")
    val_ids = _shard_ids(out / "tokens" / "raw.json", "val")
    assert val_ids == set(evaluation) and val_ids <= set(heldout)
    evaluation_texts = set(_normalized(evaluation.values()))
    for v in result["variants"]:
        train_ids = _shard_ids(out / "tokens" / f"{v['name']}.json", "train")
        assert train_ids and not train_ids & set(heldout), v["name"]
        assert not set(_normalized(clean[i] for i in train_ids)) & evaluation_texts, v["name"]
        assert _shard_ids(out / "tokens" / f"{v['name']}.json", "val") == val_ids
    # The copies made by the fixture put some evaluation documents' twins on the training side.
    training_side = _docs(out / "stages" / "train" / "holdout")
    twins = [i for i, t in zip(training_side, _normalized(training_side.values())) if t in evaluation_texts]
    assert twins
    assert result["variants"][0]["stages"]["decontaminate"]["reasons"][ablate.EXACT_REASON] >= len(twins)


def test_a_rerun_gives_the_same_numbers(runs):
    def numbers(result: dict) -> dict:
        return {"heldout": {k: v for k, v in result["heldout"].items() if k != "stages"},
                "variants": [{k: v[k] for k in ("name", "stages", "train_tokens_available", "tokens_trained",
                                                "final_val_loss", "final_val_bpb", "evaluations")}
                             for v in result["variants"]]}

    (_, first), (_, second) = runs
    assert numbers(first) == numbers(second)


def test_a_variant_may_not_change_the_shared_tokenizer():
    with pytest.raises(cfglib.ConfigError, match="may set only"):
        ablate.load_config(None, ["variants=[{name: big, set: [tokenize.vocab_size=4096]}]"])
    with pytest.raises(cfglib.ConfigError, match="unknown config key"):
        ablate.load_config(None, ["variants=[{name: typo, set: [filter.min_lang_scor=0.9]}]"])
