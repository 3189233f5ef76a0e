"""The language-loss alarm: a language of enough documents kept far less often than the run is listed in
filter/stats.json `languages_at_risk`, last on the filter job's console and at the top of report.html."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from pipeline import cli, config as config_lib, report, schemas
from pipeline.filter import FilterConfig
from pipeline.filter.langid import score_histogram
from pipeline import stages
from pipeline.stages import filter as filter_stage
from pipeline.stages.config import PipelineConfig
from synthetic import DE, RU, document, outside_sections, write_jsonl

REPO = report.storage.__file__.rsplit("/pipeline/", 1)[0]
# German (25 documents) and Russian (10) score about 0.99 and 0.98: a per-language minimum above that
# drops every one of them, while the 40 English documents pass.
DROP_DE_AND_RU = ["filter.per_language.de.min_lang_score=0.999", "filter.per_language.ru.min_lang_score=0.999"]


def corpus() -> list[dict]:
    rng = random.Random(5)
    return ([{"id": f"en{i:03d}", "text": document(rng)} for i in range(40)]
            + [{"id": f"de{i:03d}", "text": DE} for i in range(25)]
            + [{"id": f"ru{i:03d}", "text": RU} for i in range(10)])


@pytest.fixture(scope="module")
def clean_dir(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alarm")
    write_jsonl(tmp / "in" / "docs.jsonl", corpus())
    stages.run("clean", spark, str(tmp / "in"), str(tmp / "clean"), PipelineConfig())
    return tmp


def test_a_dropped_language_is_at_risk_in_stats_last_on_the_filter_jobs_console_and_atop_the_report(clean_dir, capsys):
    out = clean_dir / "filter"
    args = ["--input", str(clean_dir / "clean"), "--output", str(out)] + [a for s in DROP_DE_AND_RU for a in ("--set", s)]
    stats = cli.stage_main("filter", args)
    written = json.loads((out / "stats.json").read_text())
    schemas.validate(written, "stats.v1")
    at_risk = written["languages_at_risk"]
    assert list(at_risk) == ["de"]  # Russian, with 10 documents, is too small to raise an alarm on
    de = at_risk["de"]
    assert (de["documents"], de["kept"], de["keep_rate"], de["drop_reasons"]) == (25, 0, 0.0, {"lang_score_below_min": 25})
    assert set(de["score_quantiles"]) == {"p10", "p25", "p50", "p75", "p90"}
    assert all(abs(q - written["lang_scores"]["de"]["median"]) < 0.002 for q in de["score_quantiles"].values())
    assert stats["languages_at_risk"] == at_risk
    lines = capsys.readouterr().out.rstrip("\n").split("\n")
    assert "language(s) at risk" in lines[-2]
    assert lines[-1].startswith("  de: kept 0 of 25 (0.0 %); dropped lang_score_below_min 25; lang_score p10 0.99")
    top = report.build(str(clean_dir)).split("<ul>", 1)[0]  # before the table of contents
    assert outside_sections(top)["cells"][:5] == ["de", "25", "0", "0.0 %", "lang_score_below_min 25"]


def test_the_pipeline_job_lists_the_languages_at_risk_after_every_stage(clean_dir, capsys):
    settings = DROP_DE_AND_RU + ["tokenize.vocab_size=512", "tokenize.sample_tokens=256", "tokenize.min_frequency=1"]
    args = ["--input", str(clean_dir / "in"), "--output", str(clean_dir / "run")] + [a for s in settings for a in ("--set", s)]
    summary = cli.pipeline_main(args)
    assert [s["stage"] for s in summary] == ["clean", "filter", "dedupe", "tokenize"]
    lines = capsys.readouterr().out.rstrip("\n").split("\n")
    assert "language(s) at risk" in lines[-2] and lines[-1].startswith("  de: kept 0 of 25")


def test_without_the_first_pass_the_quantiles_come_from_the_filtering_pass(spark, clean_dir):
    adaptive = config_lib.load(PipelineConfig, overrides=DROP_DE_AND_RU)
    fixed = config_lib.load(PipelineConfig, overrides=DROP_DE_AND_RU + ["filter.lang_threshold=fixed",
                                                                        "filter.adaptive_line_ends=false"])
    first = stages.run("filter", spark, str(clean_dir / "clean"), str(clean_dir / "f-adaptive"), adaptive)
    second = stages.run("filter", spark, str(clean_dir / "clean"), str(clean_dir / "f-fixed"), fixed)
    assert "lang_scores" not in second and "line_ends" not in second  # no first pass ran
    assert second["languages_at_risk"] == first["languages_at_risk"]


def test_a_run_keeping_its_languages_alike_has_none_at_risk(spark, clean_dir):
    stats = stages.run("filter", spark, str(clean_dir / "clean"), str(clean_dir / "f-plain"), PipelineConfig())
    assert stats["languages_at_risk"] == {}
    assert filter_stage.describe_at_risk(stats) == ""


def _languages(**counts: tuple[int, int]) -> dict[str, dict]:
    return {lang: {"kept": kept, "dropped": {"gopher_min_words": n - kept} if n > kept else {}, "rejected": {}}
            for lang, (n, kept) in counts.items()}


def test_a_language_kept_under_half_the_runs_rate_with_enough_documents_is_at_risk():
    # The run keeps 157 of 240 (65 %): under 33 % is at risk, from 20 documents.
    languages = _languages(en=(141, 135), fr=(40, 10), es=(20, 5), it=(19, 0), de=(20, 7))
    at_risk = filter_stage.languages_at_risk(languages, {}, FilterConfig())
    assert list(at_risk) == ["fr", "es"]  # it has too few documents; de keeps 35 %
    assert at_risk["fr"] == {"documents": 40, "kept": 10, "keep_rate": 0.25,
                             "drop_reasons": {"gopher_min_words": 30}, "score_quantiles": {}}


def test_the_alarm_thresholds_are_settings():
    languages = _languages(en=(100, 95), fr=(10, 4))
    assert list(filter_stage.languages_at_risk(languages, {}, FilterConfig(at_risk_min_docs=10))) == ["fr"]
    assert filter_stage.languages_at_risk(languages, {}, FilterConfig(at_risk_min_docs=10, at_risk_keep_ratio=0.3)) == {}
    with pytest.raises(ValueError, match="filter.at_risk_keep_ratio must be within"):
        FilterConfig(at_risk_keep_ratio=1.5)


def test_with_selected_languages_the_others_raise_no_alarm_and_leave_the_rate_alone():
    languages = _languages(en=(100, 90), de=(100, 0), fr=(50, 10))
    at_risk = filter_stage.languages_at_risk(languages, {}, FilterConfig(languages=["en", "fr"]))
    assert list(at_risk) == ["fr"]  # 20 % against the selected languages' 67 %, not the run's 40 %


def test_only_the_three_largest_drop_reasons_are_listed():
    languages = {"fr": {"kept": 0, "dropped": {"a": 5, "b": 9, "c": 2, "d": 7}, "rejected": {"e": 1}},
                 "en": {"kept": 100, "dropped": {}, "rejected": {}}}
    assert filter_stage.languages_at_risk(languages, {}, FilterConfig())["fr"]["drop_reasons"] == {"b": 9, "d": 7, "a": 5}


def test_score_quantiles_come_from_the_histogram():
    scores = np.random.default_rng(1).uniform(0.2, 0.8, 4000)
    quantiles = filter_stage.histogram_quantiles(score_histogram(scores))
    for name, q in zip(("p10", "p25", "p50", "p75", "p90"), filter_stage.SCORE_QUANTILES):
        assert abs(quantiles[name] - np.quantile(scores, q)) < 0.003
