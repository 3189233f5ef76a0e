"""Parquet input: rows are checked like JSON records; `line` is the 1-based row number in the file."""
from __future__ import annotations

from typing import Iterator

import pyarrow.parquet as pq

from pipeline.readers.records import ReaderConfig, record_from_object, rejected


def read_parquet(source, file_label: str, cfg: ReaderConfig) -> Iterator[dict]:
    """`source` must be seekable (a pyarrow random-access file)."""
    try:
        pf = pq.ParquetFile(source)
    except Exception as e:  # not a Parquet file, truncated footer
        yield rejected(file_label, 1, "invalid_parquet", f"{type(e).__name__}: {e}", b"")
        return
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=4096):
            for obj in batch.to_pylist():
                row += 1
                yield record_from_object(obj, file_label, row, cfg)
    except Exception as e:  # corrupt page in the middle of the file
        yield rejected(file_label, row + 1, "invalid_parquet", f"{type(e).__name__}: {e}", b"")
