"""The labelled shared corpus (../shared/corpus) as benchmarks and tests need it, read with the pipeline's
own reader and cleaned with the clean stage's own batch function, so measurements see what the pipeline sees.
"""
from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import storage
from pipeline.clean.batch import clean_batch
from pipeline.readers import read_file, to_batches
from pipeline.stages import spark_io
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


def write_input_stage(stage: str, docs: list[dict], parts: int, name: str = "clean") -> None:
    """A committed stage directory (`parts` Parquet parts of id + text, stats.json, _SUCCESS), as stage
    `name` leaves it: the input of the stage a benchmark times."""
    attempt = spark_io.begin(stage)
    paths = []
    for k, chunk in enumerate(np.array_split(np.arange(len(docs)), max(1, parts))):
        path = storage.join(stage, spark_io.TEMPORARY, attempt, "data", f"part-{k:05d}-a0.parquet")
        table = pa.table({"id": [docs[i]["id"] for i in chunk], "text": [docs[i]["text"] for i in chunk]})
        with storage.open_output(path) as f:
            pq.write_table(table, f, compression="zstd")
        paths.append(path)
    result = spark_io.WriteResult()
    result.counts[("kept", None)] = len(docs)
    spark_io.commit(stage, attempt, {"kept": paths}, spark_io.stage_stats(name, len(docs), result, 0.0))


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of the rate k/n: where the rate of another corpus drawn the same way
    may fall. A language of 200 originals at 4.5% spans 2.4-8.3%."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
