"""The fastText quality classifier: training from labelled records or stage directories (bounded, seeded,
deterministic), and the filter dropping low scorers as `quality_classifier` with stats that reconcile."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import config as config_lib
from pipeline.filter import FilterConfig, filter_batch
from pipeline.filter import quality, quality_train_spark
from pipeline.filter.quality import REASON
from pipeline import stages
from pipeline.stages.config import PipelineConfig
from pipeline.stagedir import StageError

REPO = Path(__file__).resolve().parents[1]

# Two classes of English-looking text that every rule keeps; only their content words tell them apart.
GOOD = """river stone garden window morning letter silver harbor winter forest lantern bridge candle meadow orchard
valley mountain cottage village kitchen autumn summer blossom willow sparrow thunder evening shadow pebble
chimney library painter poem story journey lake island cloud rain snow field farmer shepherd sheep horse
wheat barley bread apple pear cherry mill fence path hill cliff shore wave tide boat sail anchor""".split()
BAD = """casino bonus jackpot discount voucher coupon lottery crypto deal offer promo giveaway prize cashback
bargain clearance click subscribe download free cheap guaranteed winner unlock exclusive limited instant
cash credit loan mortgage refinance pharmacy pills viagra replica watches rolex luxury outlet sale buy
order shipping checkout cart wallet token airdrop mining profit income earn rich millionaire bitcoin
forex trading signal leverage betting odds spin slots poker""".split()
FUNCTION_WORDS = "the and of to with that a in was is for on they we have be".split()


def document(words: list[str], rng: random.Random) -> str:
    """Three paragraphs of random sentences (random, so that no Gopher repetition rule fires)."""
    vocabulary = words + FUNCTION_WORDS
    paragraphs = []
    for _ in range(3):
        sentences = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(8, 14))).capitalize() + "."
                     for _ in range(4)]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


def documents(kind: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    words = GOOD if kind == "good" else BAD
    return [{"id": f"{kind}{seed}-{i:04d}", "text": document(words, rng), "source": "test"} for i in range(n)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


SMALL = quality_train_spark.TrainConfig(bucket=10_000, dim=16, min_count=1, holdout_fraction=0.2)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """A labelled JSONL table of the two classes."""
    rows = [{"text": d["text"], "label": "keep"} for d in documents("good", 120, 1)]
    rows += [{"text": d["text"], "label": "junk"} for d in documents("bad", 120, 2)]
    return write_jsonl(tmp_path_factory.mktemp("labelled") / "examples.jsonl", rows)


def train_from_table(spark, table: Path, out: Path) -> dict:
    examples = quality_train_spark.sample(quality_train_spark.labelled_table(spark, str(table)), SMALL)
    return quality_train_spark.train(examples, str(out), SMALL)


@pytest.fixture(scope="module")
def model_dir(spark, labelled, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("quality") / "model"
    train_from_table(spark, labelled, out)
    return out


def test_training_writes_a_model_and_a_report_of_examples_and_held_out_precision_recall(model_dir):
    report = json.loads((model_dir / "report.json").read_text())
    assert (model_dir / "model.bin").stat().st_size == report["files"]["model.bin"]
    labels = report["labels"]
    assert set(labels) == {"__label__keep", "__label__junk"}
    for counts in labels.values():
        assert counts["available"] == 120
        assert counts["train"] + counts["holdout"] == 120
        assert counts["holdout"] > 0
    holdout = report["holdout"]["model.bin"]
    assert all(m["precision"] == 1.0 and m["recall"] == 1.0 for m in holdout.values())


def test_sample_is_bounded_per_label_and_does_not_depend_on_partitioning(spark, tmp_path):
    rows = [{"text": f"text number {i}", "label": "a" if i % 3 else "b"} for i in range(300)]
    one = write_jsonl(tmp_path / "one" / "all.jsonl", rows)
    for k in range(3):  # the same rows spread over three files (three Spark partitions)
        write_jsonl(tmp_path / "three" / f"part{k}.jsonl", rows[k::3])
    cfg = quality_train_spark.TrainConfig(max_per_label=50, holdout_fraction=0.2, seed=5)
    first = quality_train_spark.sample(quality_train_spark.labelled_table(spark, str(one)), cfg)
    second = quality_train_spark.sample(quality_train_spark.labelled_table(spark, str(tmp_path / "three")), cfg)
    assert first == second
    assert first.available == {"__label__a": 200, "__label__b": 100}
    per_label = {label: sum(t == label for t, _ in first.train + first.holdout) for label in first.available}
    assert per_label == {"__label__a": 50, "__label__b": 50}
    assert len({t for t, _ in first.train[:20]}) == 2  # labels interleaved, not one block after the other
    other_cfg = quality_train_spark.TrainConfig(max_per_label=50, seed=6)
    other_seed = quality_train_spark.sample(quality_train_spark.labelled_table(spark, str(one)), other_cfg)
    assert sorted(first.train + first.holdout) != sorted(other_seed.train + other_seed.holdout)


def test_training_again_with_the_same_seed_gives_the_same_model_bytes(spark, labelled, model_dir, tmp_path):
    train_from_table(spark, labelled, tmp_path / "again")
    assert (tmp_path / "again" / "model.bin").read_bytes() == (model_dir / "model.bin").read_bytes()


def test_filter_batch_scores_only_survivors_and_drops_low_scores_as_quality_classifier(model_dir):
    good, bad = documents("good", 3, 10), documents("bad", 3, 11)
    short = [{"id": "short", "text": "The river runs to the sea and the boats go with it.", "source": "test"}]
    cfg = config_lib.merge(FilterConfig(), {"quality": {"model": str(model_dir / "model.bin")}})
    out = filter_batch(pa.RecordBatch.from_pylist(good + bad + short), cfg).to_pylist()
    by_id = {r["id"]: r for r in out}
    assert all(by_id[d["id"]]["_status"] == "kept" and by_id[d["id"]]["quality_score"] >= 0.5 for d in good)
    assert all(by_id[d["id"]]["_reason"] == REASON and by_id[d["id"]]["quality_score"] < 0.5 for d in bad)
    assert by_id["short"]["_reason"] == "gopher_min_words"  # an earlier check: never scored
    assert by_id["short"]["quality_score"] is None


def test_filter_batch_scores_only_the_configured_languages(model_dir):
    bad = documents("bad", 2, 12)
    cfg = config_lib.merge(FilterConfig(), {"quality": {"model": str(model_dir / "model.bin"), "languages": ["de"]}})
    out = filter_batch(pa.RecordBatch.from_pylist(bad), cfg)
    assert out.column("_status").to_pylist() == ["kept", "kept"]
    assert out.column("quality_score").null_count == 2


def test_filter_stage_drops_with_reason_quality_classifier_and_stats_reconcile(spark, model_dir, tmp_path):
    good, bad = documents("good", 30, 20), documents("bad", 20, 21)
    write_jsonl(tmp_path / "in" / "docs.jsonl", good + bad)
    cfg = config_lib.load(PipelineConfig, overrides=[f"filter.quality.model={model_dir / 'model.bin'}"])
    stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), cfg)
    stats = stages.run("filter", spark, str(tmp_path / "clean"), str(tmp_path / "filter"), cfg)
    assert stats["input"] == 50
    assert stats["kept"] == 30 and stats["dropped"] == {REASON: 20}
    kept = pq.read_table(tmp_path / "filter" / "data").to_pylist()
    assert {r["id"] for r in kept} == {d["id"] for d in good}
    assert all(r["quality_score"] >= 0.5 for r in kept)
    dropped = pq.read_table(tmp_path / "filter" / "dropped").to_pylist()
    assert {r["reason"] for r in dropped} == {REASON} and all(r["quality_score"] < 0.5 for r in dropped)


def test_filter_stage_refuses_a_label_the_model_does_not_have_and_names_its_labels(spark, model_dir, tmp_path):
    write_jsonl(tmp_path / "in" / "docs.jsonl", documents("good", 5, 30))
    cfg = config_lib.load(PipelineConfig, overrides=[
        f"filter.quality.model={model_dir / 'model.bin'}", "filter.quality.label=keep",
    ])
    stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), cfg)
    with pytest.raises(StageError, match="__label__keep"):
        stages.run("filter", spark, str(tmp_path / "clean"), str(tmp_path / "filter"), cfg)


def test_training_from_a_stage_directory_per_class_uses_its_subdirectory(spark, tmp_path):
    write_jsonl(tmp_path / "good" / "docs.jsonl", documents("good", 60, 40))
    write_jsonl(tmp_path / "bad" / "docs.jsonl", documents("bad", 60, 41))
    stages.run("clean", spark, str(tmp_path / "good"), str(tmp_path / "good_clean"), PipelineConfig())
    examples = quality_train_spark.documents_as(spark, str(tmp_path / "good_clean"), "keep").unionByName(
        quality_train_spark.documents_as(spark, str(tmp_path / "bad"), "junk")  # raw files, read as clean reads them
    )
    report = quality_train_spark.train(quality_train_spark.sample(examples, SMALL), str(tmp_path / "model"), SMALL)
    assert {label: c["available"] for label, c in report["labels"].items()} == {"__label__keep": 60, "__label__junk": 60}
    with pytest.raises(StageError, match="dropped"):  # clean kept everything: it has no dropped/ sample
        quality_train_spark.documents_as(spark, str(tmp_path / "good_clean"), "junk", subdir="dropped")


def test_a_model_on_s3_is_fetched_once_per_process_and_scores_like_the_local_copy(model_dir, tmp_path, monkeypatch):
    from s3server import seaweedfs

    with seaweedfs(tmp_path / "seaweedfs") as server:
        server.client().put_object(Bucket=server.bucket, Key="models/q.bin", Body=(model_dir / "model.bin").read_bytes())
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        uri = f"s3://{server.bucket}/models/q.bin"
        model = quality.load_model(uri)
        assert quality.load_model(uri) is model
    texts = pa.array([d["text"] for d in documents("good", 2, 50) + documents("bad", 2, 51)])
    local = config_lib.merge(FilterConfig(), {"quality": {"model": str(model_dir / "model.bin")}}).quality
    remote = config_lib.merge(FilterConfig(), {"quality": {"model": uri}}).quality
    assert quality.scores(texts, remote).tolist() == quality.scores(texts, local).tolist()  # served from the cache


def test_train_quality_job_help_explains_both_input_forms():
    out = subprocess.run([sys.executable, str(REPO / "jobs" / "train_quality.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    for needle in ("--labelled", "--positive", "--negative-subdir", "max_per_label", "filter.quality.model"):
        assert needle in out
