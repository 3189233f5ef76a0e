"""Reader limits and recovery: bad strings in any field, long lines, gzip bombs, oversized WARC records,
broken Parquet rows and WARC records, deeply nested HTML. Each is one rejection with a reason, never a
crash, a silent cut or a lost neighbour."""
from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pytest
import zstandard

from pipeline.readers import read_file, to_batches
from pipeline.readers.records import ReaderConfig


def statuses(records) -> list[tuple]:
    return [(r["line"], r["_status"], r["_reason"]) for r in records]


def test_a_lone_surrogate_in_any_string_field_rejects_the_line_as_invalid_unicode(tmp_path):
    lines = [
        rb'{"id": "x\ud800", "text": "hello"}',
        rb'{"id": "a", "text": "hello", "url": "https://x.org/\udfff"}',
        rb'{"id": "b", "text": "hello", "source": "\ud800web"}',
        rb'{"id": "c", "text": "hello", "created": "2024\udc00"}',
        rb'{"id": "d", "text": "fine"}',
    ]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines))
    records = list(read_file(str(path), "s.jsonl", ReaderConfig()))
    assert statuses(records) == [(i, "rejected", "invalid_unicode") for i in range(1, 5)] + [(5, "kept", None)]
    assert "id" in records[0]["_detail"] and "url" in records[1]["_detail"]
    batch = pa.Table.from_batches(list(to_batches(iter(records))))  # every row converts to Arrow
    assert batch.num_rows == 5


def test_an_excerpt_or_detail_holding_a_lone_surrogate_is_made_printable():
    from pipeline.readers.records import rejected

    row = rejected("f", 1, "invalid_json", "bad \ud800", "raw \udfff text")
    pa.RecordBatch.from_pylist([row])  # converts
    assert "\ud800" not in row["_detail"] and "\udfff" not in row["excerpt"]


class _OneLongLine(io.RawIOBase):
    """`size` bytes of one line without a newline, then `rest`; counts what the reader took."""

    def __init__(self, size: int, rest: bytes = b""):
        self.left, self.rest, self.taken = size, rest, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            out, self.rest = self.rest[:n], self.rest[n:]
        else:
            out = b"x" * min(n, self.left)
            self.left -= len(out)
        self.taken += len(out)
        return out

    read1 = read


def test_a_line_past_max_line_bytes_is_rejected_as_soon_as_it_passes_and_the_next_line_is_read():
    from pipeline.readers.jsonl import CHUNK, read_jsonl

    limit = 2 * CHUNK
    stream = _OneLongLine(40 * CHUNK, b'\n{"id": "n", "text": "next"}\n')
    records = read_jsonl(stream, "long.jsonl", ReaderConfig(max_line_bytes=limit))
    first = next(records)
    assert (first["line"], first["_reason"]) == (1, "line_too_large")
    assert stream.taken <= limit + CHUNK  # nothing read past the chunk that crossed the limit
    assert statuses(records) == [(2, "kept", None)]


def test_skipping_a_long_line_holds_memory_bounded_by_the_limit_not_the_line():
    import tracemalloc

    from pipeline.readers.jsonl import CHUNK, read_jsonl

    tracemalloc.start()
    try:
        got = statuses(read_jsonl(_OneLongLine(64 * CHUNK), "long.jsonl", ReaderConfig(max_line_bytes=CHUNK)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [(1, "rejected", "line_too_large")]
    assert peak < 8 * CHUNK


def test_a_line_of_exactly_max_line_bytes_is_read_and_one_byte_more_is_rejected(monkeypatch):
    from pipeline.readers import jsonl

    monkeypatch.setattr(jsonl, "CHUNK", 7)  # lines span many reads
    at = json.dumps({"id": "a", "text": "t" * 30}).encode()
    over = json.dumps({"id": "b", "text": "t" * 31}).encode()
    data = b"\n".join([at, over, at, over]) + b"\n" + over
    got = statuses(jsonl.read_jsonl(io.BytesIO(data), "f.jsonl", ReaderConfig(max_line_bytes=len(at))))
    kept, too_large = ("kept", None), ("rejected", "line_too_large")
    assert got == [(1, *kept), (2, *too_large), (3, *kept), (4, *too_large), (5, *too_large)]


@pytest.mark.parametrize("compression", [".gz", ".zst"])
def test_a_file_decompressing_past_max_decompressed_bytes_keeps_the_lines_before_and_rejects_the_rest(tmp_path, compression):
    good = b"".join(json.dumps({"id": str(i), "text": "t" * 80}).encode() + b"\n" for i in range(100))
    data = good + b"x" * (96 << 20)  # a bomb: 96 MiB from a few hundred KiB
    packed = gzip.compress(data, 1) if compression == ".gz" else zstandard.ZstdCompressor().compress(data)
    path = tmp_path / f"bomb.jsonl{compression}"
    path.write_bytes(packed)
    records = list(read_file(str(path), path.name, ReaderConfig(max_decompressed_bytes=len(good) + 10)))
    assert statuses(records) == [(i, "kept", None) for i in range(1, 101)] + [(101, "rejected", "decompressed_too_large")]
    assert "max_decompressed_bytes" in records[-1]["_detail"]


@pytest.mark.parametrize("compression", [".gz", ".zst"])
def test_a_compressed_html_page_is_read_whole_and_one_past_max_decompressed_bytes_is_rejected(tmp_path, compression):
    from pipeline.readers.html import HtmlConfig

    html = ("<html><body>" + "<p>A paragraph of prose that goes on. </p>" * 20000 + "<p>The end.</p></body></html>").encode()
    packed = gzip.compress(html) if compression == ".gz" else zstandard.ZstdCompressor().compress(html)
    path = tmp_path / f"page.html{compression}"
    path.write_bytes(packed)
    whole = list(read_file(str(path), path.name, ReaderConfig(), HtmlConfig(favour="recall")))
    assert whole[0]["_status"] == "kept" and whole[0]["text"].endswith("The end.")
    capped = list(read_file(str(path), path.name, ReaderConfig(max_decompressed_bytes=len(html) // 2)))
    assert statuses(capped) == [(1, "rejected", "decompressed_too_large")]


def warc_file(payloads: list[bytes], rtype: str = "conversion") -> bytes:
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    for i, payload in enumerate(payloads):
        record = writer.create_warc_record(f"https://x.org/{i}", rtype, payload=io.BytesIO(payload), length=len(payload),
                                           warc_content_type="text/plain")
        writer.write_record(record)
    return buf.getvalue()


def test_a_warc_file_past_max_decompressed_bytes_keeps_the_records_before_and_rejects_the_rest(tmp_path):
    path = tmp_path / "bomb.warc.gz"
    path.write_bytes(warc_file([b"first document", b"second document", b"\0" * (64 << 20), b"last"]))
    records = list(read_file(str(path), path.name, ReaderConfig(max_decompressed_bytes=1 << 20)))
    assert statuses(records) == [(1, "kept", None), (2, "kept", None), (3, "rejected", "decompressed_too_large")]


def test_a_wet_record_over_max_text_bytes_is_rejected_not_cut_and_the_next_is_kept(tmp_path):
    path = tmp_path / "big.wet.gz"
    path.write_bytes(warc_file([b"w" * 101, b"small document", b"w" * 100]))
    records = list(read_file(str(path), path.name, ReaderConfig(max_text_bytes=100)))
    assert statuses(records) == [(1, "rejected", "document_too_large"), (2, "kept", None), (3, "kept", None)]
    assert "max_text_bytes=100" in records[0]["_detail"] and records[0]["url"] == "https://x.org/0"


def test_a_parquet_row_with_invalid_utf8_is_rejected_alone_and_the_other_rows_are_kept(tmp_path):
    import pyarrow.parquet as pq

    texts = pa.array([b"good 1", b"good 2", b"bad \xff", b"good 3"], pa.binary()).view(pa.string())  # unvalidated
    path = tmp_path / "one-bad-row.parquet"
    pq.write_table(pa.table({"id": list("abcd"), "text": texts}), path)
    records = list(read_file(str(path), path.name, ReaderConfig()))
    assert statuses(records) == [(1, "kept", None), (2, "kept", None), (3, "rejected", "invalid_utf8"), (4, "kept", None)]
    assert records[2]["id"] is None and records[3]["text"] == "good 3"


def test_a_corrupt_parquet_row_group_rejects_each_of_its_rows_and_the_next_group_is_read(tmp_path):
    import pyarrow.parquet as pq

    table = pa.table({"id": [str(i) for i in range(6)], "text": [f"doc {i}" for i in range(6)]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=2, compression="none")
    data = bytearray(sink.getvalue())
    for c in range(2):  # overwrite the middle row group's pages with garbage
        col = pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata.row_group(1).column(c)
        start = col.dictionary_page_offset or col.data_page_offset
        data[start : start + col.total_compressed_size] = b"\xff" * col.total_compressed_size
    path = tmp_path / "bad-group.parquet"
    path.write_bytes(bytes(data))
    records = list(read_file(str(path), path.name, ReaderConfig()))
    assert statuses(records) == ([(1, "kept", None), (2, "kept", None), (3, "rejected", "invalid_parquet"),
                                  (4, "rejected", "invalid_parquet"), (5, "kept", None), (6, "kept", None)])
    assert "row group 1" in records[2]["_detail"]


def test_html_nested_deeper_than_max_html_depth_is_rejected_before_parsing():
    import time

    from pipeline.readers.html import HtmlConfig, page_record

    cfg = HtmlConfig()
    deep = ("<html><body>" + "<div>" * 100_000 + "<p>text</p>" + "</div>" * 100_000 + "</body></html>").encode()
    start = time.perf_counter()
    row = page_record(deep, "utf-8", cfg, "deep.html", 1)
    assert (row["_status"], row["_reason"]) == ("rejected", "html_too_deep")
    assert time.perf_counter() - start < 2 and "max_html_depth" in row["_detail"]


def test_html_at_max_html_depth_and_unclosed_optional_end_tags_are_extracted():
    from pipeline.readers.html import HtmlConfig, page_record

    cfg = HtmlConfig(max_html_depth=38, favour="recall")
    nested = "<html><body>" + "<div>" * 38 + "<p>deep text" + "</div>" * 38 + "</body></html>"
    paragraphs = "<html><body>" + "<p>one <br>line<li>item" * 500 + "</body></html>"
    for html in (nested, paragraphs):
        assert page_record(html.encode(), "utf-8", cfg, "ok.html", 1)["_status"] == "kept"
    too_deep = "<html><body>" + "<div>" * 39 + "<p>deep text" + "</div>" * 39 + "</body></html>"
    assert page_record(too_deep.encode(), "utf-8", cfg, "ok.html", 1)["_reason"] == "html_too_deep"


def _set_content_length(data: bytes, index: int, delta: int) -> bytes:
    import re

    m = list(re.finditer(rb"Content-Length: (\d+)", data))[index]
    return data[: m.start(1)] + str(int(m.group(1)) + delta).encode() + data[m.end(1) :]


def _plain_warc() -> bytes:
    return gzip.decompress(warc_file([b"first document", b"second document", b"third document"]))


def _warc_rows(data: bytes, name: str = "t.warc") -> list[dict]:
    from pipeline.readers.html import HtmlConfig
    from pipeline.readers.warc import read_warc

    return list(read_warc(io.BytesIO(data), name, HtmlConfig()))


def test_a_warc_record_whose_content_length_runs_into_the_next_is_rejected_and_the_next_is_read():
    records = _warc_rows(_set_content_length(_plain_warc(), 0, 40))
    assert statuses(records) == [(1, "rejected", "warc_corrupt"), (2, "kept", None), (3, "kept", None)]
    assert [r["text"] for r in records[1:]] == ["second document", "third document"]


def test_a_warc_record_whose_content_length_stops_short_is_rejected_not_cut():
    records = _warc_rows(_set_content_length(_plain_warc(), 0, -5))
    assert statuses(records) == [(1, "rejected", "warc_corrupt"), (2, "kept", None), (3, "kept", None)]


def test_garbage_between_warc_records_is_one_rejection_and_the_records_after_it_are_read():
    data = _plain_warc()
    second = data.index(b"WARC/1.", 10)
    records = _warc_rows(data[:second] + b"garbage\r\nmore garbage\r\n\r\n" + data[second:])
    assert statuses(records) == [(1, "kept", None), (2, "rejected", "warc_corrupt"), (3, "kept", None), (4, "kept", None)]
    assert records[-1]["text"] == "third document"


def test_a_corrupt_gzip_member_in_a_warc_loses_only_its_record():
    members = [warc_file([f"document number {i} ".encode() * 50]) for i in range(3)]
    broken = bytearray(members[1])
    broken[40:200] = b"\xff" * 160  # inside the deflate stream, after the gzip header
    records = _warc_rows(members[0] + bytes(broken) + members[2], "t.warc.gz")
    assert [r["_status"] for r in records] == ["kept", "rejected", "kept"]
    assert records[1]["_reason"] == "warc_corrupt" and records[2]["text"].startswith("document number 2")
