"""fastText models by path or URI, loaded once per process.

The language-ID model and the quality classifier are both fastText models that a config names by path
or URI (s3://, hdfs://). Spark's Python workers are long-lived, so every batch after a worker's first
reuses the model it loaded.
"""
from __future__ import annotations

import os
import tempfile

import pyarrow.fs as pafs

from pipeline import storage

_MODELS: dict[str, object] = {}


def load_model(uri: str):
    """The fastText model at `uri`; a remote model is copied to a local temp file first (fastText reads
    only local files)."""
    if uri not in _MODELS:
        import fasttext

        fs, path = storage.resolve(uri)
        if isinstance(fs, pafs.LocalFileSystem):
            _MODELS[uri] = fasttext.load_model(path)
        else:
            fd, local = tempfile.mkstemp(suffix=os.path.splitext(path)[1])
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(storage.read_bytes(uri))
                _MODELS[uri] = fasttext.load_model(local)
            finally:
                os.unlink(local)
    return _MODELS[uri]
