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
`warc_truncated`; a file the parser cannot continue (corrupt gzip member, garbage between records)
ends with one `warc_corrupt` row.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

from warcio.archiveiterator import ArchiveIterator
from warcio.limitreader import LimitReader
from warcio.statusandheaders import StatusAndHeadersParser

from pipeline.readers.html import HtmlConfig, charset_from_content_type, kept_record, page_record, with_fields
from pipeline.readers.records import ReaderConfig, rejected

SKIPPED_TYPES = frozenset({"warcinfo", "request", "metadata", "revisit", "continuation"})
HTML_TYPES = ("text/html", "application/xhtml+xml")
SNIFF_BYTES = 1024
READ_CHUNK = 1 << 16


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
    Content-Type says `application/http` carries one whatever its URI (e.g. `hard::name` in the corpus)."""
    if record.http_headers is None and "application/http" in (record.rec_headers.get_header("Content-Type") or ""):
        record.http_headers = StatusAndHeadersParser(["HTTP/1.0", "HTTP/1.1"], verify=False).parse(record.raw_stream)
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


def read_warc(stream: BinaryIO, file_label: str, cfg: HtmlConfig, reader_cfg: ReaderConfig | None = None) -> Iterator[dict]:
    """Documents of one WARC/WET file (gzip per record or plain); never raises on bad content."""
    reader_cfg = reader_cfg or ReaderConfig()
    archive = _Records(stream, no_record_parse=False, check_digests=False)
    records = iter(archive)
    line, row, declared = 0, None, 0
    while True:
        line += 1
        try:
            record = next(records)
        except StopIteration:
            already_reported = row is not None and row["line"] == line - 1 and row["_reason"] == "warc_truncated"
            if archive.cut_gzip and not already_reported:
                yield rejected(file_label, line, "warc_truncated", "file ends inside a gzip member", b"")
            return
        except Exception as e:  # warcio raises zlib/EOF/ArchiveLoadFailed/... on a damaged file; the file ends here
            yield rejected(file_label, line, "warc_corrupt", f"record {line}: {_error(e)}", b"")
            return
        if record.format != "warc":  # warcio falls back to ARC parsing on anything that is not WARC
            detail = f"record {line} is not a WARC record ({record.format})"
            yield rejected(file_label, line, "warc_corrupt", detail, b"")
            return
        declared += record.length or 0
        if declared > reader_cfg.max_decompressed_bytes:  # checked before the block is decompressed, even to skip it
            detail = f"records 1-{line} declare more than max_decompressed_bytes={reader_cfg.max_decompressed_bytes} bytes"
            yield rejected(file_label, line, "decompressed_too_large", detail, b"")
            return
        row = _document(record, line, cfg, reader_cfg, file_label)
        if row is not None:
            yield row
