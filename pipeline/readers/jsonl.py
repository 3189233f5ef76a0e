"""JSON-lines input: one document per line, every bad line turned into a rejection that names file and line."""
from __future__ import annotations

import json
from typing import BinaryIO, Iterator

from pipeline.readers.records import ReaderConfig, rejected, record_from_object

CHUNK = 1 << 20


def iter_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None, str | None]]:
    """Yield (line number, raw bytes, None), or (line number, None, error) once if the stream breaks.

    Splits on b"\\n" ourselves so one bad byte sequence never desynchronises the rest of the file, and a
    corrupt compressed stream ends the file with a rejection instead of a crash.
    """
    lineno = 0
    pending = b""
    # read1 hands over what is already decompressed, so a stream that breaks loses no good lines before it.
    read = getattr(stream, "read1", stream.read)
    while True:
        try:
            chunk = read(CHUNK)
        except (OSError, EOFError, ValueError) as e:  # truncated gzip/zstd member, broken connection
            yield lineno + 1, None, f"{type(e).__name__}: {e}"
            return
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            lineno += 1
            yield lineno, line, None
    if pending:
        yield lineno + 1, pending, None


def read_jsonl(stream: BinaryIO, file_label: str, cfg: ReaderConfig) -> Iterator[dict]:
    for lineno, raw, error in iter_lines(stream):
        if error is not None:
            yield rejected(file_label, lineno, "corrupt_stream", error, b"")
            return
        if not raw.strip():
            yield rejected(file_label, lineno, "empty_line", "blank line", raw)
            continue
        if len(raw) > cfg.max_line_bytes:
            yield rejected(file_label, lineno, "line_too_large", f"{len(raw)} bytes > max_line_bytes={cfg.max_line_bytes}", raw)
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
