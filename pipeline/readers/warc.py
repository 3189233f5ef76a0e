"""WARC / WET input: one document per HTML `response` (or `resource`) record and per WET `conversion` record.

Record handling (docs/html-extraction.md):
- `response`: HTTP status must be 200 and the payload HTML (Content-Type text/html or xhtml, or sniffed
  when the header is missing); chunked transfer and gzip/deflate/br content encoding are undone.
- `resource`: the stored file itself (no HTTP header); HTML ones are extracted like responses.
- `conversion`: WET plain text, already extracted: kept as UTF-8 text.
- `warcinfo`, `request`, `metadata`, `revisit` (a pointer to an earlier payload) and `continuation`
  are not documents: skipped without a row.
`line` is the 1-based ordinal of the record among all records of the file, skipped ones included, so
it locates the record with any WARC tool. A payload shorter than its declared length is
`warc_truncated`; a stretch the parser cannot read (corrupt gzip member, garbage between records, a
Content-Length that does not end at a record boundary) is one `warc_corrupt` row, and reading resumes at
the next record start.
"""
from __future__ import annotations

import io
from typing import BinaryIO, Callable, Iterator, NamedTuple

from warcio.archiveiterator import ArchiveIterator
from warcio.limitreader import LimitReader
from warcio.statusandheaders import StatusAndHeadersParser

from pipeline.readers import Tally
from pipeline.readers.html import HtmlConfig, charset_from_content_type, kept_record, page_record, with_fields
from pipeline.readers.records import ReaderConfig, rejected

SKIPPED_TYPES = frozenset({"warcinfo", "request", "metadata", "revisit", "continuation"})
HTML_TYPES = ("text/html", "application/xhtml+xml")
SNIFF_BYTES = 1024
READ_CHUNK = 1 << 16
# How far back parsing can restart after a broken record: the record and the next one, unless they are larger.
MAX_REPLAY_BYTES = 64 << 20


def _is_html(content_type: str | None, payload: bytes) -> bool:
    if content_type:
        return content_type.split(";")[0].strip().lower() in HTML_TYPES
    head = payload[:SNIFF_BYTES].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _date(warc_date: str | None) -> str | None:
    return warc_date[:10] if warc_date and len(warc_date) >= 10 and warc_date[4] == "-" else None


def _error(e: Exception) -> str:
    """Exception as a short printable detail (warcio quotes the raw bytes it choked on)."""
    return f"{type(e).__name__}: {ascii(str(e))[1:-1][:160]}"


def _drain(stream) -> None:
    while stream.read(READ_CHUNK):
        pass


def _truncation(record) -> str | None:
    """Why the stored block is shorter than it says, or None. Call after the payload has been read."""
    raw = record.raw_stream
    _drain(raw)
    if isinstance(raw, LimitReader) and raw.limit > 0:
        return f"file ends {raw.limit} bytes before the record's Content-Length"
    http = record.http_headers
    if http is None or record.rec_headers.get_header("WARC-Truncated"):
        return None
    declared = http.get_header("Content-Length")
    if not declared or not declared.isdigit() or http.get_header("Transfer-Encoding"):
        return None
    body = raw.tell() - http.total_len if isinstance(raw, LimitReader) else None
    if body is not None and body < int(declared):
        return f"HTTP body has {body} of {declared} bytes"
    return None


def http_headers(record):
    """The HTTP header of a response record. warcio parses it only for http(s) target URIs; a record whose
    Content-Type says `application/http` carries one whatever its URI (e.g. `hard::name` in the corpus),
    unless its block is empty."""
    if record.http_headers is None and "application/http" in (record.rec_headers.get_header("Content-Type") or ""):
        try:
            record.http_headers = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1"], verify=False).parse(record.raw_stream)
        except EOFError:  # nothing to parse
            return None
    return record.http_headers


def _document(record, line: int, cfg: HtmlConfig, reader_cfg: ReaderConfig, file_label: str) -> dict | None:
    """The row for one record, or None for record types that are not documents."""
    rtype = record.rec_type
    if rtype in SKIPPED_TYPES:
        return None
    headers = record.rec_headers
    fields = {
        "id": headers.get_header("WARC-Record-ID"),
        "url": headers.get_header("WARC-Target-URI"),
        "created": _date(headers.get_header("WARC-Date")),
    }

    def reject(reason: str, detail: str, raw: bytes = b"") -> dict:
        return with_fields(rejected(file_label, line, reason, detail, raw), fields)

    if rtype not in ("response", "resource", "conversion"):
        return reject("unknown_record_type", f"WARC-Type {rtype!r}")
    http = http_headers(record) if rtype == "response" else None
    if rtype == "response" and http is None:
        return reject("not_html", "response record without an HTTP header")
    if http is not None and http.get_statuscode() != "200":
        return reject("http_status_not_200", f"HTTP status {http.get_statuscode()}")

    # WET text is a document like a JSON one and has its limit; HTML is limited before extraction.
    limit = reader_cfg.max_text_bytes if rtype == "conversion" else cfg.max_html_bytes
    try:
        payload = record.content_stream().read(limit + 1)
        broken = _truncation(record)
    except Exception as e:  # zlib/brotli/chunking errors from a damaged payload; the parser resyncs or stops next
        return reject("warc_corrupt", f"payload: {_error(e)}")
    if broken:
        return reject("warc_truncated", broken, payload)
    if rtype == "conversion":
        if len(payload) > limit:
            return reject("document_too_large", f"more than max_text_bytes={limit} bytes", payload)
        text = payload.decode("utf-8", errors="replace").strip()
        if not text:
            return reject("no_text_extracted", "empty conversion record")
        return kept_record(text, file_label, line, **fields)
    content_type = (http or headers).get_header("Content-Type")
    if not _is_html(content_type, payload):
        return reject("not_html", f"Content-Type {content_type!r}")
    return page_record(payload, charset_from_content_type(content_type), cfg, file_label, line, **fields)


class _Records(ArchiveIterator):
    """warcio's iterator, remembering whether the last gzip member was complete: on a file cut inside a
    member warcio just stops, and the lost records would go unnoticed."""

    cut_gzip = False

    def close(self):
        decompressor = self.reader.decompressor if self.reader else None
        self.cut_gzip = decompressor is not None and not decompressor.eof
        super().close()


class _Replayable:
    """The input stream, holding what was read since the last `release`, so parsing can restart at any
    offset after it (the stream itself may not seek)."""

    def __init__(self, raw):
        self._raw, self._base, self._buf = raw, 0, bytearray()

    def _fill(self) -> bool:
        data = self._raw.read(READ_CHUNK)
        self._buf += data
        return bool(data)

    def release(self, offset: int) -> None:
        """Forget the bytes before `offset`."""
        if offset > self._base:
            del self._buf[: offset - self._base]
            self._base = offset

    def read_at(self, offset: int, n: int) -> bytes:
        while offset + n > self._base + len(self._buf) and self._fill():
            pass
        start = max(offset - self._base, 0)
        return bytes(self._buf[start : start + n])

    def find(self, pattern: bytes, offset: int) -> int | None:
        """Absolute offset of the first `pattern` at or after `offset`, or None."""
        searched = max(offset, self._base)
        while True:
            at = self._buf.find(pattern, searched - self._base)
            if at >= 0:
                return self._base + at
            searched = max(searched, self._base + len(self._buf) - len(pattern) + 1)
            self.release(searched)  # a long damaged stretch is searched, not held
            if not self._fill():
                return None


class _View(io.RawIOBase):
    """A tellable stream over a _Replayable from `offset` on, so warcio's offsets are the file's."""

    def __init__(self, source: _Replayable, offset: int):
        self._source, self._pos = source, offset

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        data = self._source.read_at(self._pos, n if n >= 0 else READ_CHUNK)
        self._pos += len(data)
        self._source.release(self._pos - MAX_REPLAY_BYTES)
        return data

    read1 = read


class RecordStart(NamedTuple):
    """Where a record begins in a plain WARC file, as a whole-file parse reaches it."""

    offset: int
    line: int  # its ordinal in the file (1-based)
    declared: int  # block bytes the records before it declare (the file's max_decompressed_bytes budget)


def record_starts(stream: BinaryIO, bounds: list[int], size: int, reader_cfg: ReaderConfig | None = None) -> list[RecordStart]:
    """For each of the sorted `bounds`, the first record at or after it that a whole-file parse reaches
    cleanly (the record before it framed right), or the end of the file (`size`) past the last one: where a
    plain WARC file's byte ranges start, so that each range holds the whole file's records and numbers.
    One sequential pass that makes no documents."""
    found: list[RecordStart] = []

    def seen(at: RecordStart) -> None:
        while len(found) < len(bounds) and at.offset >= bounds[len(found)]:
            found.append(at)

    for _ in read_warc(stream, "", HtmlConfig(), reader_cfg, on_record=seen):
        pass
    return found + [RecordStart(size, 0, 0)] * (len(bounds) - len(found))


def _archive(source: _Replayable, offset: int) -> tuple[_Records, Iterator]:
    archive = _Records(_View(source, offset), no_record_parse=False, check_digests=False)
    return archive, iter(archive)


def read_warc(stream: BinaryIO, file_label: str, cfg: HtmlConfig, reader_cfg: ReaderConfig | None = None,
              start: "RecordStart | None" = None, stop: int | None = None,
              on_record: Callable[["RecordStart"], None] | None = None, tally: Tally | None = None) -> Iterator[dict]:
    """Documents of one WARC/WET file (gzip per record or plain); never raises on bad content.

    A record's row is held back until the next record is parsed, since a Content-Length that does not end
    at a record boundary (warcio warns and reads on) shows only there. A broken record is rejected and
    parsing restarts at the next record start after it (a gzip member, or a `WARC/1.` line).

    A byte range of a plain file: `stream` positioned at `start` (a clean record start from `record_starts`,
    with the records and declared bytes before it), and `stop` the range's length: the record starting
    there is parsed (it shows whether the last one was framed right) but belongs to the next range.
    `on_record` (for `record_starts`) is called at every record reached cleanly, and no document is made.

    `tally` counts what the framing finds, apart from the rows made of it: each record warcio reaches and
    each stretch it cannot read (what `line` numbers), less the records of a type that is no document
    (warcinfo, request, ...) once the next record shows they were framed right. So a record whose row
    went missing, a document the parser took for no document included, leaves the count above the rows.
    """
    reader_cfg, tally = reader_cfg or ReaderConfig(), tally or Tally()
    source = _Replayable(stream)
    gz = source.read_at(0, 2) == b"\x1f\x8b"
    archive, records = _archive(source, 0)
    line, declared, last = (start.line - 1, start.declared, None) if start else (0, 0, None)
    # The last record's row (None: no document), its offset, and whether its type is a document's.
    pending: tuple[dict | None, int, bool] | None = None
    while True:
        line += 1
        warnings, record, failure = archive.err_count, None, None
        try:
            record = next(records)
        except StopIteration:
            pass
        except Exception as e:  # warcio raises zlib/EOF/ArchiveLoadFailed/... on a damaged record
            failure = f"record {line}: {_error(e)}"
        if record is not None and record.format != "warc":  # warcio falls back to ARC on anything not WARC
            failure = f"record {line} is not a WARC record ({record.format})"
        misframed = archive.err_count > warnings
        # The record before is to blame: its Content-Length is wrong, or it broke after its payload.
        blamed = pending is not None and (misframed or (failure and archive.offset == pending[1]))
        if pending is not None and not blamed:
            row, _, document = pending
            if row is not None:
                yield (last := row)
            elif not document:
                tally.units -= 1  # framed right and no document: it has no row
        if blamed:
            row, broken_at, _ = pending
            line -= 1
            if row is not None and row["_status"] == "rejected":  # its own reason says more
                yield row
            else:
                detail = failure if not misframed else f"record {line}: Content-Length does not end at a record boundary"
                fields = {k: row[k] for k in ("id", "url", "created")} if row else {}
                yield with_fields(rejected(file_label, line, "warc_corrupt", detail, b""), fields)
        elif failure:
            broken_at = archive.offset
            tally.units += 1
            yield rejected(file_label, line, "warc_corrupt", failure, b"")
        else:
            if stop is not None and record is not None and archive.offset >= stop:
                return
            if record is None:
                reported = last is not None and last["line"] == line - 1 and last["_reason"] == "warc_truncated"
                if archive.cut_gzip and not reported:
                    tally.units += 1
                    yield rejected(file_label, line, "warc_truncated", "file ends inside a gzip member", b"")
                return
            source.release(archive.offset)
            tally.units += 1
            if on_record is not None:
                on_record(RecordStart(archive.offset, line, declared))
            declared += record.length or 0
            if declared > reader_cfg.max_decompressed_bytes:  # checked before the block is decompressed, even to skip it
                detail = f"records 1-{line} declare more than max_decompressed_bytes={reader_cfg.max_decompressed_bytes} bytes"
                yield rejected(file_label, line, "decompressed_too_large", detail, b"")
                return
            row = None if on_record is not None else _document(record, line, cfg, reader_cfg, file_label)
            pending = (row, archive.offset, record.rec_type not in SKIPPED_TYPES)
            continue
        pending = None
        restart = source.find(b"\x1f\x8b\x08" if gz else b"\nWARC/1.", broken_at + 1)
        if restart is None or (stop is not None and restart + (not gz) >= stop):
            return
        archive, records = _archive(source, restart + (not gz))
