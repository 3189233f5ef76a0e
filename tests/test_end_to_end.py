"""The four stage jobs, each through spark-submit, on a labelled slice of the shared corpus.

The slice: the first lines of docs-00, every malformed line of all eight shards (except the 2 MB
`huge_document`s), and the originals of the exact duplicates in it, written into two .jsonl.gz files
whose (file, line) -> label mapping the checks use as ground truth.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import stages
from pipeline.dedup.minhash import normalize
from pipeline.schemas import validate
from pipeline.stages.config import PipelineConfig
from pipeline.tokenize.shards import iter_shard, shard_documents
from pipeline.tokenize.tokenizer import decode_documents, load_tokenizer, split_of

pytestmark = [pytest.mark.slow, pytest.mark.corpus]

# The stages jobs/pipeline.py runs under the default settings, in its order.
STAGES = [entry.name for entry in stages.enabled(PipelineConfig())]

REPO = Path(__file__).resolve().parents[1]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
HEAD_LINES = 2500
STAGE_TIMEOUT = 300
SETTINGS = ["tokenize.vocab_size=2048", "tokenize.shard_bytes=400000", "tokenize.sample_tokens=512",
            "tokenize.val_fraction=0.05"]
# What each labelled malformed line must be rejected as.
EXPECTED_REASON = {
    "truncated_json": "invalid_json",
    "invalid_utf8": "invalid_utf8",
    "missing_text": "missing_text",
    "null_text": "null_text",
    "empty_line": "empty_line",
    "not_an_object": "not_an_object",
}


def _raw_lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes())
    lines = data.split(b"\n")
    return lines[:-1] if lines and lines[-1] == b"" else lines


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def expected_reason(label: dict) -> str:
    """A record cut short inside a multi-byte character is invalid UTF-8 before it is invalid JSON."""
    if label["malformed_type"] == "truncated_json" and not label["utf8"]:
        return "invalid_utf8"
    return EXPECTED_REASON[label["malformed_type"]]


def build_slice(corpus: Path, out_dir: Path) -> dict[tuple[str, int], dict]:
    """Write the slice into out_dir and return {(file, line): label} for every line written."""
    with gzip.open(corpus / "labels" / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        labels = [json.loads(line) for line in f]
    by_id = {lab["id"]: lab for lab in labels if lab["id"] and lab["kind"] != "malformed"}
    raw = {name: _raw_lines(corpus / "raw" / name) for name in sorted({lab["file"].split("/")[-1] for lab in labels})}

    def usable(lab):
        return lab.get("malformed_type") != "huge_document"

    head = [lab for lab in labels if lab["file"].endswith("docs-00.jsonl.gz") and lab["line"] <= HEAD_LINES and usable(lab)]
    in_head = {(lab["file"], lab["line"]) for lab in head}
    extra = [lab for lab in labels if lab["kind"] == "malformed" and usable(lab) and (lab["file"], lab["line"]) not in in_head]
    ids = {lab["id"] for lab in head}
    for lab in head:
        original = by_id.get(lab["dup_of"]) if lab["kind"] == "exact_dup" else None
        if original and original["id"] not in ids:
            extra.append(original)
            ids.add(original["id"])

    mapping = {}
    for name, group in (("a.jsonl.gz", head), ("b.jsonl.gz", extra)):
        with gzip.open(out_dir / name, "wb") as f:
            for n, lab in enumerate(group, start=1):
                line = raw[lab["file"].split("/")[-1]][lab["line"] - 1]
                f.write(line + b"\n")
                mapping[(name, n)] = {**lab, "utf8": _is_utf8(line)}
    return mapping


def spark_submit(job: str, inp: Path, out: Path, settings=(), master: str = "local[2]") -> None:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    cmd = [str(SPARK_SUBMIT), "--master", master, "--conf", "spark.ui.enabled=false",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
           f"jobs/{job}.py", "--input", str(inp), "--output", str(out)]
    for s in settings:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=STAGE_TIMEOUT)
    assert proc.returncode == 0, f"{job} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"


def read_parts(stage_dir: Path, subdir: str = "data") -> pa.Table:
    listing = json.loads((stage_dir / "_SUCCESS").read_text())["files"].get(subdir, [])
    return pa.concat_tables([pq.read_table(stage_dir / p) for p in listing]) if listing else None


@pytest.fixture(scope="module")
def run(shared_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    (root / "in").mkdir()
    mapping = build_slice(shared_corpus, root / "in")
    previous = root / "in"
    for stage in STAGES:  # the stage jobs one after another, in the pipeline job's order
        spark_submit(stage, previous, root / stage, SETTINGS if stage == "tokenize" else ())
        previous = root / stage
    stats = {s: json.loads((root / s / "stats.json").read_text()) for s in STAGES}
    return {"root": root, "mapping": mapping, "stats": stats}


def test_the_pipeline_job_on_one_core_writes_the_same_bytes_as_the_stage_jobs_on_two(run):
    """local[1] and local[2] (and one job against four) give byte-identical parts, clusters, samples,
    shards, tokenizer and manifest; stats differ only in their timings."""
    one_core = run["root"] / "local1"
    spark_submit("pipeline", run["root"] / "in", one_core, SETTINGS, master="local[1]")
    for stage in STAGES:
        two = {str(p.relative_to(run["root"] / stage)): p.read_bytes()
               for p in sorted((run["root"] / stage).rglob("*")) if p.is_file() and p.name != "stats.json"}
        one = {str(p.relative_to(one_core / stage)): p.read_bytes()
               for p in sorted((one_core / stage).rglob("*")) if p.is_file() and p.name != "stats.json"}
        assert sorted(one) == sorted(two), stage
        assert [k for k in two if one[k] != two[k]] == [], stage
        untimed = [{k: v for k, v in json.loads((d / stage / "stats.json").read_text()).items() if k != "seconds"}
                   for d in (one_core, run["root"])]
        assert untimed[0] == untimed[1], stage


def test_stats_reconcile_and_chain(run):
    stats = run["stats"]
    for s in stats.values():
        assert s["input"] == s["kept"] + sum(s["dropped"].values()) + sum(s["rejected"].values()), s
    assert stats["clean"]["input"] == len(run["mapping"])
    assert stats["filter"]["input"] == stats["clean"]["kept"]
    assert stats["dedupe"]["input"] == stats["filter"]["kept"]
    assert stats["tokenize"]["input"] == stats["dedupe"]["kept"] == stats["tokenize"]["kept"]
    assert stats["dedupe"]["dropped"].get("exact_duplicate", 0) > 0


def test_every_malformed_line_is_rejected_with_its_file_line_and_reason(run):
    expected = {(f, n, expected_reason(lab))
                for (f, n), lab in run["mapping"].items() if lab["kind"] == "malformed"}
    assert len(expected) >= 50
    rejected = read_parts(run["root"] / "clean", "rejected").to_pylist()
    assert {(r["file"], r["line"], r["reason"]) for r in rejected} == expected
    assert sum(run["stats"]["clean"]["rejected"].values()) == len(expected)


def test_ids_survive_unchanged_through_every_stage(run):
    input_ids = {lab["id"] for lab in run["mapping"].values() if lab["kind"] != "malformed"}
    previous = input_ids
    for stage in STAGES[:-1]:
        ids = read_parts(run["root"] / stage).column("id").to_pylist()
        assert len(ids) == len(set(ids)) == run["stats"][stage]["kept"]
        assert set(ids) <= previous, f"{stage} invented ids {sorted(set(ids) - previous)[:5]}"
        previous = set(ids)


def test_dedupe_keeps_no_two_documents_with_the_same_normalised_text(run):
    data = read_parts(run["root"] / "dedupe")
    texts = normalize(data.column("text").combine_chunks()).to_pylist()
    assert len(set(texts)) == len(texts)
    kept = set(data.column("id").to_pylist())
    pairs = [(lab["id"], lab["dup_of"]) for lab in run["mapping"].values() if lab["kind"] == "exact_dup"]
    both_in_input = [(c, o) for c, o in pairs if o in {lab["id"] for lab in run["mapping"].values()}]
    assert len(both_in_input) >= 20
    assert not [(c, o) for c, o in both_in_input if c in kept and o in kept]


def test_every_output_file_validates_against_its_schema(run):
    root = run["root"]
    for stage, s in run["stats"].items():
        validate(s, "stats.v1")
    for stage in STAGES[:-1]:
        for row in read_parts(root / stage).to_pylist():
            validate(row, "document.v2")
    assert "lang" in read_parts(root / "filter").column_names
    for row in read_parts(root / "clean", "rejected").to_pylist():
        validate(row, "rejected.v1")
    for row in read_parts(root / "dedupe", "clusters").to_pylist():
        validate(row, "clusters.v1")
    manifest = json.loads((root / "tokenize" / "manifest.json").read_text())
    validate(manifest, "manifest.v2")
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            for _, tokens, meta in iter_shard((root / "tokenize" / shard["url"]).read_bytes(), shard["url"]):
                validate(meta, "shard_sample.v2")
                assert len(meta["ids"]) == len(meta["spans"]) == len(meta["langs"]) == len(meta["text_bytes"])
                assert meta["spans"][-1][1] == len(tokens)


def test_shards_keep_each_documents_language_and_text_bytes(run):
    root = run["root"]
    docs = read_parts(root / "dedupe").to_pylist()
    want = {d["id"]: (d["lang"], len(d["text"].encode("utf-8"))) for d in docs}
    got: dict[str, tuple[str, int]] = {}
    manifest = json.loads((root / "tokenize" / "manifest.json").read_text())
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            for _, _, meta in iter_shard((root / "tokenize" / shard["url"]).read_bytes(), shard["url"]):
                for doc_id, lang, n in zip(meta["ids"], meta["langs"], meta["text_bytes"]):
                    before = got.get(doc_id, (lang, 0))
                    assert before[0] == lang
                    got[doc_id] = (lang, before[1] + n)
    assert got == want


def test_shards_match_the_manifest(run):
    root = run["root"] / "tokenize"
    manifest = json.loads((root / "manifest.json").read_text())
    assert hashlib.sha256((root / manifest["tokenizer"]["path"]).read_bytes()).hexdigest() == manifest["tokenizer"]["sha256"]
    listed = set()
    for name, split in manifest["splits"].items():
        assert len(split["shards"]) >= 1
        for shard in split["shards"]:
            data = (root / shard["url"]).read_bytes()
            samples = list(iter_shard(data, shard["url"]))
            assert hashlib.sha256(data).hexdigest() == shard["sha256"]
            assert len(data) == shard["bytes"]
            assert len(samples) == shard["samples"]
            assert sum(len(t) for _, t, _ in samples) == shard["tokens"]
            assert len({i for _, _, m in samples for i in m["ids"]}) == shard["documents"]
            listed.add(shard["url"])
        for key in ("samples", "tokens", "documents", "text_bytes"):
            assert split[key] == sum(s[key] for s in split["shards"])
    on_disk = {str(p.relative_to(root)) for p in (root / "shards").rglob("*.tar")}
    assert on_disk == listed
    assert len(manifest["splits"]["train"]["shards"]) >= 2


def test_decoding_the_shards_reproduces_every_final_document_in_exactly_one_split(run):
    root = run["root"] / "tokenize"
    manifest = json.loads((root / "manifest.json").read_text())
    tok = load_tokenizer((root / manifest["tokenizer"]["path"]).read_text())
    docs, split_by_doc, text_bytes = {}, {}, {}
    for name, split in manifest["splits"].items():
        for shard in split["shards"]:
            for doc_id, tokens in shard_documents(iter_shard((root / shard["url"]).read_bytes(), shard["url"])).items():
                assert doc_id not in docs, f"{doc_id} is in more than one shard or split"
                docs[doc_id], split_by_doc[doc_id] = tokens, name
        text_bytes[name] = split["text_bytes"]

    final = read_parts(run["root"] / STAGES[-2]).to_pylist()  # the stage tokenize reads
    expected = {r["id"]: r["text"] for r in final}
    assert set(docs) == set(expected)
    decoded = decode_documents(tok, docs)
    ids = sorted(expected)
    mismatched = [i for i in ids if decoded[i] != expected[i]]
    assert not mismatched, f"{len(mismatched)} documents do not round-trip, e.g. {mismatched[:3]}"
    for doc_id, split in zip(ids, split_of(ids, 0.05)):
        assert split_by_doc[doc_id] == split
    for name in manifest["splits"]:
        in_split = [i for i in ids if split_by_doc[i] == name]
        assert text_bytes[name] == sum(len(expected[i].encode("utf-8")) for i in in_split)


def test_report_of_the_run_has_every_section_with_content(run):
    """The data report of this very run: every section present and filled, drops and rejections shown."""
    from pipeline import report
    from synthetic import SECTIONS, report_sections

    sections = report_sections(report.build(str(run["root"])))
    assert list(sections) == SECTIONS
    assert all(s["text"].strip() and s["heading"].strip() for s in sections.values())
    assert sum(len(s["images"]) for s in sections.values()) >= 5
    assert "invalid_json" in sections["samples"]["cells"]
    assert "exact_duplicate" in sections["drops"]["text"]
    assert sections["funnel"]["cells"][:2] == ["input records", f"{run['stats']['clean']['input']:,}"]
