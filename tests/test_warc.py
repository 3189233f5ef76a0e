"""WARC/WET and single-page HTML input for the clean stage (pipeline/readers/warc.py, html.py)."""
from __future__ import annotations

import gzip
import io
import json
import re
from collections import Counter

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.readers.html import HtmlConfig, decode_html, read_html
from pipeline.readers.warc import read_warc

CFG = HtmlConfig()
RUSSIAN = (
    "Москва - столица России, крупнейший по численности населения город страны. "
    "Город расположен на реке Москве в центре Восточно-Европейской равнины."
)
FRENCH = "Les élèves ont été très heureux de découvrir la forêt près du château, où l'été dure longtemps."


def page(title: str, body: str, head: str = "") -> str:
    nav = "<nav><ul><li><a href='/'>Home</a></li><li><a href='/about'>About</a></li></ul></nav>"
    return (
        f"<!DOCTYPE html><html><head>{head}<title>{title}</title></head><body>{nav}"
        f"<article><h1>{title}</h1><p>{body}</p><p>{body}</p></article>"
        "<footer><p>Copyright 2024</p></footer></body></html>"
    )


def write_warc(records, gz: bool = True) -> bytes:
    """records: (warc type, uri, payload bytes, http header list or None, warc content type or None)."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gz)
    for rtype, uri, payload, http, content_type in records:
        kwargs = {}
        if http is not None:
            status, headers = http
            is_request = rtype == "request"
            kwargs["http_headers"] = StatusAndHeaders(status, headers, protocol="" if is_request else "HTTP/1.1",
                                                      is_http_request=is_request)
        if content_type:
            kwargs["warc_content_type"] = content_type
        writer.write_record(writer.create_warc_record(uri, rtype, payload=io.BytesIO(payload), length=len(payload), **kwargs))
    return buf.getvalue()


def rows(data: bytes, cfg: HtmlConfig = CFG) -> list[dict]:
    return list(read_warc(io.BytesIO(data), "test.warc", cfg))


def html_response(uri: str, html: bytes, content_type: str = "text/html", status: str = "200 OK", extra=()):
    return ("response", uri, html, (status, [("Content-Type", content_type), *extra]), None)


# --- the four warcio sample files in the shared corpus ---------------------------------------------------


def sample(shared_corpus, name: str) -> list[dict]:
    with open(shared_corpus / "raw/web/samples" / name, "rb") as f:
        return list(read_warc(f, name, CFG))


def test_well_formed_sample_yields_its_one_html_response_and_skips_request_and_revisit(shared_corpus):
    (doc,) = sample(shared_corpus, "example.warc.gz")
    assert doc["_status"] == "kept" and doc["source"] == "web"
    assert doc["id"] == "<urn:uuid:a9c51e3e-0221-11e7-bf66-0242ac120005>"
    assert (doc["url"], doc["created"], doc["line"]) == ("http://example.com/", "2017-03-06", 3)
    assert doc["text"].startswith("Example Domain")
    assert "illustrative examples" in doc["text"] and "<" not in doc["text"]


def test_chunked_http_body_is_dechunked_before_extraction(shared_corpus):
    (doc,) = sample(shared_corpus, "example-iana.org-chunked.warc")
    assert doc["_status"] == "kept" and doc["url"] == "http://www.iana.org/"
    assert "Internet Assigned Numbers Authority" in doc["text"]
    assert not re.search(r"^[0-9a-f]{1,8}$", doc["text"], re.M), "chunk-size lines leaked into the text"


def test_truncated_sample_rejects_the_cut_response_and_finishes(shared_corpus):
    (doc,) = sample(shared_corpus, "example-trunc.warc")
    assert (doc["_status"], doc["_reason"]) == ("rejected", "warc_truncated")
    assert doc["text"] is None and doc["id"] == "<urn:uuid:a9c51e3e-0221-11e7-bf66-0242ac120005>"
    assert "604 of 606" in doc["_detail"]


def test_html_resource_record_is_a_document(shared_corpus):
    (doc,) = sample(shared_corpus, "example-resource.warc.gz")
    assert doc["_status"] == "kept" and doc["line"] == 3
    assert doc["text"].startswith("Example Domain")


# --- WARCs built here ------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["warc.gz", "warc"])
@pytest.mark.parametrize(
    "content_type,head",
    [
        ("text/html; charset=windows-1251", ""),
        ("text/html", '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'),
        ("text/html", '<meta charset="koi8-r">'),
    ],
    ids=["http-header-charset", "meta-http-equiv", "meta-charset-koi8r"],
)
def test_non_utf8_page_is_decoded_by_its_declared_charset(gz, content_type, head):
    encoding = "koi8-r" if "koi8" in head else "cp1251"
    html = page("Москва", RUSSIAN, head).encode(encoding)
    (doc,) = rows(write_warc([html_response("http://example.ru/moskva", html, content_type)], gz=gz))
    assert doc["_status"] == "kept", doc["_detail"]
    assert RUSSIAN in doc["text"]


def test_undeclared_charset_is_detected():
    html = page("Москва", RUSSIAN * 3).encode("cp1251")
    (doc,) = rows(write_warc([html_response("http://example.ru/", html)]))
    assert RUSSIAN in doc["text"]


def test_a_stray_byte_does_not_make_a_declared_utf8_page_mojibake():
    html = page("Été", FRENCH).encode("utf-8").replace(b"</footer>", b"\xff</footer>")
    text, encoding = decode_html(html, "utf-8")
    assert encoding == "utf-8" and FRENCH in text


def test_utf16_bom_wins_and_an_ascii_readable_utf16_meta_means_utf8():
    html = page("Été", FRENCH, '<meta charset="utf-16">')
    assert FRENCH in decode_html(html.encode("utf-16"), None)[0]
    assert decode_html(html.encode("utf-8"), None) == (html, "utf-8")


def test_chunked_gzip_encoded_body_is_decoded():
    body = gzip.compress(page("Chunked", FRENCH).encode("utf-8"))
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100]) for i in range(0, len(body), 100))
    extra = [("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")]
    (doc,) = rows(write_warc([html_response("http://example.fr/", chunked + b"0\r\n\r\n", extra=extra)]))
    assert doc["_status"] == "kept", doc["_detail"]
    assert FRENCH in doc["text"]


def test_record_types_and_statuses_map_to_documented_rows():
    html = page("Page", FRENCH).encode("utf-8")
    data = write_warc([
        ("warcinfo", None, b"software: test\r\n", None, "application/warc-fields"),
        ("request", "http://a.example/", b"", ("GET / HTTP/1.1", [("Host", "a.example")]), None),
        html_response("http://a.example/", html),
        html_response("http://a.example/gone", html, status="404 Not Found"),
        html_response("http://a.example/logo.png", b"\x89PNG\r\n\x1a\n", content_type="image/png"),
        ("metadata", "http://a.example/", b"via: x\r\n", None, "application/warc-fields"),
        ("conversion", "http://a.example/", FRENCH.encode("utf-8"), None, "text/plain"),
        ("resource", "http://a.example/r.html", html, None, "text/html"),
        html_response("http://a.example/empty", b"<html><body><script>x()</script></body></html>"),
    ])
    got = [(r["line"], r["url"], r["_status"], r["_reason"]) for r in rows(data)]
    assert got == [
        (3, "http://a.example/", "kept", None),
        (4, "http://a.example/gone", "rejected", "http_status_not_200"),
        (5, "http://a.example/logo.png", "rejected", "not_html"),
        (7, "http://a.example/", "kept", None),
        (8, "http://a.example/r.html", "kept", None),
        (9, "http://a.example/empty", "rejected", "no_text_extracted"),
    ]
    wet = rows(data)[3]
    assert wet["text"] == FRENCH and wet["id"].startswith("<urn:uuid:")


def test_an_application_http_response_with_an_empty_block_is_rejected_and_the_next_record_read():
    data = write_warc([("response", "hard::name", b"", None, "application/http; msgtype=response"),
                       html_response("http://a.example/", page("Page", FRENCH).encode())])
    got = [(r["line"], r["_status"], r["_reason"]) for r in rows(data)]
    assert got == [(1, "rejected", "not_html"), (2, "kept", None)]


def test_payload_above_max_html_bytes_is_rejected_unparsed():
    html = page("Big", FRENCH * 50).encode("utf-8")
    (doc,) = rows(write_warc([html_response("http://a.example/", html)]), HtmlConfig(max_html_bytes=1000))
    assert (doc["_status"], doc["_reason"]) == ("rejected", "html_too_large")


def test_corrupt_gzip_member_yields_a_rejection_and_the_next_member_is_read():
    members = [write_warc([html_response(f"http://a.example/{i}", page(f"P{i}", FRENCH).encode())]) for i in range(3)]
    broken = bytearray(members[1])
    broken[40:200] = b"\xff" * 160  # inside the deflate stream, after the gzip header
    got = rows(members[0] + bytes(broken) + members[2])
    assert [(r["line"], r["_status"], r["_reason"]) for r in got] == [(1, "kept", None), (2, "rejected", "warc_corrupt"),
                                                                     (3, "kept", None)]
    assert got[1]["_detail"] and got[2]["url"] == "http://a.example/2"


def test_a_file_that_is_not_warc_ends_with_one_rejection():
    got = rows(b"this is not a WARC file at all\n" * 20)
    assert [(r["line"], r["_reason"]) for r in got] == [(1, "warc_corrupt")]


@pytest.mark.parametrize("gz", [True, False], ids=["warc.gz", "warc"])
@pytest.mark.parametrize("cut", [30, 300])
def test_file_cut_inside_the_last_record_yields_one_warc_truncated(gz, cut):
    data = write_warc([html_response(f"http://a.example/{i}", page(f"P{i}", FRENCH).encode()) for i in range(2)], gz=gz)
    got = rows(data[: len(data) - cut])
    assert [(r["line"], r["_status"], r["_reason"]) for r in got] == [(1, "kept", None), (2, "rejected", "warc_truncated")]


# --- single .html pages ----------------------------------------------------------------------------------


def test_single_html_file_gives_one_page_without_id():
    html = page("Été", FRENCH, '<meta charset="windows-1252">').encode("cp1252")
    (doc,) = list(read_html(io.BytesIO(html), "page.html", CFG))
    assert (doc["_status"], doc["line"], doc["id"], doc["source"]) == ("kept", 1, None, "web")
    assert FRENCH in doc["text"]


@pytest.mark.parametrize("extractor", ["resiliparse", "trafilatura"])
def test_main_text_extraction_drops_navigation(extractor):
    html = page("Été", FRENCH).encode("utf-8")
    (doc,) = list(read_html(io.BytesIO(html), "page.html", HtmlConfig(extractor=extractor)))
    assert FRENCH in doc["text"]
    assert "About" not in doc["text"].splitlines()


# --- real pages --------------------------------------------------------------------------------------------


def test_corpus_pages_become_documents_with_their_record_ids_and_mostly_page_text(shared_corpus):
    web = shared_corpus / "raw/web"
    with gzip.open(web / "index.jsonl.gz", "rt") as f:
        index = [json.loads(line) for line in f]
    docs = {}
    for name in sorted({r["warc"] for r in index}):
        with open(web / name, "rb") as f:
            docs.update((r["id"], r) for r in read_warc(f, name, CFG))
    assert {r["record_id"] for r in index} == set(docs)
    reasons = Counter(d["_reason"] for d in docs.values())
    assert reasons[None] >= 0.99 * len(index), reasons

    wanted = {r["doc_id"]: r["record_id"] for r in index}
    precision, recall = [], []
    for shard in sorted((shared_corpus / "raw").glob("docs-*.jsonl.gz")):
        with gzip.open(shard, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    ref = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(ref, dict) or ref.get("id") not in wanted:
                    continue
                doc = docs[wanted[ref["id"]]]
                if doc["text"] is None:
                    continue
                out = Counter(re.findall(r"\w+", doc["text"].lower()))
                page_tokens = Counter(re.findall(r"\w+", ref["text"].lower()))
                common = sum((out & page_tokens).values())
                precision.append(common / sum(out.values()))
                recall.append(common / sum(page_tokens.values()))
    assert len(precision) >= 0.99 * len(index)
    # Extracted text is the page's own text (no markup or script leaking in) ...
    assert sum(precision) / len(precision) > 0.98
    # ... without most of its menus and footers.
    assert sum(recall) / len(recall) < 0.75
