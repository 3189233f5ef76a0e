"""The second look at documents under their language's minimum score: their language's commonest words
vouch for them (pipeline/filter/language_words.py)."""
from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa

from pipeline.filter import FilterConfig
from pipeline.filter.batch import language_checks
from pipeline.filter.langid import score_histogram
from pipeline.filter.language_words import share_histogram, share_stats, shares, word_lists

PROSE = "The river ran to the sea, and the boats that came with the tide were of every colour."
NOUNS = "River stone light garden window morning letter silver quiet market harbor winter forest lantern."


def test_words_count_as_written_so_text_in_capitals_holds_none_of_the_lower_case_lists_words():
    found = shares(pa.array([PROSE, PROSE.upper(), NOUNS]), ["en", "en", "en"], 1000)
    assert found[0] == 8 / 18  # to, the, and, the, that, with, the, of; not the capitalised first "The"
    assert found[1] == 0.0 and found[2] == 0.0


def test_only_the_characters_language_id_saw_count_and_a_language_without_a_list_has_no_share():
    found = shares(pa.array([NOUNS + " " + PROSE, PROSE]), ["en", "xx"], len(NOUNS))
    assert found[0] == 0.0 and np.isnan(found[1])


def test_languages_wordfreq_lacks_take_fineweb2s_stop_words():
    lists = word_lists()
    assert {"the", "of", "and"} <= lists["en"]  # Gopher's own list
    assert "va" in lists["uz"] and "ko" not in lists  # FineWeb-2's Uzbek; Korean's are morphemes, never our words


def _checks(texts, scores, cfg):
    return dict(language_checks(pa.array(texts), ["en"] * len(texts), np.array(scores, dtype=np.float32), cfg))


def test_an_unsure_document_in_its_languages_words_is_kept_and_one_without_them_or_in_capitals_dropped():
    cfg = FilterConfig(mojibake=False, lang_thresholds={"en": 0.6}, lang_word_shares={"en": 0.3})
    dropped = _checks([PROSE, NOUNS, PROSE.upper(), NOUNS], [0.4, 0.4, 0.4, 0.7], cfg)["lang_score_below_min"]
    assert dropped.tolist() == [False, True, True, False]


def test_the_second_look_needs_half_the_languages_typical_share_and_can_be_switched_off():
    texts, scores = [PROSE], [0.4]
    share = 8 / 18
    kept = FilterConfig(mojibake=False, lang_thresholds={"en": 0.6}, lang_word_shares={"en": 2 * share})
    too_high = FilterConfig(mojibake=False, lang_thresholds={"en": 0.6}, lang_word_shares={"en": 2 * share + 0.01})
    off = FilterConfig(mojibake=False, lang_thresholds={"en": 0.6}, lang_word_shares={"en": 0.3}, lang_words_min_share=None)
    assert not _checks(texts, scores, kept)["lang_score_below_min"][0]
    assert _checks(texts, scores, too_high)["lang_score_below_min"][0]
    assert _checks(texts, scores, off)["lang_score_below_min"][0]


def _stats(share_values, score_values, cfg=None):
    hists = {"xx": share_histogram(np.array(share_values))}
    scores = {"xx": {"median": float(np.median(score_values))}}
    return share_stats(hists, scores, cfg or FilterConfig(adaptive_min_docs=30))["xx"]


def test_the_second_look_applies_only_to_a_language_named_confidently_in_a_run_that_uses_its_words():
    assert _stats([0.2] * 40, [0.7] * 40) == {"n": 40, "median": 0.2, "applies": True}
    assert not _stats([0.2] * 40, [0.3] * 40)["applies"]  # the typical document's label is in doubt
    assert not _stats([0.2] * 20, [0.7] * 20)["applies"]  # too few documents for a typical share
    assert not _stats([0.004] * 40, [0.7] * 40)["applies"]  # the typical document holds none of the words
    explicit = FilterConfig(adaptive_min_docs=30, per_language={"xx": {"min_lang_score": 0.5}})
    assert not _stats([0.2] * 40, [0.7] * 40, explicit)["applies"]  # a minimum set for the language stands


def test_the_filter_stage_records_the_shares_and_counts_the_documents_the_words_kept(spark, tmp_path):
    from pipeline import config as config_lib, schemas
    from pipeline import stages
    from pipeline.report import batches
    from pipeline.stagedir import listed_files
    from pipeline.stages.config import PipelineConfig
    from synthetic import DE, EN, document, write_jsonl

    rng = random.Random(3)
    english, german = EN.split("\n\n"), DE.split("\n\n")
    # English pages quoting a German paragraph: lid.176 says English at 0.63-0.81, under the run's threshold
    mixed = ["\n\n".join([english[k % 3], english[(k + 1) % 3], german[k % 3]]) for k in range(10)]
    docs = [{"id": f"d{i:03d}", "text": text} for i, text in enumerate([document(rng) for _ in range(30)] + mixed)]
    write_jsonl(tmp_path / "in" / "a.jsonl", docs)
    cfg = config_lib.load(PipelineConfig, overrides=["filter.adaptive_min_docs=10"])
    stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), cfg)
    stats = stages.run("filter", spark, str(tmp_path / "clean"), str(tmp_path / "filter"), cfg)
    schemas.validate(json.loads((tmp_path / "filter" / "stats.json").read_text()), "stats.v1")
    en = stats["lang_words"]["en"]
    assert en["n"] >= 30 and en["applies"] and en["median"] > 0
    threshold = stats["lang_scores"]["en"]["threshold"]
    rows = [row for b in batches(listed_files(str(tmp_path / "filter"), "data"), ["lang_score"]) for row in b.to_pylist()]
    below = sum(row["lang_score"] < threshold for row in rows)
    assert below > 0 and en["vouched"] == below  # every kept document under the threshold was kept by its words
