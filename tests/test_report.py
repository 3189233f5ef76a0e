import base64
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import report
from synthetic import SECTIONS, outside_sections, report_sections

DOC_SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string()),
                        ("url", pa.string()), ("created", pa.string())])
LANG_SCHEMA = DOC_SCHEMA.append(pa.field("lang", pa.string())).append(pa.field("lang_score", pa.float32()))
SCRIPT = "<script>alert('x')</script> & more"


def _parquet(path, rows, schema):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _commit(stage_dir, stats, files):
    (stage_dir / "stats.json").write_text(json.dumps({"schema_version": 1, "rejected": {}, **stats}))
    listing = {}
    for rel in files:
        listing.setdefault(rel.split("/")[0], []).append(rel)
    (stage_dir / "_SUCCESS").write_text(json.dumps({"stage": stats["stage"], "files": listing}))


def _doc(i, text, **extra):
    return {"id": f"d{i:03d}", "text": text, "source": "web", "url": None, "created": None, **extra}


@pytest.fixture
def run_dir(tmp_path):
    """A small committed run in the OUT/<stage>/ layout of docs/DESIGN.md: 12 input lines, one rejected, one
    dropped as empty, two documents dropped by filter (one by language), a 3-document duplicate cluster."""
    out = tmp_path / "out"
    texts = [f"Document number {i} says something rather long about topic {i}. " * (i + 1) for i in range(8)]
    dup = "The same story is told three times over with tiny changes. " * 5
    clean_docs = [_doc(i, t) for i, t in enumerate(texts)] + [_doc(8, dup), _doc(9, dup + "!"), _doc(10, dup.upper())]

    clean = out / "clean"
    _parquet(clean / "data/part-00000.parquet", clean_docs[:6], DOC_SCHEMA)
    _parquet(clean / "data/part-00001.parquet", clean_docs[6:], DOC_SCHEMA)
    _parquet(clean / "dropped/part-00000.parquet", [{**_doc(11, " "), "reason": "empty_after_cleaning"}],
             DOC_SCHEMA.append(pa.field("reason", pa.string())))
    _parquet(clean / "rejected/part-00000.parquet",
             [{"file": "a.jsonl", "line": 13, "id": None, "reason": "invalid_json", "detail": "Expecting value",
               "excerpt": '{"id": "x", "text": "' + SCRIPT}],
             pa.schema([("file", pa.string()), ("line", pa.int64()), ("id", pa.string()), ("reason", pa.string()),
                        ("detail", pa.string()), ("excerpt", pa.string())]))
    _commit(clean, {"stage": "clean", "input": 13, "kept": 11, "dropped": {"empty_after_cleaning": 1},
                    "rejected": {"invalid_json": 1}, "seconds": 2.0},
            ["data/part-00000.parquet", "data/part-00001.parquet", "dropped/part-00000.parquet",
             "rejected/part-00000.parquet"])
    # A part left behind by a failed attempt: not in _SUCCESS, so it must not be read.
    _parquet(clean / "data/part-00009.parquet", [_doc(99, "stale " * 1000)], DOC_SCHEMA)

    filt = out / "filter"
    passed = [{**d, "lang": "en", "lang_score": 0.9} for d in clean_docs[:6] + clean_docs[8:]]
    _parquet(filt / "data/part-00000.parquet", passed, LANG_SCHEMA)
    _parquet(filt / "dropped/part-00000.parquet",
             [{**clean_docs[6], "lang": "en", "lang_score": 0.9, "reason": "gopher_rep_dup_line_frac"},
              {**clean_docs[7], "text": SCRIPT, "lang": "de", "lang_score": 0.3, "reason": "lang_score_below_min"}],
             LANG_SCHEMA.append(pa.field("reason", pa.string())))
    _commit(filt, {"stage": "filter", "input": 11, "kept": 9, "seconds": 1.5,
                   "dropped": {"lang_score_below_min": 1, "gopher_rep_dup_line_frac": 1},
                   "main_content_extracted": 3, "pii": {"email": 4, "ip": 2}, "languages_at_risk": {},
                   "lang_words": {"en": {"n": 9, "median": 0.2, "applies": True, "vouched": 2},
                                  "de": {"n": 1, "median": 0.1, "applies": False, "vouched": 0}},
                   "languages": {"en": {"kept": 9, "dropped": {"gopher_rep_dup_line_frac": 1}, "rejected": {}},
                                 "de": {"kept": 0, "dropped": {"lang_score_below_min": 1}, "rejected": {}}}},
            ["data/part-00000.parquet", "dropped/part-00000.parquet"])

    dedupe = out / "dedupe"
    _parquet(dedupe / "data/part-00000.parquet", passed[:7], LANG_SCHEMA)
    _parquet(dedupe / "dropped/part-00000.parquet",
             [{**passed[7], "reason": "near_duplicate"}, {**passed[8], "reason": "near_duplicate"}],
             LANG_SCHEMA.append(pa.field("reason", pa.string())))
    _parquet(dedupe / "clusters/part-00000.parquet",
             [{"id": d, "cluster_id": "d008", "kept": d == "d008"} for d in ("d008", "d009", "d010")],
             pa.schema([("id", pa.string()), ("cluster_id", pa.string()), ("kept", pa.bool_())]))
    _commit(dedupe, {"stage": "dedupe", "input": 9, "kept": 7, "dropped": {"near_duplicate": 2}, "seconds": 3.0,
                     "exact_duplicates": 0, "near_duplicates": 2, "cluster_size_histogram": {"3": 1}},
            ["data/part-00000.parquet", "dropped/part-00000.parquet", "clusters/part-00000.parquet"])

    tok = out / "tokenize"
    tok.mkdir()
    _commit(tok, {"stage": "tokenize", "input": 7, "kept": 7, "dropped": {}, "seconds": 4.0,
                  "tokens": {"train": 900, "val": 100}, "text_bytes": {"train": 3000, "val": 300}},
            [])
    return out


def test_report_has_every_section_with_content_and_an_embedded_png(run_dir):
    dest = report.write(str(run_dir))
    assert dest == str(run_dir / "report.html")
    html_text = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html_text and "http" not in html_text.split("<body>", 1)[1]  # offline, no JS
    sections = report_sections(html_text)
    assert list(sections) == SECTIONS
    for sid, section in sections.items():
        assert section["heading"].strip(), sid
        assert section["text"].strip(), sid
    images = [src for s in sections.values() for src in s["images"]]
    assert len(images) >= 5
    for src in images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix):])[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_escapes_document_text(run_dir):
    html_text = report.build(str(run_dir))
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html_text
    sections = report_sections(html_text)
    assert SCRIPT in sections["samples"]["text"]  # the rejected excerpt and the dropped filter document


def test_report_counts_only_committed_parts(run_dir):
    data, _ = report.scan_documents(str(run_dir / "clean"))
    assert data.documents == 11
    assert data.chars == sum(len(t) for t in _texts(run_dir / "clean"))
    assert int(data.length_hist.sum()) == 11


def _texts(stage_dir):
    return [t for p in ("part-00000", "part-00001")
            for t in pq.read_table(stage_dir / f"data/{p}.parquet").column("text").to_pylist()]


def test_largest_clusters_join_members_to_clean_text(run_dir):
    clusters = report.largest_clusters(str(run_dir / "dedupe"))
    assert clusters == [(3, "d008", [("d008", True), ("d009", False), ("d010", False)])]
    sections = report_sections(report.build(str(run_dir)))
    assert "THE SAME STORY IS TOLD THREE TIMES" in sections["dedup"]["text"]


def test_largest_clusters_rank_by_size_and_show_the_kept_member_first(tmp_path):
    stage = tmp_path / "dedupe"
    big = [{"id": f"b{i:02d}", "cluster_id": "b05", "kept": i == 5} for i in range(10)]
    small = [{"id": f"s{i}", "cluster_id": "s0", "kept": i == 0} for i in range(2)]
    schema = pa.schema([("id", pa.string()), ("cluster_id", pa.string()), ("kept", pa.bool_())])
    _parquet(stage / "clusters/part-00000.parquet", small, schema)
    _parquet(stage / "clusters/part-00001.parquet", big, schema)
    _commit(stage, {"stage": "dedupe", "input": 12, "kept": 2, "dropped": {}, "seconds": 1.0},
            ["clusters/part-00000.parquet", "clusters/part-00001.parquet"])
    (size, cid, members), second = report.largest_clusters(str(stage), k=2)
    assert (size, cid) == (10, "b05")
    assert members[0] == ("b05", True)
    assert len(members) == report.MEMBERS_SHOWN
    assert second[:2] == (2, "s0")
    assert [c for _, c, _ in report.largest_clusters(str(stage), k=1)] == ["b05"]


def test_languages_table_shows_filters_exact_counts_and_largest_drop_reason_per_language(run_dir):
    # filter kept 9 English documents and dropped one English and one German one.
    cells = report_sections(report.build(str(run_dir)))["languages"]["cells"]
    assert cells[:10] == ["en", "10", "9", "90.0 %", "gopher_rep_dup_line_frac 1",
                          "de", "1", "0", "0.0 %", "lang_score_below_min 1"]


def _rewrite_filter_stats(run_dir, **changes):
    path = run_dir / "filter" / "stats.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_languages_table_lists_every_language_of_20_documents_after_the_20_largest(run_dir):
    languages = {f"l{i:02d}": {"kept": 30, "dropped": {}, "rejected": {}} for i in range(report.TOP_LANGS)}
    languages |= {"xa": {"kept": 15, "dropped": {"gopher_min_words": 5}, "rejected": {}},  # 20 documents: own row
                  "xb": {"kept": 19, "dropped": {}, "rejected": {}},
                  "xc": {"kept": 3, "dropped": {"lang_score_below_min": 2}, "rejected": {}}}
    _rewrite_filter_stats(run_dir, languages=languages)
    cells = report_sections(report.build(str(run_dir)))["languages"]["cells"]
    rows = [cells[i:i + 5] for i in range(0, len(cells), 5)]
    assert [r[0] for r in rows] == [f"l{i:02d}" for i in range(report.TOP_LANGS)] + ["xa", "other"]
    assert rows[-2] == ["xa", "20", "15", "75.0 %", "gopher_min_words 5"]
    assert rows[-1] == ["other", "24", "22", "91.7 %", "lang_score_below_min 2"]


def test_report_shows_main_content_rescues_documents_vouched_for_by_their_words_and_pii_replacements(run_dir):
    section = report_sections(report.build(str(run_dir)))["filter-changes"]
    assert section["cells"] == ["kept with their extracted main content", "3",
                                "kept under their language's minimum score, vouched for by its commonest words", "2",
                                "e-mail addresses replaced by <EMAIL>", "4",
                                "public IP addresses replaced by <IP>", "2"]


def test_languages_at_risk_open_the_report(run_dir):
    _rewrite_filter_stats(run_dir, languages_at_risk={"de": {
        "documents": 25, "kept": 1, "keep_rate": 0.04, "drop_reasons": {"lang_score_below_min": 24},
        "score_quantiles": {"p10": 0.412, "p50": 0.551, "p90": 0.6}}})
    html_text = report.build(str(run_dir))
    top = html_text.split("<ul>", 1)[0]  # before the table of contents
    assert 'id="languages-at-risk"' in top
    alarm = outside_sections(top)
    assert alarm["cells"] == ["de", "25", "1", "4.0 %", "lang_score_below_min 24", "p10 0.412 p50 0.551 p90 0.600"]
    assert "kept 9 of 11 documents (81.8 %)" in alarm["text"]
    assert list(report_sections(html_text)) == SECTIONS


def test_a_run_without_languages_at_risk_has_no_alarm(run_dir):
    assert 'id="languages-at-risk"' not in report.build(str(run_dir))


def test_report_of_a_partial_run_marks_missing_stages(run_dir):
    (run_dir / "filter" / "_SUCCESS").unlink()
    (run_dir / "tokenize" / "_SUCCESS").unlink()
    sections = report_sections(report.build(str(run_dir)))
    assert list(sections) == SECTIONS
    assert "filter stage has not committed" in sections["languages"]["text"]
    assert "missing" in sections["summary"]["text"]


def test_report_refuses_a_directory_without_stages(tmp_path):
    with pytest.raises(FileNotFoundError):
        report.build(str(tmp_path))
