"""The JSON Schemas in schemas/ are valid draft 2020-12 and reject obviously wrong instances."""
from __future__ import annotations

import copy

import pytest
from jsonschema import Draft202012Validator, ValidationError

from pipeline.schemas import load_schema, schema_names, validate

EXPECTED = ["clusters.v1", "document.v1", "document.v2", "manifest.v1", "manifest.v2", "rejected.v1", "shard_sample.v1",
            "shard_sample.v2", "stats.v1"]

DOCUMENT_V1 = {"id": "3f9a1c2b7e4d", "text": "Hello.", "source": "web", "url": None, "created": "2008-06-05"}
DOCUMENT = {**DOCUMENT_V1, "file": "docs-00.jsonl.gz", "line": 12}
REJECTED = {"file": "docs-00.jsonl.gz", "line": 12, "id": None, "reason": "invalid_json",
            "detail": "Unterminated string", "excerpt": '{"id": "ab'}
CLUSTER = {"id": "b", "cluster_id": "a", "kept": False}
STATS = {"stage": "clean", "schema_version": 1, "input": 10, "kept": 7, "dropped": {"empty_after_cleaning": 1},
         "rejected": {"invalid_json": 2}, "seconds": 1.5, "input_files": 1}
SAMPLE = {"ids": ["a", "b"], "spans": [[0, 10], [10, 16]]}
SAMPLE_V2 = {**SAMPLE, "langs": ["en", "unknown"], "text_bytes": [41, 23]}
SHARD = {"url": "shards/train/shard-000000.tar", "samples": 2, "tokens": 30, "bytes": 10240,
         "sha256": "0" * 64, "documents": 2, "text_bytes": 120}
MANIFEST = {
    "schema_version": 1,
    "pipeline_version": "0.1.0",
    "tokenizer": {"path": "tokenizer.json", "sha256": "a" * 64, "vocab_size": 4096, "eos_id": 0},
    "dtype": "uint16",
    "sample_tokens": 16,
    "seed": 1234,
    "splits": {"train": {"shards": [SHARD], "samples": 2, "tokens": 30, "documents": 2, "text_bytes": 120}},
    "config": {"tokenize": {"vocab_size": 4096}},
}
VALID = {"document.v1": DOCUMENT_V1, "document.v2": DOCUMENT, "rejected.v1": REJECTED, "clusters.v1": CLUSTER, "stats.v1": STATS,
         "shard_sample.v1": SAMPLE, "manifest.v1": MANIFEST, "shard_sample.v2": SAMPLE_V2,
         "manifest.v2": {**MANIFEST, "schema_version": 2}}


def changed(obj: dict, path: tuple, value=None, delete: bool = False) -> dict:
    """A deep copy of `obj` with the key at `path` set to `value` (or removed)."""
    out = copy.deepcopy(obj)
    node = out
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def test_every_expected_schema_exists_and_nothing_else():
    assert schema_names() == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_schema_is_valid_draft_2020_12_with_versioned_id(name):
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{name}.json")


@pytest.mark.parametrize("name", EXPECTED)
def test_schema_accepts_a_well_formed_instance(name):
    validate(VALID[name], name)


def test_filtered_document_with_lang_is_valid():
    validate({**DOCUMENT, "lang": "en", "lang_score": 0.93}, "document.v2")


WRONG = [
    ("stats.v1", changed(STATS, ("kept",), delete=True), "kept"),
    ("stats.v1", changed(STATS, ("dropped", "gopher_min_words"), -1), "-1"),
    ("stats.v1", changed(STATS, ("rejected", "Bad Reason"), 1), "Bad Reason"),
    ("stats.v1", changed(STATS, ("stage",), "train"), "train"),
    ("stats.v1", changed(STATS, ("schema_version",), 2), "2"),
    ("manifest.v1", changed(MANIFEST, ("splits", "train", "tokens"), -5), "-5"),
    ("manifest.v1", changed(MANIFEST, ("splits", "train", "shards", 0, "tokens"), -1), "-1"),
    ("manifest.v1", changed(MANIFEST, ("splits", "train", "shards", 0, "sha256"), "abc"), "abc"),
    ("manifest.v1", changed(MANIFEST, ("splits", "train", "shards", 0, "url"), "/etc/passwd"), "/etc/passwd"),
    ("manifest.v1", changed(MANIFEST, ("splits", "train", "shards", 0, "url"), "../x.tar"), "../x.tar"),
    ("manifest.v1", changed(MANIFEST, ("splits", "train", "shards", 0, "url"), "s3://b/x.tar"), "s3://b/x.tar"),
    ("manifest.v1", changed(MANIFEST, ("dtype",), "float32"), "float32"),
    ("manifest.v1", changed(MANIFEST, ("tokenizer",), {"path": "tokenizer.json"}), "sha256"),
    ("manifest.v1", changed(MANIFEST, ("splits", "test"), MANIFEST["splits"]["train"]), "test"),
    ("document.v2", changed(DOCUMENT, ("id",), None), "None"),
    ("document.v2", changed(DOCUMENT, ("text",), delete=True), "text"),
    ("document.v2", changed(DOCUMENT, ("_status",), "kept"), "_status"),
    ("document.v2", changed(DOCUMENT, ("lang",), "en"), "lang_score"),
    ("document.v2", changed(DOCUMENT, ("file",), delete=True), "file"),
    ("document.v2", changed(DOCUMENT, ("line",), 0), "0"),
    ("document.v1", changed(DOCUMENT_V1, ("file",), "docs-00.jsonl.gz"), "file"),
    ("rejected.v1", changed(REJECTED, ("line",), 0), "0"),
    ("rejected.v1", changed(REJECTED, ("reason",), None), "None"),
    ("clusters.v1", changed(CLUSTER, ("kept",), "yes"), "yes"),
    ("shard_sample.v1", changed(SAMPLE, ("spans",), [[0, 10, 3], [10, 16]]), "3"),
    ("shard_sample.v1", changed(SAMPLE, ("ids",), []), "[]"),
    ("shard_sample.v2", changed(SAMPLE_V2, ("langs",), delete=True), "langs"),
    ("shard_sample.v2", changed(SAMPLE_V2, ("text_bytes",), [41, -1]), "-1"),
]


@pytest.mark.parametrize("name,instance,mentions", WRONG, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(WRONG)])
def test_schema_rejects_an_obviously_wrong_instance(name, instance, mentions):
    with pytest.raises(ValidationError) as err:
        validate(instance, name)
    assert mentions in str(err.value)


def test_unknown_schema_name_lists_the_known_ones():
    with pytest.raises(FileNotFoundError, match="manifest.v1"):
        load_schema("manifest.v9")
