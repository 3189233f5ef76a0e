"""JSONL/Parquet readers: every line becomes exactly one kept or rejected record naming file and line."""
from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from pipeline.readers import read_file, to_batches
from pipeline.readers.jsonl import read_jsonl
from pipeline.readers.records import RAW_SCHEMA, ReaderConfig, derived_id

LINES = [
    json.dumps({"id": "a", "text": "hello world", "source": "web", "url": "https://x.org"}).encode(),
    b'{"id": "b", "text": "cut sho',
    b"",
    b"   ",
    b'{"id": "c", "text": "bad \xff byte"}',
    b'["not", "an", "object"]',
    json.dumps({"id": "d"}).encode(),
    json.dumps({"id": "e", "text": None}).encode(),
    json.dumps({"id": "f", "text": 42}).encode(),
    json.dumps({"text": "no id here"}).encode(),
    json.dumps({"id": "g", "text": "x" * 50}).encode(),
]


def read(data: bytes, cfg=ReaderConfig(max_text_bytes=40)):
    return list(read_jsonl(io.BytesIO(data), "docs.jsonl", cfg))


def test_every_line_gives_one_record_with_a_specific_reason():
    records = read(b"\n".join(LINES))
    assert [r["line"] for r in records] == list(range(1, len(LINES) + 1))
    assert [r["_reason"] for r in records] == [
        None, "invalid_json", "empty_line", "empty_line", "invalid_utf8", "not_an_object",
        "missing_text", "null_text", "text_not_a_string", None, "document_too_large",
    ]
    assert all(r["file"] == "docs.jsonl" for r in records)
    assert records[0]["source"] == "web" and records[0]["url"] == "https://x.org"


def test_record_without_id_gets_a_deterministic_id_from_file_and_line():
    records = read(b"\n".join(LINES))
    assert records[9]["id"] == derived_id("docs.jsonl", 10)
    assert read(b"\n".join(LINES))[9]["id"] == records[9]["id"]
    assert derived_id("docs.jsonl", 10) != derived_id("docs.jsonl", 11)


def test_one_bad_line_does_not_desynchronise_the_next():
    records = read(b'{"id": "x", "text": "\xc3"}\n{"id": "y", "text": "fine"}\n')
    assert [r["_status"] for r in records] == ["rejected", "kept"]
    assert records[1]["text"] == "fine"


def test_a_truncated_gzip_stream_ends_with_a_rejection_not_a_crash(tmp_path):
    body = gzip.compress(b"\n".join(json.dumps({"id": str(i), "text": "t" * 100}).encode() for i in range(2000)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(body[: len(body) // 2])
    records = list(read_file(str(path), "cut.jsonl.gz", ReaderConfig()))
    assert records[-1]["_status"] == "rejected" and records[-1]["_reason"] == "corrupt_stream"
    assert all(r["_status"] == "kept" for r in records[:-1]) and len(records) > 1


def test_gzip_zstd_and_parquet_inputs_read_the_same_records(tmp_path):
    rows = [{"id": str(i), "text": f"document {i}"} for i in range(5)]
    data = b"\n".join(json.dumps(r).encode() for r in rows) + b"\n"
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    for name in ("a.jsonl.gz", "a.jsonl.zst", "a.parquet"):
        got = [(r["id"], r["text"], r["line"]) for r in read_file(str(tmp_path / name), name, ReaderConfig())]
        assert got == [(r["id"], r["text"], i + 1) for i, r in enumerate(rows)], name


def test_batches_are_bounded_in_rows_and_keep_every_record():
    records = read(b"\n".join(LINES * 30))
    batches = list(to_batches(iter(records), max_rows=100))
    assert all(b.num_rows <= 100 and b.schema == RAW_SCHEMA for b in batches)
    assert sum(b.num_rows for b in batches) == len(records)


def test_the_tally_counts_what_was_read_apart_from_the_records_made_of_it(tmp_path):
    """Lines of every JSONL shape (blank, bad, unterminated, too long, a cut gzip, past the decompression
    cap, a byte range) and Parquet rows from the footer: each count equals the records the reader yields,
    so a reader that lost one would not reconcile."""
    from pipeline.readers import Tally, read_piece
    from pipeline.readers.splits import Piece

    body = b"\n".join(LINES)
    lines = b"\n".join(json.dumps({"id": str(i), "text": "t" * 100}).encode() for i in range(2000))
    files = {
        "mixed.jsonl": body,
        "terminated.jsonl": body + b"\n",
        "huge.jsonl": body + b"\n" + b"x" * 5000 + b"\n" + body,
        "cut.jsonl.gz": gzip.compress(lines)[: len(gzip.compress(lines)) // 2],
        "capped.jsonl.gz": gzip.compress(lines),
        "empty.jsonl": b"",
    }
    cfg = ReaderConfig(max_line_bytes=1000, max_decompressed_bytes=len(lines) // 3)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        tally = Tally()
        records = list(read_file(str(tmp_path / name), name, cfg, tally=tally))
        assert tally.units == len(records), name
    reasons = {r["_reason"] for r in read_file(str(tmp_path / "capped.jsonl.gz"), "c", cfg)}
    assert "decompressed_too_large" in reasons
    tally = Tally()
    head = Piece(str(tmp_path / "huge.jsonl"), "huge.jsonl", 0, 40)  # the lines starting in its first 40 bytes
    assert len(list(read_piece(head, cfg, tally=tally))) == tally.units > 0
    pq.write_table(pa.table({"id": [str(i) for i in range(900)], "text": ["words here"] * 900}), tmp_path / "t.parquet",
                   row_group_size=100)
    tally = Tally()
    assert len(list(read_file(str(tmp_path / "t.parquet"), "t.parquet", cfg, tally=tally))) == tally.units == 900


def _warc(gz: bool) -> bytes:
    """warcinfo, request and metadata records (no documents) around a response, a 404 and a WET conversion."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gz)
    writer.write_record(writer.create_warcinfo_record("t.warc", {"software": "test"}))
    page = b"<html><body><article><p>" + b"A sentence about the river and the town. " * 20 + b"</p></article></body></html>"
    request = StatusAndHeaders("GET / HTTP/1.1", [("Host", "a.example")], is_http_request=True)
    for rtype, uri, payload, kwargs in [
        ("request", "http://a.example/", b"", {"http_headers": request}),
        ("response", "http://a.example/", page,
         {"http_headers": StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")}),
        ("metadata", "http://a.example/", b"fetchTimeMs: 12\r\n", {"warc_content_type": "application/warc-fields"}),
        ("response", "http://a.example/gone", b"<html>gone</html>",
         {"http_headers": StatusAndHeaders("404 Not Found", [("Content-Type", "text/html")], protocol="HTTP/1.1")}),
        ("conversion", "http://b.example/", b"Plain WET text, already extracted.", {"warc_content_type": "text/plain"}),
    ]:
        writer.write_record(writer.create_warc_record(uri, rtype, payload=io.BytesIO(payload), length=len(payload), **kwargs))
    return buf.getvalue()


def test_the_tally_counts_warc_records_by_their_framing_and_html_files_by_the_file(tmp_path):
    """A WARC file's tally is the records and unreadable stretches its framing finds, less the records that
    are no documents: it equals the rows whatever the damage (garbage between records, a wrong
    Content-Length on a warcinfo record, a corrupt gzip member, a cut, the decompression cap),
    without being counted from them (byte ranges: tests/test_splits.py). An HTML file is one page, readable
    or not."""
    from pipeline.readers import Tally

    plain, gz = _warc(False), _warc(True)
    second = plain.index(b"WARC/1.", 10)
    members = [m for m in gz.split(b"\x1f\x8b\x08") if m]
    files = {
        "t.warc": plain,
        "t.warc.gz": gz,
        "garbage.warc": plain[:second] + b"garbage\r\nmore garbage\r\n\r\n" + plain[second:],
        "misframed.warc": plain.replace(b"Content-Length: ", b"Content-Length: 1", 1),  # the warcinfo's
        "member.warc.gz": gz.replace(members[2][40:80], b"\xff" * 40),
        "cut.warc": plain[:-30],
        "cut.warc.gz": gz[:-30],
        "page.html": b"<html><body><p>One page of text.</p></body></html>",
        "broken.html.gz": gzip.compress(b"<html>" * 1000)[:50],
    }
    cfg = ReaderConfig()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        tally = Tally()
        records = list(read_file(str(tmp_path / name), name, cfg, tally=tally))
        assert tally.units == len(records), (name, [(r["line"], r["_reason"]) for r in records])
    assert len(list(read_file(str(tmp_path / "t.warc"), "t.warc", cfg))) == 3
    capped, tally = ReaderConfig(max_decompressed_bytes=500), Tally()  # passed by the first response
    records = list(read_file(str(tmp_path / "t.warc"), "t.warc", capped, tally=tally))
    assert records[-1]["_reason"] == "decompressed_too_large" and tally.units == len(records)


def test_a_warc_record_the_parser_drops_without_a_row_leaves_the_tally_above_the_rows(tmp_path, monkeypatch):
    from pipeline.readers import Tally, warc

    (tmp_path / "t.warc").write_bytes(_warc(False))
    parse = warc._document
    monkeypatch.setattr(warc, "_document", lambda record, line, *rest: None if line == 6 else parse(record, line, *rest))
    tally = Tally()
    records = list(read_file(str(tmp_path / "t.warc"), "t.warc", ReaderConfig(), tally=tally))
    assert [r["line"] for r in records] == [3, 5] and tally.units == 3
