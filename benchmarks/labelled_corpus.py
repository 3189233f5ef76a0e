"""The labelled shared corpus (../shared/corpus) as benchmarks and tests need it, read with the pipeline's
own reader and cleaned with the clean stage's own batch function, so measurements see what the pipeline sees.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from pipeline.clean.batch import clean_batch
from pipeline.readers import read_file, to_batches
from pipeline.stages.config import CleanConfig

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def labels(root: Path = DEFAULT) -> dict[str, dict]:
    """Label rows by document id (malformed lines without an id are left out)."""
    out = {}
    with gzip.open(root / "labels" / "docs.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            label = json.loads(line)
            if label["id"] is not None:
                out[label["id"]] = label
    return out


def documents(root: Path = DEFAULT, shards: str = "docs-*.jsonl.gz", cleaned: bool = False) -> Iterator[dict]:
    """Every record the reader keeps (id, text, source, url, created, file, line); with `cleaned`, text as
    the clean stage leaves it and documents it would drop left out."""
    cfg = CleanConfig()
    for path in sorted((root / "raw").glob(shards)):
        records = read_file(str(path), f"raw/{path.name}", cfg.reader, cfg.html)
        for batch in to_batches(records):
            if cleaned:
                batch, _ = clean_batch(batch, cfg)
            for row in pa.Table.from_batches([batch]).to_pylist():
                if row["_status"] == "kept":
                    yield row
