"""Input split by size (pipeline/readers/splits.py): small files grouped, a large plain JSONL file cut into
line-aligned byte ranges with exact line numbers, a large plain WARC file at its records, a large Parquet
file by row groups, compressed files whole; the clean stage's documents the same for any split size."""
from __future__ import annotations

import gzip
import io
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import config as config_lib
from pipeline import stages
from pipeline.readers.splits import MIN_RANGE_BYTES, Piece, RangeStream, plan, row_groups_in
from pipeline.stages.config import PipelineConfig
from synthetic import documents, write_jsonl


def test_small_files_are_grouped_large_plain_jsonl_warc_and_parquet_are_cut_and_a_compressed_one_stays_whole():
    M = MIN_RANGE_BYTES
    files = [("a.jsonl", "a.jsonl", 30 * M), ("b.jsonl", "b.jsonl", 50 * M), ("c.jsonl", "c.jsonl", 40 * M),
             ("big.jsonl", "big.jsonl", 250 * M), ("big.jsonl.gz", "big.jsonl.gz", 300 * M),
             ("small.jsonl.gz", "small.jsonl.gz", 20 * M), ("d.parquet", "d.parquet", 40 * M)]
    splits, unsplittable = plan(files, 100 * M)
    assert [[(p.uri, p.start, p.end) for p in s] for s in splits] == [
        [("a.jsonl", 0, -1), ("b.jsonl", 0, -1)], [("c.jsonl", 0, -1)],
        [("big.jsonl", 0, 250 * M // 3)], [("big.jsonl", 250 * M // 3, 500 * M // 3)],
        [("big.jsonl", 500 * M // 3, 250 * M)], [("big.jsonl.gz", 0, -1)],
        [("small.jsonl.gz", 0, -1)], [("d.parquet", 0, 20 * M)], [("d.parquet", 20 * M, 40 * M)]]
    # a compressed file, and Parquet (its pages are), weighs 4x its size
    assert unsplittable == 1
    assert plan(files, 100 * M) == (splits, unsplittable)  # a pure function of the files and the size
    warc, _ = plan([("c.warc", "c.warc", 300 * M)], 100 * M)
    assert [(p.start, p.end) for s in warc for p in s] == [(0, 100 * M), (100 * M, 200 * M), (200 * M, 300 * M)]
    assert plan([("c.warc.gz", "c.warc.gz", 300 * M)], 100 * M) == ([[Piece("c.warc.gz", "c.warc.gz")]], 1)
    one_each, _ = plan([("a.jsonl", "a.jsonl", 1000), ("b.jsonl", "b.jsonl", 3 * M // 2)], 1)
    assert [[(p.uri, p.start, p.end) for p in s] for s in one_each] == [[("a.jsonl", 0, -1)], [("b.jsonl", 0, -1)]]


def test_byte_ranges_hold_every_line_once_each_with_its_line_number_in_the_file():
    rng = random.Random(5)
    for _ in range(50):
        lines = [("x" * rng.randint(0, 40)).encode() for _ in range(rng.randint(1, 60))]
        data = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
        bounds = sorted({0, len(data), *(rng.randint(0, len(data)) for _ in range(rng.randint(1, 12)))})
        joined = b""
        for start, end in zip(bounds, bounds[1:]):
            stream = RangeStream(io.BytesIO(data), start, end, data[:start].count(b"\n"))
            got = b"".join(iter(lambda: stream.read(7), b""))
            if got:
                assert stream.first_line == data[: len(joined)].count(b"\n") + 1
            joined += got
        assert joined == data


def test_every_row_group_of_a_parquet_file_falls_in_exactly_one_range_of_any_cut(tmp_path):
    rng = random.Random(8)
    path = tmp_path / "groups.parquet"
    texts = ["".join(rng.choice("abcdefgh ") for _ in range(rng.randint(10, 400))) for _ in range(3000)]
    pq.write_table(pa.table({"id": [str(i) for i in range(3000)], "text": texts}), path, row_group_size=97)
    meta = pq.ParquetFile(path).metadata
    size = path.stat().st_size
    for _ in range(30):
        bounds = sorted({0, size, *(rng.randint(0, size) for _ in range(rng.randint(1, 20)))})
        groups = [g for a, b in zip(bounds, bounds[1:]) for g in row_groups_in(meta, a, b)]
        assert groups == list(range(meta.num_row_groups))


def _rows(stage) -> list[dict]:
    listing = json.loads((stage / "_SUCCESS").read_text())["files"]["data"]
    return [r for p in listing for r in pq.read_table(stage / p).to_pylist()]


def _clean_whole_and_in_ranges(spark, tmp_path) -> tuple[dict, dict, int]:
    """Clean over tmp_path/in at the default split size and at split_bytes=1 (ranges of the 1 MiB minimum):
    both runs' stats and the number of data parts the second wrote."""
    whole = stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "whole"), PipelineConfig())
    small = config_lib.load(PipelineConfig, overrides=["clean.reader.split_bytes=1"])
    split = stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "split"), small)
    return whole, split, len(json.loads((tmp_path / "split" / "_SUCCESS").read_text())["files"]["data"])


def test_one_big_jsonl_file_is_read_in_several_tasks_giving_the_same_documents_and_lines(spark, tmp_path):
    docs = documents(12000, seed=3)  # about 3.5 MB: cut into ranges of the 1 MiB minimum
    write_jsonl(tmp_path / "in" / "all.jsonl", docs)
    (tmp_path / "in" / "all.jsonl").write_text((tmp_path / "in" / "all.jsonl").read_text() + "not json\n")
    whole, split, parts = _clean_whole_and_in_ranges(spark, tmp_path)
    assert parts == (tmp_path / "in" / "all.jsonl").stat().st_size // MIN_RANGE_BYTES > 1
    assert len(json.loads((tmp_path / "whole" / "_SUCCESS").read_text())["files"]["data"]) == 1
    assert _rows(tmp_path / "split") == _rows(tmp_path / "whole")
    assert [r["line"] for r in _rows(tmp_path / "split")] == list(range(1, 12001))
    assert split["input"] == whole["input"] == 12001 and split["rejected"] == whole["rejected"] == {"invalid_json": 1}


def test_many_small_files_are_read_in_few_tasks_with_the_same_documents(spark, tmp_path):
    for i in range(12):
        write_jsonl(tmp_path / "in" / f"f{i:02d}.jsonl", documents(5, seed=i))
    with gzip.open(tmp_path / "in" / "z.jsonl.gz", "wt") as f:
        f.write(json.dumps({"id": "z", "text": "A compressed file read whole, with its own line numbers."}) + "\n")
    one_each = config_lib.load(PipelineConfig, overrides=["clean.reader.split_bytes=1"])
    many = stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "many"), one_each)
    grouped = stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "grouped"), PipelineConfig())
    assert len(json.loads((tmp_path / "grouped" / "_SUCCESS").read_text())["files"]["data"]) == 1
    assert len(json.loads((tmp_path / "many" / "_SUCCESS").read_text())["files"]["data"]) == 13
    assert _rows(tmp_path / "grouped") == _rows(tmp_path / "many")
    assert grouped["input"] == many["input"] == 61


def test_one_big_parquet_file_is_read_by_row_groups_in_several_tasks_with_the_same_rows(spark, tmp_path):
    docs = documents(12000, seed=4)
    (tmp_path / "in").mkdir()
    table = pa.table({"id": [d["id"] for d in docs], "text": [d["text"] for d in docs]})
    pq.write_table(table, tmp_path / "in" / "all.parquet", row_group_size=500, compression="none",
                   use_dictionary=False)
    size = (tmp_path / "in" / "all.parquet").stat().st_size
    whole, split, parts = _clean_whole_and_in_ranges(spark, tmp_path)
    assert parts == size // MIN_RANGE_BYTES > 1
    assert _rows(tmp_path / "split") == _rows(tmp_path / "whole")
    assert [r["line"] for r in _rows(tmp_path / "split")] == list(range(1, 12001))
    assert split["input"] == whole["input"] == 12000


def _wet(path, n: int, rng: random.Random) -> None:
    """A plain WET file of n conversion records after a warcinfo record, with a metadata record (no
    document either) after every 50th; one holds a fake record header in its text, and garbage sits between
    two records (the reader rejects it and resumes at the next record)."""
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=False)
    writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
    for i in range(n):
        if i % 50 == 49:
            writer.write_record(writer.create_warc_record(f"https://example.org/{i}", "metadata", payload=io.BytesIO(b"a: b\r\n"),
                                                          length=6, warc_content_type="application/warc-fields"))
        text = " ".join(rng.choice(["river", "stone", "lamp", "harbour", "field"]) for _ in range(rng.randint(5, 400)))
        if i == n // 3:
            text += "\nWARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: 5\r\n\r\nfake!\n"
        payload = f"Record {i}. {text}".encode()
        writer.write_record(writer.create_warc_record(f"https://example.org/{i}", "conversion",
                                                      payload=io.BytesIO(payload), length=len(payload)))
        if i == 2 * n // 3:
            buf.write(b"garbage that is no record\r\n" * 20)
    path.write_bytes(buf.getvalue())


def test_a_plain_warc_file_read_in_byte_ranges_gives_the_whole_files_records_and_numbers(tmp_path):
    from pipeline.readers import Tally, read_piece
    from pipeline.readers.records import ReaderConfig
    from pipeline.readers.splits import warc_bounds, with_record_starts
    from pipeline.readers.warc import record_starts

    rng = random.Random(9)
    path = tmp_path / "crawl.wet"
    _wet(path, 300, rng)
    size = path.stat().st_size
    whole = list(read_piece(Piece(str(path), "crawl.wet"), ReaderConfig()))
    assert {r["_reason"] for r in whole if r["_status"] == "rejected"} == {"warc_corrupt"}
    assert sum(r["_status"] == "kept" for r in whole) == 300  # the fake header inside a text stays text
    # The file's decompression budget runs across ranges: here it stops the file in its second half.
    capped = ReaderConfig(max_decompressed_bytes=size // 2)
    assert list(read_piece(Piece(str(path), "crawl.wet"), capped))[-1]["_reason"] == "decompressed_too_large"
    for trial in range(20):
        cfg = capped if trial % 2 else ReaderConfig()
        whole = list(read_piece(Piece(str(path), "crawl.wet"), cfg))
        cuts = sorted({0, size, *(rng.randint(1, size - 1) for _ in range(rng.randint(1, 12)))})
        planned = [[Piece(str(path), "crawl.wet", a, b)] for a, b in zip(cuts, cuts[1:])]
        bounds, _ = warc_bounds(planned)[str(path)]
        with open(path, "rb") as f:
            found = {str(path): dict(zip(bounds, record_starts(f, bounds, size, cfg)))}
        pieces = [p for split in with_record_starts(planned, found) for p in split]
        assert [p.start for p in pieces][1:] == [p.end for p in pieces][:-1]
        tallies = [Tally() for _ in pieces]
        assert [r for p, tally in zip(pieces, tallies) for r in read_piece(p, cfg, tally=tally)] == whole
        assert sum(tally.units for tally in tallies) == len(whole)  # each range's records, by their framing


def test_one_big_plain_wet_file_is_read_in_several_tasks_giving_the_same_documents(spark, tmp_path):
    (tmp_path / "in").mkdir()
    _wet(tmp_path / "in" / "crawl.wet", 1600, random.Random(10))  # about 2.6 MB: two or more ranges
    size = (tmp_path / "in" / "crawl.wet").stat().st_size
    whole, split, parts = _clean_whole_and_in_ranges(spark, tmp_path)
    assert parts == size // MIN_RANGE_BYTES > 1
    assert _rows(tmp_path / "split") == _rows(tmp_path / "whole")
    assert split["input"] == whole["input"] and split["rejected"] == whole["rejected"] == {"warc_corrupt": 1}
