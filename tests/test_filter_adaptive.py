"""Adaptive language-score thresholds: the rule, the few-documents fallback and explicit overrides."""
import numpy as np
import pyarrow as pa

from pipeline.filter import FilterConfig
from pipeline.filter.batch import language_checks
from pipeline.filter.langid import adaptive_threshold, histogram_summary, language_score_stats, score_histogram


def test_threshold_is_median_minus_std_clamped():
    assert adaptive_threshold(0.6, 0.1) == 0.5
    assert adaptive_threshold(0.35, 0.2) == 0.3
    assert adaptive_threshold(0.99, 0.01) == 0.9


def test_histogram_summary_matches_exact_figures():
    scores = np.random.default_rng(0).uniform(0.2, 0.6, 5000)
    n, median, std = histogram_summary(score_histogram(scores))
    assert n == 5000
    assert abs(median - np.median(scores)) < 0.002 and abs(std - scores.std()) < 0.002


def test_histograms_merge_in_any_order():
    a, b = score_histogram(np.array([0.1, 0.5])), score_histogram(np.array([1.0, 0.0]))
    assert (a + b == b + a).all() and (a + b).sum() == 4


def test_few_documents_fall_back_to_fixed_minimum():
    hists = {"qu": score_histogram(np.full(200, 0.4)), "xx": score_histogram(np.full(5, 0.4))}
    stats = language_score_stats(hists, min_docs=100, fallback=0.65)
    assert stats["qu"]["adaptive"] and abs(stats["qu"]["threshold"] - 0.4) < 0.002
    assert stats["xx"] == {"n": 5, "median": stats["xx"]["median"], "std": 0.0, "threshold": 0.65, "adaptive": False}


def _dropped(cfg):
    texts = pa.array(["Imaynalla kashanki", "Hello there"])
    checks = dict(language_checks(texts, ["qu", "en"], np.array([0.4, 0.9], dtype=np.float32), cfg))
    return checks["lang_score_below_min"].tolist()


def test_adaptive_keeps_low_but_consistent_language():
    assert _dropped(FilterConfig(mojibake=False, lang_threshold="adaptive", lang_thresholds={"qu": 0.35})) == [False, False]
    assert _dropped(FilterConfig(mojibake=False, lang_threshold="fixed", lang_thresholds={"qu": 0.35})) == [True, False]


def test_explicit_per_language_minimum_wins():
    cfg = FilterConfig(mojibake=False, lang_threshold="adaptive", lang_thresholds={"qu": 0.35}, per_language={"qu": {"min_lang_score": 0.5}})
    assert _dropped(cfg) == [True, False]


def test_filter_stage_records_per_language_score_figures(spark, tmp_path):
    from pipeline import config as config_lib
    from pipeline import stages
    from pipeline.stages.config import PipelineConfig
    from synthetic import documents, write_jsonl

    write_jsonl(tmp_path / "in" / "a.jsonl", documents(40))
    cfg = config_lib.load(PipelineConfig, overrides=["filter.lang_threshold=adaptive", "filter.adaptive_min_docs=10"])
    stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), cfg)
    stats = stages.run("filter", spark, str(tmp_path / "clean"), str(tmp_path / "filter"), cfg)
    figures = stats["lang_scores"]["en"]
    assert figures["n"] >= 10 and figures["adaptive"]
    assert figures["threshold"] == min(adaptive_threshold(figures["median"], figures["std"]), 0.65)
    fixed = config_lib.load(PipelineConfig, overrides=["filter.lang_threshold=fixed"])
    assert "lang_scores" not in stages.run("filter", spark, str(tmp_path / "clean"), str(tmp_path / "filter2"), fixed)
