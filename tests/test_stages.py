"""Stage contracts from docs/DESIGN.md, run in-process on the shared Spark session with small inline inputs:
re-runs are byte-identical, uncommitted stages are refused, config typos are named, and token shards do
not depend on how the input is partitioned."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import config as config_lib
from pipeline.cli import load_config, parser
from pipeline import stages
from pipeline.stages.config import PipelineConfig
from pipeline.stagedir import SUCCESS, StageError
from synthetic import DE, EN, documents, write_jsonl

ONE_TASK_PER_FILE = "clean.reader.split_bytes=1"  # two small files would otherwise share one task and part

def committed_bytes(stage_dir: Path, subdir: str) -> dict[str, bytes]:
    listing = json.loads((stage_dir / SUCCESS).read_text())["files"][subdir]
    return {p: (stage_dir / p).read_bytes() for p in listing}


def small_tokenize_config() -> PipelineConfig:
    return config_lib.load(PipelineConfig, overrides=[
        "tokenize.vocab_size=320", "tokenize.sample_tokens=64", "tokenize.shard_bytes=2000",
        "tokenize.val_fraction=0.2", "tokenize.min_frequency=1",
    ])


def test_rerunning_a_committed_stage_gives_byte_identical_data_parts(spark, tmp_path):
    write_jsonl(tmp_path / "in" / "a.jsonl", documents(40))
    write_jsonl(tmp_path / "in" / "b.jsonl", documents(20, seed=8) + [{"id": "x", "text": None}])
    out = tmp_path / "clean"
    cfg = config_lib.load(PipelineConfig, overrides=[ONE_TASK_PER_FILE])
    first_stats = stages.run("clean", spark, str(tmp_path / "in"), str(out), cfg)
    first = committed_bytes(out, "data")
    first_rejected = committed_bytes(out, "rejected")
    second_stats = stages.run("clean", spark, str(tmp_path / "in"), str(out), cfg)
    assert len(first) == 2
    assert committed_bytes(out, "data") == first
    assert committed_bytes(out, "rejected") == first_rejected
    assert {k: v for k, v in first_stats.items() if k != "seconds"} == {k: v for k, v in second_stats.items() if k != "seconds"}
    assert sorted(p.name for p in (out / "data").iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert not (out / "_temporary").exists()


def test_clean_stats_count_decoded_references_and_removed_boilerplate_lines(spark, tmp_path):
    docs = documents(3)
    docs[0]["text"] = "The keeper&#39;s log &amp; the storm. " + docs[0]["text"]
    docs[1]["text"] += "\nThis website uses cookies to improve your experience."
    write_jsonl(tmp_path / "in" / "a.jsonl", docs)
    stats = stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), PipelineConfig())
    assert (stats["html_entities_unescaped"], stats["boilerplate_lines_removed"]) == (1, 1)
    text = pq.read_table(tmp_path / "clean" / "data").column("text").to_pylist()[0]
    assert text.startswith("The keeper's log & the storm. ")
    assert json.loads((tmp_path / "clean" / "stats.json").read_text())["html_entities_unescaped"] == 1


def test_dedupe_keeps_each_input_part_in_its_order_minus_the_dropped_documents(spark, tmp_path):
    a, b = documents(30), documents(30, seed=9)
    b = [{**d, "id": "x" + d["id"]} for d in b]
    b[3]["text"] = a[5]["text"]  # xdoc0003 duplicates doc0005, a smaller id in another part
    a[7]["text"] = a[2]["text"].upper()  # doc0007 duplicates doc0002 (same normalised text) in its own part
    a[12]["text"] = " ".join(d["text"] for d in documents(10, seed=3))
    b[10]["text"] = a[12]["text"] + " Indeed."  # xdoc0010 nearly duplicates doc0012
    write_jsonl(tmp_path / "in" / "a.jsonl", a)
    write_jsonl(tmp_path / "in" / "b.jsonl", b)
    cfg = config_lib.load(PipelineConfig, overrides=[ONE_TASK_PER_FILE])
    stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), cfg)
    stats = stages.run("dedupe", spark, str(tmp_path / "clean"), str(tmp_path / "dedupe"), cfg)
    assert stats["dropped"] == {"exact_duplicate": 2, "near_duplicate": 1}
    assert stats["verified_edges"] == 1  # its text was read out of its part for verification
    for part, docs, dropped in (("part-00000", a, {"doc0007"}), ("part-00001", b, {"xdoc0003", "xdoc0010"})):
        ids = pq.read_table(tmp_path / "dedupe" / "data" / f"{part}.parquet").column("id").to_pylist()
        assert ids == [d["id"] for d in docs if d["id"] not in dropped]


def test_filter_and_dedupe_stats_count_every_language_by_outcome(spark, tmp_path):
    texts = [EN, DE, DE, "Click here now"]  # the second German text is an exact duplicate; the last is too short
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": f"d{i}", "text": t, "source": "test"} for i, t in enumerate(texts)])
    cfg = PipelineConfig()
    stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), cfg)
    filtered = stages.run("filter", spark, str(tmp_path / "clean"), str(tmp_path / "filter"), cfg)
    assert filtered["languages"] == {"de": {"kept": 2, "dropped": {}, "rejected": {}},
                                     "en": {"kept": 1, "dropped": {"gopher_min_words": 1}, "rejected": {}}}
    deduped = stages.run("dedupe", spark, str(tmp_path / "filter"), str(tmp_path / "dedupe"), cfg)
    assert deduped["languages"] == {"de": {"kept": 1, "dropped": {"exact_duplicate": 1}, "rejected": {}},
                                    "en": {"kept": 1, "dropped": {}, "rejected": {}}}


@pytest.mark.parametrize("next_stage", ["dedupe", "tokenize"])
def test_next_stage_refuses_an_input_stage_without_success_and_names_it(spark, tmp_path, next_stage):
    write_jsonl(tmp_path / "in" / "a.jsonl", documents(5))
    stage_dir = tmp_path / "clean"
    stages.run("clean", spark, str(tmp_path / "in"), str(stage_dir), PipelineConfig())
    (stage_dir / SUCCESS).unlink()
    with pytest.raises(StageError, match=SUCCESS) as err:
        stages.run(next_stage, spark, str(stage_dir), str(tmp_path / "next"), PipelineConfig())
    assert str(stage_dir) in str(err.value)
    assert not (tmp_path / "next" / SUCCESS).exists()


@pytest.mark.parametrize("stage,key,named", [
    ("dedupe", "dedupe.threshhold=0.8", "dedupe.threshhold"),
    ("dedupe", "threshhold=0.8", "dedupe.threshhold"),
    (None, "tokenize.vocab=100", "tokenize.vocab"),
    ("filter", "nosuchsection.x=1", "nosuchsection"),
])
def test_set_with_an_unknown_key_fails_naming_the_key(stage, key, named):
    args = parser(stage).parse_args(["--input", "in", "--output", "out", "--set", key])
    with pytest.raises(config_lib.ConfigError, match=named.replace(".", r"\.")):
        load_config(args, stage)


def test_set_with_a_known_key_applies_it_to_the_stage_section():
    args = parser("dedupe").parse_args(["--input", "in", "--output", "out", "--set", "partitions=3"])
    assert load_config(args, "dedupe").dedupe.partitions == 3


def test_tokenize_output_does_not_depend_on_input_partitioning(spark, tmp_path):
    docs = documents(60)
    write_jsonl(tmp_path / "one" / "all.jsonl", docs)
    shuffled = docs[:]
    random.Random(3).shuffle(shuffled)
    for k in range(3):
        write_jsonl(tmp_path / "three" / f"part{k}.jsonl", shuffled[k::3])
    cfg = small_tokenize_config()
    outputs = {}
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    try:
        for layout, shuffle_partitions in (("one", "4"), ("three", "7")):
            spark.conf.set("spark.sql.shuffle.partitions", shuffle_partitions)
            stages.run("clean", spark, str(tmp_path / layout), str(tmp_path / f"{layout}-clean"), cfg)
            out = tmp_path / f"{layout}-tokenize"
            stages.run("tokenize", spark, str(tmp_path / f"{layout}-clean"), str(out), cfg)
            outputs[layout] = out
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)

    one, three = outputs["one"], outputs["three"]
    manifest = (one / "manifest.json").read_bytes()
    assert manifest == (three / "manifest.json").read_bytes()
    assert (one / "tokenizer.json").read_bytes() == (three / "tokenizer.json").read_bytes()
    splits = json.loads(manifest)["splits"]
    assert set(splits) == {"train", "val"} and len(splits["train"]["shards"]) >= 2
    assert splits["train"]["documents"] + splits["val"]["documents"] == len(docs)
    for split in splits.values():
        for shard in split["shards"]:
            assert (one / shard["url"]).read_bytes() == (three / shard["url"]).read_bytes()


def test_a_clean_stage_that_loses_a_record_fails_its_reconciliation(spark, tmp_path):
    """The clean stage's input is what its readers read, counted apart from the rows written: a record lost
    between reading and writing cannot reconcile."""
    from pipeline.stages.clean import Clean

    write_jsonl(tmp_path / "in" / "a.jsonl", documents(40, seed=2))

    class LosesARecord(Clean):
        def transform(self):
            cleaned = super().transform()

            def lossy(batches):
                for i, batch in enumerate(cleaned(batches)):
                    yield batch.slice(1) if i == 0 else batch

            return lossy

    with pytest.raises(StageError, match="records do not reconcile: input 40 != kept 39"):
        LosesARecord(spark, str(tmp_path / "in"), str(tmp_path / "out"), PipelineConfig()).run()


def test_a_clean_stage_whose_warc_parser_drops_a_record_fails_its_reconciliation(spark, tmp_path):
    """WARC records are counted by the reader's framing, apart from the rows its parser makes of them: a
    document the parser drops without a row cannot reconcile, while the warcinfo record, no document, is
    not counted."""
    import io

    from warcio.warcwriter import WARCWriter

    from pipeline.stages.clean import Clean

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=False)
    writer.write_record(writer.create_warcinfo_record("a.warc", {"software": "test"}))
    for i, doc in enumerate(documents(6, seed=3)):
        payload = doc["text"].encode()
        writer.write_record(writer.create_warc_record(f"https://example.org/{i}", "conversion",
                                                      payload=io.BytesIO(payload), length=len(payload)))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.warc").write_bytes(buf.getvalue())

    class DropsARecord(Clean):
        def transform(self):
            cleaned = super().transform()

            def lossy(batches):  # runs in the executor, before the reader it wraps has read anything
                from pipeline.readers import warc

                parse = warc._document
                warc._document = lambda record, line, *rest: None if line == 4 else parse(record, line, *rest)
                try:
                    yield from cleaned(batches)
                finally:
                    warc._document = parse

            return lossy

    with pytest.raises(StageError, match="records do not reconcile: input 6 != kept 5"):
        DropsARecord(spark, str(tmp_path / "in"), str(tmp_path / "lossy"), PipelineConfig()).run()
    stats = Clean(spark, str(tmp_path / "in"), str(tmp_path / "out"), PipelineConfig()).run()
    assert (stats["input"], stats["kept"]) == (6, 6)
