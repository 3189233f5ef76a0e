"""Which languages mark the ends of their sentences at all, from the run's own documents.

FineWeb's line-punctuation rule drops a document few of whose lines end a sentence. Thai, Lao, Burmese and
Tibetan text often separates sentences with a space instead of a mark, and FineWeb-2, which derived its
thresholds per language from its data, set the rule's threshold to 0 for them. Here the run's documents say
it for every language: where most documents of a language (of at least `adaptive_min_docs`) end none of
their lines with a sentence mark, the language does not mark its sentence ends and the rule tells nothing
about its documents' quality, so it does not apply to that language. The filter stage counts the ratios in fixed bins per language in its first
pass (only the counts reach the driver).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.filter.text import PICTOGRAPH_RUN, STAND_IN, TERMINALS

RATIO_BINS = 100
_MARKS = pa.array(sorted(TERMINALS), pa.string())
_TRAILING = PICTOGRAPH_RUN.pattern + "$"  # what the rules look past at a line's end


def line_end_ratios(texts: pa.Array) -> np.ndarray:
    """Per document, the share of its non-empty lines that end with a sentence mark as the rules see one
    (`text.TERMINALS` or a script's typed stand-in, past emoji and invisible marks); NaN for a document
    without a line."""
    lines = pc.split_pattern(texts, "\n")
    parents = pc.list_parent_indices(lines).to_numpy()
    trimmed = pc.replace_substring_regex(pc.list_flatten(lines), _TRAILING, "")
    trimmed = pc.utf8_trim_whitespace(trimmed)
    present = pc.greater(pc.utf8_length(trimmed), 0).to_numpy(zero_copy_only=False)
    marked = pc.or_(pc.is_in(pc.utf8_slice_codeunits(trimmed, -1), value_set=_MARKS),
                    pc.match_substring_regex(trimmed, STAND_IN.pattern)).to_numpy(zero_copy_only=False)
    n = len(texts)
    n_lines = np.bincount(parents[present], minlength=n)
    n_marked = np.bincount(parents[present & marked], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_lines > 0, n_marked / np.maximum(n_lines, 1), np.nan)


def ratio_histogram(ratios: np.ndarray, bins: int = RATIO_BINS) -> np.ndarray:
    """Counts of the (non-NaN) `ratios` in `bins` equal bins over [0, 1] (1.0 falls in the last)."""
    ratios = ratios[~np.isnan(ratios)]
    return np.bincount(np.minimum((ratios * bins).astype(np.int64), bins - 1), minlength=bins).astype(np.int64)


def line_end_stats(hists: dict[str, np.ndarray], min_docs: int, line_punct_thr: dict[str, float | None]) -> dict[str, dict]:
    """Per language: n, the median ratio (at its bin's lower edge) and whether the line-punctuation rule
    applies. It does not where the language has `min_docs` documents and more than half of them end
    (practically) none of their lines with a mark (their ratio is in the first bin): the language does not
    mark its sentence ends. A language whose pages are mostly menus around a few sentences (German web
    pages: median 0.06 on the shared corpus) still marks them, and keeps the rule."""
    out = {}
    for lang in sorted(hists):
        hist = hists[lang]
        n = int(hist.sum())
        median = float(np.searchsorted(np.cumsum(hist), (n + 1) / 2)) / RATIO_BINS if n else 0.0
        unmarked = n >= min_docs and line_punct_thr.get(lang) is not None and hist[0] > n / 2
        out[lang] = {"n": n, "median": round(median, 6), "line_punct_rule": not unmarked}
    return out
