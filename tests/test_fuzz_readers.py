"""Property tests (hypothesis) for the input readers and the clean batch: whatever bytes arrive, every line or
WARC record becomes exactly one kept or rejected row with a reason, as many as the reader's own tally of
what it read, and cleaned text meets its invariants.

Runs derandomized so CI sees the same examples every time; example counts keep the module under a minute.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import tempfile
import unicodedata

import pyarrow as pa
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.clean.batch import clean_batch
from pipeline.clean.text import TextConfig
from pipeline.readers import Tally, read_file, to_batches
from pipeline.readers.html import HtmlConfig
from pipeline.readers.records import EXCERPT_CHARS, RAW_SCHEMA, ReaderConfig
from pipeline.stages.config import CleanConfig

FUZZ = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def fuzz(max_examples: int) -> settings:
    return settings(FUZZ, max_examples=max_examples)
MAX_TEXT_BYTES = 64
READER_CFG = ReaderConfig(max_text_bytes=MAX_TEXT_BYTES)
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


def read_bytes_as(data: bytes, name: str) -> list[dict]:
    """Read `data` through `read_file` as a file called `name` (the suffix picks reader and compression),
    checking that the reader's tally, counted apart from the rows, is as many as the rows (the clean stage
    fails otherwise)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        tally = Tally()
        records = list(read_file(path, name, READER_CFG, HtmlConfig(), tally))
    assert tally.units == len(records), [(r["line"], r["_reason"]) for r in records]
    return records


def assert_well_formed(records: list[dict]) -> None:
    """Shape every reader promises, whatever the input: statuses, reasons, excerpts, Arrow-convertible rows."""
    for r in records:
        assert r["_status"] in ("kept", "rejected")
        if r["_status"] == "kept":
            assert r["_reason"] is None and isinstance(r["text"], str) and r["id"]
        else:
            assert r["_reason"] and SNAKE_CASE.match(r["_reason"]), r["_reason"]
            assert r["text"] is None
            assert r["excerpt"] is None or len(r["excerpt"]) <= EXCERPT_CHARS
    batches = list(to_batches(iter(records), max_rows=7))
    assert sum(b.num_rows for b in batches) == len(records)
    statuses = [s for b in batches for s in b.column("_status").to_pylist()]
    assert statuses.count("kept") + statuses.count("rejected") == len(records)


# --- JSONL -----------------------------------------------------------------------------------------------
# Each generated line is (bytes without b"\n", expected (status, reason or text)); None: any outcome.
texts = st.text(max_size=20)


def _json_line(obj, ascii_only: bool) -> bytes:
    return json.dumps(obj, ensure_ascii=ascii_only).encode()


valid_lines = st.builds(
    lambda text, rid, ascii_only: (_json_line({"id": rid, "text": text}, ascii_only), ("kept", text)),
    texts.filter(lambda t: len(t.encode()) <= MAX_TEXT_BYTES),
    st.one_of(st.none(), st.text(max_size=5), st.integers()),
    st.booleans(),
)
too_large_lines = st.builds(
    lambda text: (_json_line({"text": text}, False), ("rejected", "document_too_large")),
    st.text(min_size=MAX_TEXT_BYTES + 1, max_size=MAX_TEXT_BYTES + 40),
)
malformed_lines = st.one_of(
    st.just((b"", ("rejected", "empty_line"))),
    st.sampled_from([b" ", b"\t", b"\r", b" \r"]).map(lambda b: (b, ("rejected", "empty_line"))),
    # Invalid UTF-8 somewhere in an otherwise valid record.
    st.builds(lambda bad: (b'{"text": "a' + bad + b'"}', ("rejected", "invalid_utf8")),
              st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf5\x80\x80\x80", b"\xc0\xaf"])),
    # JSON cut short anywhere after its first byte.
    st.builds(lambda text, cut: (_json_line({"text": text}, True)[: max(1, cut)], ("rejected", "invalid_json")),
              texts, st.integers(0, 11)),
    # A bare CR inside a JSON string is a control character JSON does not allow.
    st.builds(lambda text: (b'{"text": "' + text.encode() + b'\r"}', ("rejected", "invalid_json")),
              st.text(alphabet="abc ", max_size=5)),
    st.builds(lambda items: (_json_line(items, True), ("rejected", "not_an_object")), st.lists(texts, max_size=3)),
    st.sampled_from([b"42", b"null", b'"text"', b"true"]).map(lambda b: (b, ("rejected", "not_an_object"))),
    st.builds(lambda rid: (_json_line({"id": rid, "body": "x"}, True), ("rejected", "missing_text")), texts),
    st.just((b'{"text": null}', ("rejected", "null_text"))),
    st.builds(lambda v: (_json_line({"text": v}, True), ("rejected", "text_not_a_string")),
              st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=2))),
    st.sampled_from([r"\ud800", r"\udfff", r"a\udc00b", r"\ude00\ud83d"]).map(
        lambda esc: (b'{"text": "' + esc.encode() + b'"}', ("rejected", "invalid_unicode"))),
    # A surrogate pair written as two escapes is one valid character.
    st.just((rb'{"text": "\ud83d\ude00"}', ("kept", "\U0001F600"))),
    # Random bytes: anything may come out, as long as it is one well-formed record.
    st.binary(max_size=40).map(lambda b: (b.replace(b"\n", b""), None)),
)
jsonl_lines = st.lists(st.one_of(valid_lines, too_large_lines, malformed_lines), min_size=1, max_size=25)


def _jsonl_file(lines, crlf: list[bool], final_newline: bool) -> bytes:
    ends = [b"\r\n" if c else b"\n" for c in crlf]
    body = b"".join(raw + end for (raw, _), end in zip(lines, ends))
    return body if final_newline else body[: -len(ends[-1])]


@st.composite
def jsonl_files(draw):
    lines = draw(jsonl_lines)
    crlf = draw(st.lists(st.booleans(), min_size=len(lines), max_size=len(lines)))
    final_newline = draw(st.booleans())
    if lines[-1][0] == b"":
        final_newline = True  # an empty last line without its newline is no line at all
    return lines, _jsonl_file(lines, crlf, final_newline)


def _compress(data: bytes, compression: str) -> bytes:
    if compression == ".gz":
        return gzip.compress(data, mtime=0)
    if compression == ".zst":
        return zstandard.ZstdCompressor().compress(data)
    return data


def _expected_matches(record: dict, line: int, expected) -> None:
    assert record["line"] == line
    if expected is None:
        return
    status, value = expected
    assert record["_status"] == status, (record, expected)
    if status == "kept":
        assert record["text"] == value
    else:
        assert record["_reason"] == value


@fuzz(150)
@given(jsonl_files(), st.sampled_from(["", ".gz", ".zst"]))
def test_every_jsonl_line_becomes_exactly_one_record_with_the_expected_outcome(file, compression):
    lines, data = file
    records = read_bytes_as(_compress(data, compression), "in.jsonl" + compression)
    assert_well_formed(records)
    assert len(records) == len(lines)
    for i, (record, (_, expected)) in enumerate(zip(records, lines), start=1):
        _expected_matches(record, i, expected)
        if record["_status"] == "rejected":
            assert record["_detail"]


@fuzz(100)
@given(jsonl_files(), st.sampled_from(["", ".gz", ".zst"]), st.floats(0, 1, exclude_max=True))
def test_a_cut_jsonl_file_keeps_every_whole_line_and_ends_with_at_most_one_corrupt_stream(file, compression, where):
    lines, data = file
    compressed = _compress(data, compression)
    cut = compressed[: int(len(compressed) * where)]
    whole = read_bytes_as(compressed, "in.jsonl" + compression)
    records = read_bytes_as(cut, "in.jsonl" + compression)
    assert_well_formed(records)
    assert [r["line"] for r in records] == list(range(1, len(records) + 1))
    assert len(records) <= len(lines) + 1
    corrupt = [i for i, r in enumerate(records) if r["_reason"] == "corrupt_stream"]
    assert corrupt in ([], [len(records) - 1])
    # Every line before the last record was read whole, so it reads as it does in the complete file.
    for got, want in zip(records[:-1], whole):
        assert (got["_status"], got["_reason"], got["text"]) == (want["_status"], want["_reason"], want["text"])
    if compression and cut:
        # A compressed stream cut short is detectable, and must not pass for a complete file.
        assert corrupt, f"{compression} cut at {len(cut)} of {len(compressed)} bytes went unnoticed"


# --- WARC ------------------------------------------------------------------------------------------------
ARTICLE = (
    "<!DOCTYPE html><html><head><title>River</title></head><body><nav><a href='/'>Home</a></nav>"
    "<article><h1>River</h1><p>The river runs through the old town and past the mill, where boats once "
    "carried grain to the harbour.</p><p>Today the banks are a park.</p></article></body></html>"
).encode()


def small_warc(gz: bool) -> bytes:
    """warcinfo, request, two HTML responses (one 404), a WET conversion and an HTML resource."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gz)
    writer.write_record(writer.create_warcinfo_record("fuzz.warc", {"software": "test"}))

    def http(status, content_type="text/html; charset=utf-8"):
        return StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")

    request = StatusAndHeaders("GET / HTTP/1.1", [("Host", "a.example")], is_http_request=True)
    records = [
        ("request", "http://a.example/", b"", {"http_headers": request}),
        ("response", "http://a.example/", ARTICLE, {"http_headers": http("200 OK")}),
        ("response", "http://a.example/missing", b"<html>gone</html>", {"http_headers": http("404 Not Found")}),
        ("conversion", "http://b.example/", "Plain WET text, already extracted.".encode(), {"warc_content_type": "text/plain"}),
        ("resource", "file:///c.html", ARTICLE, {"warc_content_type": "text/html"}),
    ]
    for rtype, uri, payload, kwargs in records:
        writer.write_record(writer.create_warc_record(uri, rtype, payload=io.BytesIO(payload), length=len(payload), **kwargs))
    return buf.getvalue()


WARCS = {".warc": small_warc(False), ".warc.gz": small_warc(True)}
# (line, status, reason) of the unmutated file: warcinfo (1) and request (2) give no row.
INTACT = [(3, "kept", None), (4, "rejected", "http_status_not_200"), (5, "kept", None), (6, "kept", None)]

mutations = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=30)),
)


def mutate(data: bytes, ops) -> bytes:
    for op, where, *arg in ops:
        i = int(len(data) * where)
        if op == "truncate":
            data = data[:i]
        elif op == "flip" and data:
            data = data[:i] + bytes([data[i] ^ arg[0]]) + data[i + 1:]
        elif op == "insert":
            data = data[:i] + arg[0] + data[i:]
    return data


def test_the_intact_fuzz_warc_reads_as_expected():
    for suffix, data in WARCS.items():
        records = read_bytes_as(data, "in" + suffix)
        assert [(r["line"], r["_status"], r["_reason"]) for r in records] == INTACT, suffix


@fuzz(120)
@given(st.sampled_from(sorted(WARCS)), st.lists(mutations, min_size=1, max_size=3))
def test_a_damaged_warc_never_raises_and_every_record_is_kept_or_rejected_with_a_reason(suffix, ops):
    records = read_bytes_as(mutate(WARCS[suffix], ops), "in" + suffix)
    assert_well_formed(records)
    lines = [r["line"] for r in records]
    assert lines == sorted(set(lines)) and all(n >= 1 for n in lines)
    for r in records:
        if r["_status"] == "kept":
            assert r["text"].strip()
    # A stretch the parser cannot read is one row not built from a parsed record (no source "web"); reading
    # resumes at the next record start after it.
    assert all(r["_reason"] in ("warc_corrupt", "warc_truncated") for r in records if r["source"] is None)


# --- clean_batch -----------------------------------------------------------------------------------------
# Text rich in what cleaning must handle: controls, combining marks, zero-width and exotic spaces, newlines.
messy_chars = st.one_of(
    st.characters(codec="utf-8"),
    st.characters(categories=["Cc", "Mn", "Zs", "Zl", "Zp", "Cf"]),
    st.sampled_from(list("\n\r\t eé\u0301\u0308\u200b\ufeff\u00a0\u3000a")),
)
messy_text = st.text(messy_chars, max_size=40)
reader_rows = st.one_of(
    messy_text.map(lambda t: ("kept", None, t)),
    st.sampled_from(["invalid_json", "empty_line", "document_too_large"]).map(lambda r: ("rejected", r, None)),
)


def raw_row(i: int, status: str, reason: str | None, text: str | None) -> dict:
    return {"id": str(i), "text": text, "source": None, "url": None, "created": None, "file": "f", "line": i + 1,
            "_status": status, "_reason": reason, "_detail": None, "excerpt": None}


@fuzz(300)
@given(st.lists(reader_rows, min_size=1, max_size=12), st.booleans())
def test_cleaned_text_is_nfc_without_controls_blank_runs_or_outer_whitespace(rows, boilerplate):
    batch = pa.RecordBatch.from_pylist([raw_row(i, *r) for i, r in enumerate(rows)], schema=RAW_SCHEMA)
    cfg = CleanConfig(text=TextConfig(), remove_boilerplate_lines=boilerplate)
    out, counts = clean_batch(batch, cfg)
    assert out.schema == RAW_SCHEMA and out.num_rows == batch.num_rows and min(counts.values()) >= 0
    for (status, reason, _), text, got_status, got_reason in zip(
        rows, *(out.column(c).to_pylist() for c in ("text", "_status", "_reason"))
    ):
        if status == "rejected":
            assert (got_status, got_reason, text) == ("rejected", reason, None)
            continue
        assert unicodedata.is_normalized("NFC", text), ascii(text)
        assert not [c for c in text if unicodedata.category(c) == "Cc" and c != "\n"], ascii(text)
        assert "\n\n\n" not in text
        assert text == text.strip(), ascii(text)
        if text:
            assert (got_status, got_reason) == ("kept", None)
        else:
            assert (got_status, got_reason) == ("dropped", "empty_after_cleaning")
