"""Input formats. `read_file` picks a reader from the file name and yields record dicts (see records.py)."""
from __future__ import annotations

import gzip
import io
from typing import Iterator

import pyarrow as pa

from pipeline import storage
from pipeline.readers.records import RAW_SCHEMA, DecompressedTooLarge, ReaderConfig, derived_id, rejected

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
WARC_SUFFIXES = (".warc", ".wet")
HTML_SUFFIXES = (".html", ".htm")
PARQUET_SUFFIX = ".parquet"
COMPRESSIONS = ("", ".gz", ".zst")
PATTERNS = (
    tuple(f"*{s}{c}" for s in JSONL_SUFFIXES + HTML_SUFFIXES for c in COMPRESSIONS)
    + tuple(f"*{s}{c}" for s in WARC_SUFFIXES for c in ("", ".gz"))  # warc.gz is gzip per record
    + (f"*{PARQUET_SUFFIX}",)
)


def _split_name(name: str) -> tuple[str, str]:
    """('docs.jsonl.gz') -> ('.jsonl', '.gz')"""
    lower = name.lower()
    compression = next((c for c in (".gz", ".zst") if lower.endswith(c)), "")
    stem = lower[: len(lower) - len(compression)] if compression else lower
    fmt = next((s for s in JSONL_SUFFIXES + WARC_SUFFIXES + HTML_SUFFIXES + (PARQUET_SUFFIX,) if stem.endswith(s)), "")
    return fmt, compression


class _ZstdFrames(io.RawIOBase):
    """Concatenated zstd frames; a stream that ends inside a frame raises EOFError (zstandard's own
    stream_reader reports a clean end there, which would lose the rest of the file silently)."""

    def __init__(self, raw):
        import zstandard

        self._raw, self._zstd = raw, zstandard.ZstdDecompressor()
        self._frame, self._in_frame = self._zstd.decompressobj(), False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while True:
            data = self._raw.read(1 << 16)
            if not data:
                if self._in_frame:
                    raise EOFError("zstd stream ends inside a frame (truncated file)")
                return b""
            out = []
            while data:
                self._in_frame = True
                out.append(self._frame.decompress(data))
                data = b""
                if self._frame.eof:
                    data = self._frame.unused_data
                    self._frame, self._in_frame = self._zstd.decompressobj(), False
            if any(out):
                return b"".join(out)

    read1 = read


class Tally:
    """What a reader read, counted apart from the rows it yields, so that a reader losing records shows as
    counts that do not reconcile: a JSONL stream's lines (`LineCount`), the rows of the Parquet row groups
    read (from the footer), the records a WARC file's framing finds (each record header and each stretch it
    cannot read, less the warcinfo, request, ... records that are no documents; `warc.read_warc`), and one
    page per HTML file."""

    def __init__(self):
        self.units = 0


class LineCount(io.RawIOBase):
    """A byte stream passed through as it is, counting its lines: newlines, plus one for an unterminated
    last line or for a stream that broke (the JSONL reader's one row for the unreadable rest)."""

    def __init__(self, inner):
        self._read = getattr(inner, "read1", inner.read)
        self.newlines, self.tail, self.broken = 0, False, False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._read(n)
        except Exception:
            self.broken = True
            raise
        if data:
            self.newlines += data.count(b"\n")
            self.tail = not data.endswith(b"\n")
        return data

    read1 = read

    @property
    def lines(self) -> int:
        return self.newlines + (self.tail or self.broken)


class _Capped(io.RawIOBase):
    """A decompressed stream that hands over its first `limit` bytes, then raises DecompressedTooLarge."""

    def __init__(self, inner, limit: int):
        self._left, self._limit = limit, limit
        self._read = getattr(inner, "read1", inner.read)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._read(n if 0 <= n <= self._left else self._left + 1)
        if len(data) > self._left:  # _ZstdFrames hands over whole decompressed blocks whatever n is
            data, self._read = data[: self._left], self._refuse
            if not data:
                self._refuse()
        self._left -= len(data)
        return data

    def _refuse(self, n: int = -1) -> bytes:
        raise DecompressedTooLarge(f"more than max_decompressed_bytes={self._limit} bytes after decompression")

    read1 = read


def _decompressed(stream, compression: str, max_bytes: int):
    if compression == ".gz":
        return _Capped(gzip.GzipFile(fileobj=stream, mode="rb"), max_bytes)
    if compression == ".zst":
        return _Capped(_ZstdFrames(stream), max_bytes)
    return stream


def read_file(uri: str, file_label: str, cfg: ReaderConfig, html_cfg=None, tally: Tally | None = None) -> Iterator[dict]:
    """Every record of one input file, kept or rejected; never raises on bad content. `tally` counts what
    was read (see Tally)."""
    tally = tally or Tally()
    if html_cfg is None:
        from pipeline.readers.html import HtmlConfig

        html_cfg = HtmlConfig()
    fmt, compression = _split_name(uri)
    if fmt == PARQUET_SUFFIX:
        from pipeline.readers.parquet import read_parquet

        fs, path = storage.resolve(uri)
        with fs.open_input_file(path) as f:
            yield from read_parquet(f, file_label, cfg, tally=tally)
        return
    with storage.open_input(uri) as raw:
        stream = _decompressed(raw, "" if fmt in WARC_SUFFIXES else compression, cfg.max_decompressed_bytes)
        if fmt in JSONL_SUFFIXES:
            from pipeline.readers.jsonl import read_jsonl

            lines = LineCount(stream)
            yield from read_jsonl(lines, file_label, cfg)
            tally.units += lines.lines
        elif fmt in WARC_SUFFIXES:
            from pipeline.readers.warc import read_warc

            yield from _complete(read_warc(stream, file_label, html_cfg, cfg, tally=tally), file_label)
        elif fmt in HTML_SUFFIXES:
            from pipeline.readers.html import read_html

            tally.units += 1  # a file is one page
            yield from _complete(read_html(stream, file_label, html_cfg), file_label)
        else:
            tally.units += 1
            yield rejected(file_label, 0, "unknown_format", f"no reader for {uri}", b"")


def read_piece(piece, cfg: ReaderConfig, html_cfg=None, tally: Tally | None = None) -> Iterator[dict]:
    """Every record of one piece of a split (pipeline/readers/splits.py): a whole file, the lines that start
    in a byte range of a plain JSONL file, the records of a plain WARC file's range, or the row groups of a
    Parquet file centred in it, numbered as in the whole file."""
    tally = tally or Tally()
    if not piece.ranged:
        yield from read_file(piece.uri, piece.label, cfg, html_cfg, tally)
        return
    fs, path = storage.resolve(piece.uri)
    with fs.open_input_file(path) as f:
        fmt = _split_name(piece.uri)[0]
        if fmt == PARQUET_SUFFIX:
            from pipeline.readers.parquet import read_parquet

            yield from read_parquet(f, piece.label, cfg, (piece.start, piece.end), tally)
            return
        if fmt in WARC_SUFFIXES:
            if piece.start >= piece.end:  # no record starts in it: one before it runs through it
                return
            from pipeline.readers.html import HtmlConfig
            from pipeline.readers.warc import RecordStart, read_warc

            f.seek(piece.start)
            start = RecordStart(piece.start, piece.records + 1, piece.declared)
            yield from _complete(read_warc(f, piece.label, html_cfg or HtmlConfig(), cfg, start,
                                           stop=piece.end - piece.start, tally=tally), piece.label)
            return
        from pipeline.readers.jsonl import read_jsonl
        from pipeline.readers.splits import RangeStream

        stream = RangeStream(f, piece.start, piece.end, piece.newlines)
        lines = LineCount(stream)
        yield from read_jsonl(lines, piece.label, cfg, stream.first_line)
        tally.units += lines.lines


def _complete(records: Iterator[dict], file_label: str) -> Iterator[dict]:
    """Give web records the same columns and id rule as JSON ones."""
    for r in records:
        r.setdefault("file", file_label)
        r.setdefault("excerpt", None)
        if r.get("id") is None and r["_status"] == "kept":
            r["id"] = derived_id(file_label, r["line"])
        yield r


def to_batches(records: Iterator[dict], max_rows: int = 2048, max_bytes: int = 32 << 20) -> Iterator[pa.RecordBatch]:
    """Group records into Arrow batches bounded in rows and text bytes (so a few huge documents cannot
    blow up executor memory)."""
    rows: list[dict] = []
    size = 0
    for r in records:
        rows.append(r)
        size += len(r["text"] or "")
        if len(rows) >= max_rows or size >= max_bytes:
            yield pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)
            rows, size = [], 0
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=RAW_SCHEMA)
