"""A second look at the documents language ID is unsure of: are they written in their language's words?

FineWeb-2's adaptive threshold (median - std of a language's scores) drops a sixth of a language whose scores
spread widely, by design: lid.176 names many lower-resource languages right with scores spread over 0.3-0.9,
and their clean documents below the threshold are no worse than those above. A document under its language's
minimum score is still kept, if it passes every other check, when the commonest words of that language make
up at least `lang_words_min_share` (half) of the share they make up in the run's typical document of the
language (the median over its documents, from the filter stage's first pass). Words count as written, not
lower-cased (the lists are lower case): lid.176 is unsure of text in capitals, which a case-blind count would
vouch for. Only the first `langid_max_chars` characters count, the text language ID saw.

It belongs to the adaptive thresholds (`lang_threshold: adaptive`); a fixed minimum, global or set for a
language (`per_language.LANG.min_lang_score`, FineWeb-2's with `fineweb2_thresholds`), stands as set. The
second look applies to a language only where its documents of the run number at least
`adaptive_min_docs` and their median language score is at least `lang_words_min_median_score` (0.5: for the
typical document the model's label is likelier than all other labels together). Where the model names a
language only at low scores, the label itself is in doubt (placeholder text called Latin at ~0.3, a language
the model does not know called the nearest one it knows), and so is the share of its "typical" document.

Lists: `text.STOP_WORDS` (wordfreq's commonest words, as many as cover 16% of the language's text, Gopher's
list for English) and, for the languages wordfreq lacks, the stop words of FineWeb-2's configs
(`fineweb2_thresholds.json`). A language with neither gets no second look.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.filter.config import FINEWEB2_STOP_WORDS_UNMATCHED, FilterConfig, fineweb2_table
from pipeline.filter.line_ends import ratio_histogram
from pipeline.filter.text import STOP_WORDS, batch_words, count_listed, stop_word_set

SHARE_BINS = 100  # shares are counted in fixed bins over [0, 1], merged by sum across parts


@lru_cache(maxsize=1)
def word_lists() -> dict[str, frozenset[str]]:
    """Language -> its commonest words, normalised as the filter's words are."""
    table = fineweb2_table()
    fineweb2 = {lang: stop_word_set(table["configs"][name]["stopwords"], lang)
                for lang, name in table["lid176_to_fineweb2"].items()
                if lang not in STOP_WORDS and lang not in FINEWEB2_STOP_WORDS_UNMATCHED}
    return {lang: words for lang, words in {**fineweb2, **STOP_WORDS}.items() if words}


def shares(texts: pa.Array, langs: list[str], max_chars: int) -> np.ndarray:
    """Per document, the share of the words of its first `max_chars` characters, as written, that are
    among its language's commonest words; NaN for a language without a list or a text without a word."""
    if len(texts) == 0:
        return np.zeros(0)
    prefixes = pc.utf8_slice_codeunits(pc.fill_null(texts, ""), 0, max_chars).to_pylist()
    words, doc = batch_words(prefixes, langs, lower=False)
    listed = count_listed(pc.dictionary_encode(words), doc, langs, word_lists())
    n_words = np.bincount(doc, minlength=len(langs))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_words > 0, listed / np.maximum(n_words, 1), np.nan)


def share_histogram(values: np.ndarray) -> np.ndarray:
    """Counts of the (non-NaN) shares in SHARE_BINS equal bins over [0, 1]."""
    return ratio_histogram(values, SHARE_BINS)


def share_stats(hists: dict[str, np.ndarray], lang_scores: dict[str, dict], cfg: FilterConfig) -> dict[str, dict]:
    """Per language with a list: n (documents with a share), the median share (at its bin's lower edge) and
    whether the second look applies to it (`lang_scores`: langid.language_score_stats of the same run). It
    does not where the typical document holds practically none of the listed words (under 1%): their
    absence from a document then says nothing."""
    out = {}
    for lang in sorted(hists):
        hist = hists[lang]
        n = int(hist.sum())
        median = float(np.searchsorted(np.cumsum(hist), (n + 1) / 2)) / SHARE_BINS if n else 0.0
        score = lang_scores.get(lang, {})
        applies = (cfg.lang_words_min_share is not None and cfg.rules_for(lang).min_lang_score is None
                   and n >= cfg.adaptive_min_docs and median > 0
                   and score.get("median", 0.0) >= cfg.lang_words_min_median_score)
        out[lang] = {"n": n, "median": round(median, 6), "applies": applies}
    return out


def vouched(texts: pa.Array, langs: list[str], unsure: np.ndarray, cfg: FilterConfig) -> np.ndarray:
    """The `unsure` documents (under their language's minimum score) whose words vouch for their language."""
    out = np.zeros(len(langs), dtype=bool)
    if cfg.lang_words_min_share is None:
        return out
    idx = np.flatnonzero(unsure & np.array([lang in cfg.lang_word_shares for lang in langs], dtype=bool))
    if not idx.size:
        return out
    mine = [langs[i] for i in idx]
    needed = cfg.lang_words_min_share * np.array([cfg.lang_word_shares[lang] for lang in mine])
    out[idx] = shares(texts.take(pa.array(idx)), mine, cfg.langid_max_chars) >= needed
    return out
