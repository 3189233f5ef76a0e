"""HTML to main text: charset decoding and boilerplate-removing extraction, shared by the WARC and .html readers.

The extractor is a config choice because the two well-kept ones trade quality for speed differently;
docs/html-extraction.md has the measurements behind the default.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

from pipeline.readers.records import DecompressedTooLarge, kept, rejected

EXTRACTORS = ("resiliparse", "trafilatura")
FAVOUR = ("precision", "balanced", "recall")


@dataclass
class HtmlConfig:
    # "resiliparse" (fast, C++) or "trafilatura" (slower, keeps more of the article); see docs/html-extraction.md.
    extractor: str = "resiliparse"
    # "precision" drops doubtful blocks, "recall" keeps them. For resiliparse: "precision" is its
    # main-content heuristic alone, "balanced" falls back to the whole visible text when that heuristic
    # finds nothing, "recall" is always the whole visible text (WET-like).
    favour: str = "balanced"
    include_comments: bool = False  # keep the page's user-comment sections in the extracted text
    include_tables: bool = True  # keep the text of <table> elements; false drops it
    # Larger payloads are rejected as `html_too_large` without being parsed: multi-megabyte pages are
    # mostly inlined data, and one of them can stall an executor's parser.
    max_html_bytes: int = 4 * 1_048_576
    # A declared charset that leaves more than this share of U+FFFD (undecodable bytes) is not trusted;
    # a few stray bytes in an otherwise valid page are replaced rather than mis-decoding the whole page.
    max_bad_char_share: float = 0.01
    # Pages whose elements nest deeper than this (estimated from the tags) are rejected as `html_too_deep`
    # before parsing: parse and extraction time grow with the square of the depth (100k nested <div>: 99 s).
    # Corpus pages: median 17, deepest 411; 1024 levels parse and extract in well under a second.
    max_html_depth: int = 1024

    def __post_init__(self):
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"html.extractor must be one of {EXTRACTORS}, got {self.extractor!r}")
        if self.favour not in FAVOUR:
            raise ValueError(f"html.favour must be one of {FAVOUR}, got {self.favour!r}")


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_META_CHARSET = re.compile(rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
# Browsers (WHATWG) decode these labels as windows-1252; pages declaring them often use its extra characters.
_WHATWG_ALIASES = {"latin_1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252"}
META_SNIFF_BYTES = 4096


# Start and end tags of elements that nest: void ones and those whose end tag may be left out (<p>, <li>,
# ...) are not counted, so pages that rely on implied end tags are not mistaken for deep ones.
_FLAT = (
    "area base br col embed hr img input link meta param source track wbr keygen "
    "p li dt dd option optgroup tr td th thead tbody tfoot colgroup caption rb rt rtc rp html head body"
)
_NESTING_TAG = re.compile(r"<(/?)(?!(?:%s)(?![A-Za-z0-9]))[A-Za-z]" % "|".join(_FLAT.split()), re.I)


def nesting_depth(html: str) -> int:
    """Deepest element nesting, estimated from the tags alone in linear time (no tree is built): the
    running count of start minus end tags, where a stray end tag never takes it below zero."""
    tags = _NESTING_TAG.findall(html)
    if not tags:
        return 0
    level = np.cumsum(np.where(np.array(tags) == "/", -1, 1))
    return int((level - np.minimum(np.minimum.accumulate(level), 0)).max())


def charset_from_content_type(content_type: str | None) -> str | None:
    m = _HEADER_CHARSET.search(content_type or "")
    return m.group(1) if m else None


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return _WHATWG_ALIASES.get(name, name)


def _detect(data: bytes) -> str | None:
    from resiliparse.parse.encoding import detect_encoding

    return detect_encoding(data, html5_compatible=True)


def _charset_candidates(data: bytes, http_charset: str | None) -> Iterator[str | None]:
    """Declared charsets first; detection (the costly step) only runs if none of them decodes."""
    yield next((enc for bom, enc in _BOMS if data.startswith(bom)), None)
    yield http_charset
    m = _META_CHARSET.search(data[:META_SNIFF_BYTES])
    meta = m.group(1).decode("ascii") if m else None
    # A <meta> readable as ASCII cannot be in UTF-16: browsers read such pages as UTF-8 (WHATWG).
    yield "utf-8" if meta and meta.lower().startswith("utf-16") else meta
    yield _detect(data)
    yield "utf-8"
    yield "cp1252"


def decode_html(data: bytes, http_charset: str | None, max_bad_char_share: float = 0.01) -> tuple[str | None, str]:
    """(text, encoding used) or (None, what was tried).

    Order: BOM, HTTP header, <meta charset>, then detection, UTF-8 and windows-1252. A declared charset
    wins if it decodes with few errors, so a page with one stray byte is not re-detected as something else.
    """
    tried: list[str] = []
    for label in _charset_candidates(data, http_charset):
        codec = _codec(label)
        if codec is None or codec in tried:
            continue
        tried.append(codec)
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            text = data.decode(codec, errors="replace")
        except UnicodeError:  # a codec that cannot decode this at all (e.g. odd-length UTF-16)
            continue
        if text.count("\ufffd") <= max_bad_char_share * max(len(text), 1):
            return text, codec
    return None, "tried " + ", ".join(tried)


def extract_text(html: str, cfg: HtmlConfig, url: str | None = None) -> str | None:
    """Main text of one page (paragraphs on their own lines), or None when the extractor finds none."""
    if cfg.extractor == "trafilatura":
        import trafilatura

        text = trafilatura.extract(
            html,
            url=url,
            favor_precision=cfg.favour == "precision",
            favor_recall=cfg.favour == "recall",
            include_comments=cfg.include_comments,
            include_tables=cfg.include_tables,
            deduplicate=False,
            with_metadata=False,
        )
    else:
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        tree = HTMLTree.parse(html)
        options = dict(
            preserve_formatting=True,
            list_bullets=False,
            alt_texts=False,
            comments=cfg.include_comments,
            skip_elements=None if cfg.include_tables else ["table"],
        )
        text = extract_plain_text(tree, main_content=cfg.favour != "recall", **options)
        if not text.strip() and cfg.favour == "balanced":
            # The main-content heuristic finds nothing on ~1.4% of real pages that do have an article
            # (benchmark); their visible text is a better document than none.
            text = extract_plain_text(tree, main_content=False, **options)
    text = (text or "").strip()
    return text or None


def page_record(
    payload: bytes, http_charset: str | None, cfg: HtmlConfig, file_label: str, line: int, **fields
) -> dict:
    """Turn one HTML payload into a kept or rejected record; `fields` carries id/url/created."""

    def reject(reason: str, detail: str, raw: bytes = b"") -> dict:
        return with_fields(rejected(file_label, line, reason, detail, raw), fields)

    if len(payload) > cfg.max_html_bytes:
        return reject("html_too_large", f"{len(payload)} bytes > max_html_bytes={cfg.max_html_bytes}")
    html, encoding = decode_html(payload, http_charset, cfg.max_bad_char_share)
    if html is None:
        return reject("undecodable_html", encoding, payload)
    depth = nesting_depth(html)
    if depth > cfg.max_html_depth:
        return reject("html_too_deep", f"elements nest {depth} deep > max_html_depth={cfg.max_html_depth}", payload)
    try:
        text = extract_text(html, cfg, fields.get("url"))
    except Exception as e:  # a parser bug on one odd page must not end the file
        return reject("extraction_failed", f"{cfg.extractor}: {type(e).__name__}: {e}", payload)
    if text is None:
        return reject("no_text_extracted", f"{cfg.extractor} found no main text", payload)
    return kept_record(text, file_label, line, **fields)


def kept_record(text: str, file_label: str, line: int, id=None, url=None, created=None) -> dict:
    return kept(text, file_label, line, id=id, source="web", url=url, created=created)


def with_fields(record: dict, fields: dict) -> dict:
    """Keep id/url/created on rejections too, so a rejected page can be traced back to its record."""
    record.update({k: v for k, v in fields.items() if v is not None})
    record["source"] = "web"
    return record


def read_html(stream: BinaryIO, file_label: str, cfg: HtmlConfig) -> Iterator[dict]:
    """One .html/.htm file is one page: line 1, no id (the caller derives one), charset from the page itself."""
    parts, size = [], 0
    try:
        # Decompressed streams hand over a block per read, not all that was asked for.
        while size <= cfg.max_html_bytes and (part := stream.read(cfg.max_html_bytes + 1 - size)):
            parts.append(part)
            size += len(part)
    except DecompressedTooLarge as e:
        yield rejected(file_label, 1, "decompressed_too_large", str(e), b"")
        return
    except (OSError, EOFError, ValueError) as e:  # corrupt .html.gz, broken connection
        yield rejected(file_label, 1, "corrupt_stream", f"{type(e).__name__}: {e}", b"")
        return
    payload = b"".join(parts)
    yield page_record(payload, None, cfg, file_label, 1)
