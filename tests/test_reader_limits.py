"""Reader limits and recovery: bad strings in any field, long lines, gzip bombs, oversized WARC records,
broken Parquet rows and WARC records, deeply nested HTML. Each is one rejection with a reason, never a
crash, a silent cut or a lost neighbour."""
from __future__ import annotations

import io
import json

import pyarrow as pa

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
