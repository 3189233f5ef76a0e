"""What the filter learns from a run's own documents before it filters them: the settings a first pass sets.

The filter stage counts, per language and in fixed bins, its documents' language scores, line-end ratios and
shares of their language's commonest words (`first_pass_bins`, one Arrow batch at a time; counts merge by sum
in any order), and `adapt` turns the merged counts into the run's settings: FineWeb-2's adaptive language
score thresholds (`langid`), the languages that mark no sentence ends (`line_ends`) and the typical shares
that vouch for unsure documents (`language_words`). Benchmarks call the same two functions over in-memory
batches, so they filter as the stage does.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.filter import langid, language_words, line_ends
from pipeline.filter.config import FilterConfig
from pipeline.filter.pii import replace_pii_batch

BINS_SCHEMA = pa.schema([("what", pa.string()), ("lang", pa.string()), ("bin", pa.int64()), ("n", pa.int64())])
BINS = {"score": langid.SCORE_BINS, "line_end": line_ends.RATIO_BINS, "word_share": language_words.SHARE_BINS}


def needed(cfg: FilterConfig) -> bool:
    """Whether any setting learns from the run (else the filter needs no first pass)."""
    return cfg.lang_threshold == "adaptive" or cfg.adaptive_line_ends


def first_pass_bins(batch: pa.RecordBatch, cfg: FilterConfig) -> pa.RecordBatch:
    """Rows (what, lang, bin, n) of one batch's non-empty bins, its documents identified as filter_batch
    identifies them (after PII replacement)."""
    texts = pc.fill_null(batch.column("text"), "")
    if cfg.pii:
        texts, _, _ = replace_pii_batch(texts)
    langs, scores = langid.identify(texts, cfg.langid_max_chars, cfg.langid_model)
    values = {"score": (scores, langid.score_histogram),
              "line_end": (line_ends.line_end_ratios(texts), line_ends.ratio_histogram)}
    if cfg.lang_threshold == "adaptive" and cfg.lang_words_min_share is not None:
        values["word_share"] = (language_words.shares(texts, langs, cfg.langid_max_chars), language_words.share_histogram)
    langs = np.array(langs, dtype=object)
    rows = []
    for lang in sorted(set(langs.tolist())):
        mine = langs == lang
        for what, (column, histogram) in values.items():
            hist = histogram(column[mine])
            rows += [{"what": what, "lang": lang, "bin": int(b), "n": int(hist[b])} for b in np.flatnonzero(hist)]
    return pa.RecordBatch.from_pylist(rows, schema=BINS_SCHEMA)


def histograms(rows: Iterable[tuple[str, str, int, int]]) -> dict[str, dict[str, np.ndarray]]:
    """what -> language -> counts per bin, summed over (what, lang, bin, n) rows."""
    hists: dict[str, dict[str, np.ndarray]] = {what: {} for what in BINS}
    for what, lang, b, n in rows:
        hists[what].setdefault(lang, np.zeros(BINS[what], dtype=np.int64))[b] += n
    return hists


def adapt(cfg: FilterConfig, hists: dict[str, dict[str, np.ndarray]]) -> tuple[FilterConfig, dict[str, dict]]:
    """The config the filter runs with, and what it learnt for stats.json: `lang_scores` (per language n,
    median, std and the threshold used), `line_ends` (whether the line-punctuation rule applies) and
    `lang_words` (the typical share of the language's commonest words, whether it may vouch), each present
    when its setting is on."""
    stats: dict[str, dict] = {}
    if cfg.lang_threshold == "adaptive":
        scores = langid.language_score_stats(hists["score"], cfg.adaptive_min_docs, cfg.min_lang_score)
        if cfg.lang_words_min_share is not None:
            stats["lang_words"] = language_words.share_stats(hists["word_share"], scores, cfg)
            cfg = dataclasses.replace(cfg, lang_word_shares={
                lang: s["median"] for lang, s in stats["lang_words"].items() if s["applies"]})
        cfg = dataclasses.replace(cfg, lang_thresholds={lang: s["threshold"] for lang, s in scores.items() if s["adaptive"]})
        for lang, s in scores.items():  # the threshold used: an explicit per-language minimum wins
            s["threshold"] = cfg.min_lang_score_for(lang)
        stats["lang_scores"] = scores
    if cfg.adaptive_line_ends:
        ends = line_ends.line_end_stats(hists["line_end"], cfg.adaptive_min_docs,
                                        {lang: cfg.rules_for(lang).fineweb.line_punct_thr for lang in hists["line_end"]})
        cfg = dataclasses.replace(cfg, unmarked_languages=sorted(lang for lang, s in ends.items() if not s["line_punct_rule"]))
        for lang, s in ends.items():  # whether the rule applies: a per-language threshold wins
            s["line_punct_rule"] = cfg.rules_for(lang).fineweb.line_punct_thr is not None
        stats["line_ends"] = ends
    return cfg, stats


def vouched_by_words(out: pa.RecordBatch, cfg: FilterConfig) -> dict[str, int]:
    """Per language, the kept documents of a filter_batch output whose score is under their language's
    minimum: those their language's words vouched for (`language_words`)."""
    kept = pc.equal(out.column("_status"), "kept").to_numpy(zero_copy_only=False)
    langs = out.column("lang").to_numpy(zero_copy_only=False)
    scores = out.column("lang_score").to_numpy(zero_copy_only=False)
    counts: dict[str, int] = {}
    for lang in set(langs[kept].tolist()):
        mine = kept & (langs == lang)
        n = int((scores[mine] < cfg.min_lang_score_for(lang)).sum())
        if n:
            counts[lang] = n
    return counts
