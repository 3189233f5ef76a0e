"""Compare HTML extractors on the shared corpus's real pages: quality against the WET-style page text, and speed.

    .venv/bin/python benchmarks/html_extract.py [--corpus ../shared/corpus] [--configs resiliparse:balanced,...]

The reference for each WARC record is its document's `text` in raw/docs-*.jsonl.gz: the visible text of
the whole page, one block element per line (menus and footers included). A main-text extractor should keep
the page's prose and drop its navigation, so the report gives, per configuration:
- tok_prec: share of output word tokens found in the page text (leakage of script/CSS/markup is < 1);
- tok_rec:  share of page word tokens kept (a whole-page extractor is near 1; main-text ones lower);
- prose_kept: share of the page's long lines (>= PROSE_WORDS words: article paragraphs) found in the output;
- boiler_removed: share of the page's short lines (<= BOILER_WORDS words: menu items, buttons, footer links)
  that are not a line of the output (headings are short too, so 1.0 is not the goal);
- empty: pages with no output; pages/s: extraction only (decoding excluded), single process.
Then `read_warc` end to end (gzip, WARC and HTTP parsing, charset decoding, extraction) per extractor.
Which lines are prose or boilerplate is a length proxy, not a label: read the numbers side by side.
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from warcio.archiveiterator import ArchiveIterator  # noqa: E402

from pipeline.readers.html import HtmlConfig, charset_from_content_type, decode_html, extract_text  # noqa: E402
from pipeline.readers.warc import http_headers, read_warc  # noqa: E402

PROSE_WORDS = 12
BOILER_WORDS = 4
DEFAULT_CONFIGS = (
    "resiliparse:balanced,resiliparse:precision,resiliparse:recall,"
    "trafilatura:balanced,trafilatura:precision,trafilatura:recall"
)
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


def load_pages(corpus: Path) -> list[tuple[str, str, str]]:
    """(url, decoded html, reference text) for every indexed WARC record."""
    index = {}
    with gzip.open(corpus / "raw/web/index.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            index[row["record_id"]] = row["doc_id"]
    wanted = set(index.values())
    texts = {}
    for shard in sorted((corpus / "raw").glob("docs-*.jsonl.gz")):
        with gzip.open(shard, "rb") as f:
            for line in f:
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if isinstance(doc, dict) and doc.get("id") in wanted and isinstance(doc.get("text"), str):
                    texts[doc["id"]] = doc["text"]
    pages = []
    for warc in sorted((corpus / "raw/web").glob("pages-*.warc.gz")):
        with open(warc, "rb") as f:
            for rec in ArchiveIterator(f):
                rid = rec.rec_headers.get_header("WARC-Record-ID")
                if rec.rec_type != "response" or index.get(rid) not in texts:
                    continue
                content_type = http_headers(rec).get_header("Content-Type")
                html, _ = decode_html(rec.content_stream().read(), charset_from_content_type(content_type))
                pages.append((rec.rec_headers.get_header("WARC-Target-URI"), html, texts[index[rid]]))
    return pages


def _norm(s: str) -> str:
    return _SPACE.sub(" ", s).strip().lower()


def score(output: str, reference: str) -> dict:
    out_tokens = Counter(_WORD.findall(output.lower()))
    ref_tokens = Counter(_WORD.findall(reference.lower()))
    common = sum((out_tokens & ref_tokens).values())
    out_flat = _norm(output)
    out_lines = {_norm(line) for line in output.splitlines()}
    ref_lines = [_norm(line) for line in reference.splitlines() if line.strip()]
    prose = [line for line in ref_lines if len(line.split()) >= PROSE_WORDS]
    boiler = [line for line in ref_lines if len(line.split()) <= BOILER_WORDS]
    return {
        "tok_prec": common / max(sum(out_tokens.values()), 1) if out_tokens else None,
        "tok_rec": common / max(sum(ref_tokens.values()), 1),
        "prose_kept": sum(line in out_flat for line in prose) / len(prose) if prose else None,
        "boiler_removed": sum(line not in out_lines for line in boiler) / len(boiler) if boiler else None,
    }


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


def run(pages, extractor: str, favour: str) -> dict:
    cfg = HtmlConfig(extractor=extractor, favour=favour)
    outputs = []
    start = time.perf_counter()
    for url, html, _ in pages:
        outputs.append(extract_text(html, cfg, url) or "")
    seconds = time.perf_counter() - start
    scores = [score(out, ref) for out, (_, _, ref) in zip(outputs, pages)]
    result = {k: round(_mean(s[k] for s in scores), 3) for k in scores[0]}
    result.update(empty=sum(not o for o in outputs), pages_per_s=round(len(pages) / seconds, 1))
    return result


def end_to_end(corpus: Path, extractor: str) -> tuple[Counter, float]:
    cfg = HtmlConfig(extractor=extractor)
    counts: Counter = Counter()
    start = time.perf_counter()
    for warc in sorted((corpus / "raw/web").glob("pages-*.warc.gz")):
        with open(warc, "rb") as f:
            counts.update(r["_reason"] or "kept" for r in read_warc(f, warc.name, cfg))
    return counts, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated extractor:favour pairs")
    args = ap.parse_args()
    pages = load_pages(args.corpus)
    print(f"{len(pages)} pages, {sum(len(h) for _, h, _ in pages) / 1e6:.1f} M chars of HTML")
    print(f"{'config':24} {'tok_prec':>8} {'tok_rec':>8} {'prose_kept':>10} {'boiler_removed':>14} {'empty':>5} {'pages/s':>8}")
    for pair in args.configs.split(","):
        extractor, favour = pair.split(":")
        r = run(pages, extractor, favour)
        print(f"{pair:24} {r['tok_prec']:>8} {r['tok_rec']:>8} {r['prose_kept']:>10} {r['boiler_removed']:>14} "
              f"{r['empty']:>5} {r['pages_per_s']:>8}", flush=True)
    for extractor in sorted({pair.split(":")[0] for pair in args.configs.split(",")}):
        counts, seconds = end_to_end(args.corpus, extractor)
        print(f"read_warc end to end, {extractor}: {dict(counts)}, {sum(counts.values()) / seconds:.1f} records/s")


if __name__ == "__main__":
    main()
