"""The record every reader yields, and the checks shared by all input formats."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pyarrow as pa

EXCERPT_CHARS = 200

# What readers hand to the clean stage: a document plus where it came from and whether it is usable.
RAW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("url", pa.string()),
        ("created", pa.string()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("_status", pa.string()),
        ("_reason", pa.string()),
        ("_detail", pa.string()),
        ("excerpt", pa.string()),
    ]
)


@dataclass
class ReaderConfig:
    text_field: str = "text"  # JSON/Parquet key of the document text; a record without it is rejected `missing_text`
    id_field: str = "id"  # JSON/Parquet key of the document id; a missing or empty one becomes a hash of file and line
    # A record whose text is larger than this is rejected as `document_too_large` rather than carried
    # through every stage (a whole book in one line is a packaging error more often than a document).
    max_text_bytes: int = 1_048_576
    # Lines longer than this are not even parsed.
    max_line_bytes: int = 64 * 1_048_576
    # A compressed file (.gz/.zst, and WARC records together) that decompresses to more than this ends
    # with one `decompressed_too_large` rejection for the rest of it: a gzip bomb (up to ~1000:1) would
    # otherwise hold a task for hours and fill its disk. 16 GiB is about three times a Common Crawl WARC
    # file uncompressed, the largest input we expect, and about a minute of gzip decompression on one core.
    max_decompressed_bytes: int = 16 << 30
    default_source: str = ""  # `source` of JSON/Parquet records that have none (empty: null); web pages get "web"
    # Bytes of input one clean task reads (pipeline/readers/splits.py; a compressed or Parquet file counts 4x
    # its size): smaller files are grouped up to it, a larger plain JSONL or WARC file is cut into ranges of it
    # aligned to lines or records, a larger Parquet file into ranges of its row groups, a compressed one is
    # read whole. So parallelism follows the data's size, not its file layout; the output depends on it,
    # never on the cores. 16 MiB is about 8 CPU-seconds of the pipeline's work per task: 100 MB of text already makes six tasks.
    # Raise it on large inputs (256 MiB for terabytes, docs/SCALE.md): fewer tasks and parts.
    split_bytes: int = 16 << 20


class DecompressedTooLarge(Exception):
    """A stream passed ReaderConfig.max_decompressed_bytes; the reader rejects the rest of the file."""


def derived_id(file_label: str, line: int) -> str:
    """Deterministic id for a record that has none: the same file and line always give the same id."""
    return hashlib.blake2b(f"{file_label}:{line}".encode(), digest_size=8).hexdigest()


def printable(s: str) -> str:
    """`s` with code points UTF-8 cannot hold (lone surrogates) written as `\\udXXX`, so a rejection that
    quotes bad input still converts to Arrow and names what was wrong."""
    return s.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _excerpt(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return raw[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    return printable(raw[:EXCERPT_CHARS])[:EXCERPT_CHARS]


def rejected(file_label: str, line: int, reason: str, detail: str, raw: bytes | str, id: str | None = None) -> dict:
    return {
        "id": id,
        "text": None,
        "source": None,
        "url": None,
        "created": None,
        "file": file_label,
        "line": line,
        "_status": "rejected",
        "_reason": reason,
        "_detail": printable(detail),
        "excerpt": _excerpt(raw),
    }


def kept(text: str, file_label: str, line: int, id=None, source=None, url=None, created=None) -> dict:
    """A usable document and where it came from."""
    return {
        "id": id,
        "text": text,
        "source": source,
        "url": url,
        "created": created,
        "file": file_label,
        "line": line,
        "_status": "kept",
        "_reason": None,
        "_detail": None,
        "excerpt": None,
    }


def _opt_str(value) -> str | None:
    return None if value is None else str(value)


def record_from_object(obj, file_label: str, line: int, cfg: ReaderConfig, raw: bytes | str = b"") -> dict:
    """Validate one parsed JSON/Parquet record and turn it into a kept or rejected row."""
    if not isinstance(obj, dict):
        return rejected(file_label, line, "not_an_object", f"expected a JSON object, got {type(obj).__name__}", raw)
    rid = obj.get(cfg.id_field)
    rid = derived_id(file_label, line) if rid is None or rid == "" else str(rid)
    fields = {
        "source": _opt_str(obj.get("source")) or cfg.default_source or None,
        "url": _opt_str(obj.get("url")),
        "created": _opt_str(obj.get("created")),
    }
    # Arrow (and every later stage) needs UTF-8: a lone surrogate from a \ud800-style escape in any field
    # would otherwise fail the whole task far from this line.
    bad = [name for name, v in {cfg.id_field: rid, **fields}.items() if v is not None and not _encodable(v)]
    if bad:
        detail = f"{', '.join(map(repr, bad))} hold lone surrogate code points"
        return rejected(file_label, line, "invalid_unicode", detail, raw, None if cfg.id_field in bad else rid)
    if cfg.text_field not in obj:
        return rejected(file_label, line, "missing_text", f"no {cfg.text_field!r} key", raw, rid)
    text = obj[cfg.text_field]
    if text is None:
        return rejected(file_label, line, "null_text", f"{cfg.text_field!r} is null", raw, rid)
    if not isinstance(text, str):
        return rejected(file_label, line, "text_not_a_string", f"{cfg.text_field!r} is {type(text).__name__}", raw, rid)
    n = len(text.encode("utf-8", errors="surrogatepass"))
    if n > cfg.max_text_bytes:
        return rejected(file_label, line, "document_too_large", f"{n} bytes > max_text_bytes={cfg.max_text_bytes}", raw, rid)
    if not _encodable(text):
        return rejected(file_label, line, "invalid_unicode", "text holds lone surrogate code points", raw, rid)
    return kept(text, file_label, line, id=rid, **fields)
