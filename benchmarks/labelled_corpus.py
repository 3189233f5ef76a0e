"""Where the benchmarks find the labelled shared corpus, and how they commit a stage directory of its
documents as the input of the stage they time. Reading it and scoring against its labels is
pipeline.evaluate's, which the tests share."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import storage
from pipeline import stagedir

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def write_input_stage(stage: str, docs: list[dict], parts: int, name: str = "clean") -> None:
    """A committed stage directory (`parts` Parquet parts of id + text, stats.json, _SUCCESS), as stage
    `name` leaves it: the input of the stage a benchmark times."""
    attempt = stagedir.begin(stage)
    paths = []
    for k, chunk in enumerate(np.array_split(np.arange(len(docs)), max(1, parts))):
        path = storage.join(stage, stagedir.TEMPORARY, attempt, "data", f"part-{k:05d}-a0.parquet")
        table = pa.table({"id": [docs[i]["id"] for i in chunk], "text": [docs[i]["text"] for i in chunk]})
        with storage.open_output(path) as f:
            pq.write_table(table, f, compression="zstd")
        paths.append(path)
    result = stagedir.WriteResult()
    result.counts[("kept", None)] = len(docs)
    stagedir.commit(stage, attempt, {"kept": paths}, stagedir.stage_stats(name, len(docs), result, 0.0))
