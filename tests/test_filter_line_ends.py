"""The languages that do not mark their sentence ends, read from a run's own documents, are spared FineWeb's
line-punctuation rule; every other language keeps it."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.filter import FilterConfig, filter_batch
from pipeline.filter.line_ends import RATIO_BINS, line_end_ratios, line_end_stats, ratio_histogram
from synthetic import batch_of

# Thai separates its sentences with spaces; these lines end none with a mark.
THAI_LINES = [
    "ประภาคารเก่าตั้งอยู่ริมหน้าผามานานกว่าร้อยปี ชาวเรือที่แล่นผ่านแหลมในตอนกลางคืนมองหาแสงของมันเพื่อหาทางกลับบ้าน",
    "ในฤดูใบไม้ผลิปีนั้น ผู้ดูแลประภาคารและลูกสาวทาสีหอคอยเป็นสีขาวอีกครั้ง พวกเขาขนสีขึ้นบันไดแคบทีละถัง",
    "เมื่อพายุมาถึงในเดือนตุลาคม แสงไฟไม่ได้ดับ เรือประมงที่ติดอยู่นอกท่าเรือตามแสงนั้นผ่านโขดหินกลับเข้าฝั่ง",
]


def test_line_end_ratios_count_the_lines_ending_with_a_sentence_mark():
    texts = pa.array(["One.\nTwo\n\nThree!", "no mark at all", "", "Բարեւ։\nሰላም።", "Բարեւ:\nEnd. 🌰\nسلام.\u200f"])
    ratios = line_end_ratios(texts)
    assert ratios[0] == 2 / 3 and ratios[1] == 0.0 and np.isnan(ratios[2]) and ratios[3] == 1.0
    assert ratios[4] == 1.0  # a typed stand-in, an emoji and a bidirectional mark after the full stop


def test_a_language_whose_median_document_marks_too_few_line_ends_is_unmarked():
    marked = ratio_histogram(np.array([0.9] * 40 + [0.0] * 10))
    unmarked = ratio_histogram(np.array([0.0] * 35 + [0.5] * 5))
    few = ratio_histogram(np.array([0.0] * 5))
    stats = line_end_stats({"de": marked, "th": unmarked, "lo": few}, min_docs=30,
                           line_punct_thr={"de": 0.12, "th": 0.12, "lo": 0.12})
    assert [stats[lang]["line_punct_rule"] for lang in ("de", "th", "lo")] == [True, False, True]
    assert stats["th"]["n"] == 40 and stats["de"]["median"] == 0.9
    assert ratio_histogram(np.array([1.0, np.nan])).sum() == 1 and len(marked) == RATIO_BINS


def test_a_language_of_menu_heavy_pages_that_mark_a_few_lines_keeps_the_rule():
    few_marked = ratio_histogram(np.array([0.06] * 40))  # whole web pages: menus around some sentences
    assert line_end_stats({"xx": few_marked}, 30, {"xx": 0.12})["xx"]["line_punct_rule"]
    unmarked = ratio_histogram(np.zeros(40))
    assert line_end_stats({"xx": unmarked}, 30, {"xx": None})["xx"]["line_punct_rule"]  # no rule to spare


def test_the_rule_is_spared_only_for_unmarked_languages_and_a_per_language_setting_wins():
    page = "\n".join(THAI_LINES)
    default = filter_batch(batch_of(page), FilterConfig(main_content=False)).to_pylist()[0]
    assert default["_reason"] == "fineweb_line_punct_ratio"
    spared = filter_batch(batch_of(page), FilterConfig(main_content=False, unmarked_languages=["th"])).to_pylist()[0]
    assert spared["_reason"] != "fineweb_line_punct_ratio"
    assert FilterConfig(unmarked_languages=["th"]).rules_for("de").fineweb.line_punct_thr == 0.12
    off = FilterConfig(unmarked_languages=["th"], adaptive_line_ends=False)
    assert off.rules_for("th").fineweb.line_punct_thr == 0.12
    mine = FilterConfig(unmarked_languages=["th"], per_language={"th": {"fineweb": {"line_punct_thr": 0.05}}})
    assert mine.rules_for("th").fineweb.line_punct_thr == 0.05


def test_the_filter_stage_spares_a_language_its_documents_show_unmarked(spark, tmp_path):
    import itertools

    from pipeline import config as config_lib
    from pipeline import stages
    from pipeline.stages.config import PipelineConfig
    from synthetic import documents, write_jsonl

    thai = [{"id": f"th{k}", "text": "\n".join(lines), "source": "test", "url": None, "created": None}
            for k, lines in enumerate(itertools.permutations(THAI_LINES))]  # 6 documents
    write_jsonl(tmp_path / "in" / "a.jsonl", documents(12) + thai)
    overrides = ["filter.adaptive_min_docs=5", "filter.main_content=false"]
    stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), config_lib.load(PipelineConfig, overrides=overrides))

    def run(*more):
        cfg = config_lib.load(PipelineConfig, overrides=overrides + list(more))
        return stages.run("filter", spark, str(tmp_path / "clean"), str(tmp_path / f"filter{len(more)}"), cfg)

    stats = run()
    assert stats["line_ends"]["th"] == {"n": 6, "median": 0.0, "line_punct_rule": False}
    assert stats["line_ends"]["en"]["line_punct_rule"] and stats["languages"]["th"]["kept"] == 6
    fixed = run("filter.adaptive_line_ends=false")
    assert "line_ends" not in fixed and fixed["languages"]["th"]["dropped"] == {"fineweb_line_punct_ratio": 6}
