"""JSON-lines input: one document per line, every bad line turned into a rejection that names file and line."""
from __future__ import annotations

import json
from typing import BinaryIO, Iterator

from pipeline.readers.records import EXCERPT_CHARS, DecompressedTooLarge, ReaderConfig, rejected, record_from_object

CHUNK = 1 << 20
EXCERPT_BYTES = EXCERPT_CHARS * 4  # enough UTF-8 for an excerpt of a line too large to keep


def iter_lines(stream: BinaryIO, max_line_bytes: int,
               first_line: int = 1) -> Iterator[tuple[int, bytes, str | None, str | None]]:
    """Yield (line number, raw bytes, None, None) per line, or (line number, excerpt bytes, reason, detail)
    for a line that cannot be read: `line_too_large` as soon as a line passes `max_line_bytes` (the rest of
    it is skipped unheld, so a huge line costs linear time and bounded memory), or once, last, for the rest
    of the file: `corrupt_stream` if the stream breaks, `decompressed_too_large` past that cap.

    Splits on b"\\n" ourselves so one bad byte sequence never desynchronises the rest of the file, and a
    corrupt compressed stream ends the file with a rejection instead of a crash.
    """
    lineno = first_line - 1  # a byte range of a file starts at its own line (pipeline/readers/splits.py)
    parts: list[bytes] = []  # the current line's pieces, while it is within the limit
    size = 0  # bytes of the current line so far
    # read1 hands over what is already decompressed, so a stream that breaks loses no good lines before it.
    read = getattr(stream, "read1", stream.read)
    while True:
        skipping = size > max_line_bytes  # the line being skipped already has its row
        try:
            chunk = read(CHUNK)
        except DecompressedTooLarge as e:
            yield lineno + 1 + skipping, b"", "decompressed_too_large", str(e)
            return
        except (OSError, EOFError, ValueError) as e:  # truncated gzip/zstd member, broken connection
            yield lineno + 1 + skipping, b"", "corrupt_stream", f"{type(e).__name__}: {e}"
            return
        if not chunk:
            break
        start = 0
        while start <= len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if size <= max_line_bytes:
                parts.append(piece)
                if size + len(piece) > max_line_bytes:
                    head = b"".join(parts)[:EXCERPT_BYTES]
                    yield lineno + 1, head, "line_too_large", f"more than max_line_bytes={max_line_bytes} bytes"
                    parts = []
            size += len(piece)
            if end < 0:
                break
            lineno += 1
            if size <= max_line_bytes:
                yield lineno, b"".join(parts), None, None
            parts, size, start = [], 0, end + 1
    if size and size <= max_line_bytes:
        yield lineno + 1, b"".join(parts), None, None


def read_jsonl(stream: BinaryIO, file_label: str, cfg: ReaderConfig, first_line: int = 1) -> Iterator[dict]:
    for lineno, raw, reason, detail in iter_lines(stream, cfg.max_line_bytes, first_line):
        if reason is not None:
            yield rejected(file_label, lineno, reason, detail, raw)
            if reason == "line_too_large":
                continue
            return
        if not raw.strip():
            yield rejected(file_label, lineno, "empty_line", "blank line", raw)
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield rejected(file_label, lineno, "invalid_utf8", f"invalid UTF-8 at byte {e.start}", raw)
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            yield rejected(file_label, lineno, "invalid_json", f"{e.msg} at column {e.colno}", raw)
            continue
        yield record_from_object(obj, file_label, lineno, cfg, raw)
