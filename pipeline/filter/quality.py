"""A fastText quality classifier as a filter: score each document, drop those below a threshold.

Any supervised fastText model works (`jobs/train_quality.py` trains one). The score of a document is the
probability the model gives its positive label. The model is loaded once per process and URI
(`fasttext_models.load_model`) and predicts one batch per call, on the same newline-free prefix of each
text that training saw (`model_input`).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import storage
from pipeline.filter.config import QualityConfig
from pipeline.filter.fasttext_models import load_model

REASON = "quality_classifier"


def check_model(cfg: QualityConfig) -> None:
    """Fail before any Spark task runs when the model is missing or lacks the configured label."""
    if not storage.exists(cfg.model):
        raise ValueError(f"filter.quality.model {cfg.model} does not exist")
    labels = load_model(cfg.model).get_labels()
    if cfg.label not in labels:
        raise ValueError(f"filter.quality.label {cfg.label!r} is not a label of {cfg.model} (it has {', '.join(labels)})")


def model_input(texts: pa.Array | pa.ChunkedArray, max_chars: int) -> list[str]:
    """The text fastText sees: the first `max_chars` characters, newlines as spaces (fastText takes one line
    per input and splits words on any ASCII whitespace itself). Arrow kernels do it for the whole batch."""
    prefix = pc.utf8_slice_codeunits(pc.fill_null(texts, ""), 0, max_chars)
    return pc.replace_substring(prefix, "\n", " ").to_pylist()


def scores(texts: pa.Array | pa.ChunkedArray, cfg: QualityConfig) -> np.ndarray:
    """Probability of `cfg.label` for each text, as float32 (0 where the model does not output it)."""
    if len(texts) == 0:
        return np.zeros(0, dtype=np.float32)
    labels, probs = load_model(cfg.model).predict(model_input(texts, cfg.max_chars), k=-1)
    out = np.zeros(len(labels), dtype=np.float32)
    for i, (labs, ps) in enumerate(zip(labels, probs)):
        if cfg.label in labs:
            out[i] = ps[labs.index(cfg.label)]
    return np.minimum(out, 1.0)
