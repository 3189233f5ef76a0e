"""Parquet input: rows are checked like JSON records; `line` is the 1-based row number in the file.

Damage stays local: a row that cannot be converted is rejected alone, and a row group that cannot be read
rejects each of its rows not yet read, then the next row group is read."""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.readers.records import ReaderConfig, record_from_object, rejected

BATCH_ROWS = 4096


def _error(e: Exception) -> str:
    return f"{type(e).__name__}: {e}"


def _rows(batch: pa.RecordBatch, first_line: int, file_label: str, cfg: ReaderConfig) -> Iterator[dict]:
    """The batch's records; converted row by row only when the batch as a whole does not convert."""
    try:
        objs = batch.to_pylist()
    except Exception:  # e.g. invalid UTF-8 in a string column (Parquet readers do not validate it)
        objs = None
    if objs is not None:
        for i, obj in enumerate(objs):
            yield record_from_object(obj, file_label, first_line + i, cfg)
        return
    for i in range(batch.num_rows):
        try:
            obj = batch.slice(i, 1).to_pylist()[0]
        except UnicodeDecodeError as e:
            yield rejected(file_label, first_line + i, "invalid_utf8", _error(e), b"")
        except Exception as e:
            yield rejected(file_label, first_line + i, "invalid_parquet", _error(e), b"")
        else:
            yield record_from_object(obj, file_label, first_line + i, cfg)


def read_parquet(source, file_label: str, cfg: ReaderConfig) -> Iterator[dict]:
    """`source` must be seekable (a pyarrow random-access file)."""
    try:
        pf = pq.ParquetFile(source)
    except Exception as e:  # not a Parquet file, truncated footer
        yield rejected(file_label, 1, "invalid_parquet", _error(e), b"")
        return
    done = 0  # rows yielded so far
    for group in range(pf.num_row_groups):
        end = done + pf.metadata.row_group(group).num_rows
        try:
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[group]):
                yield from _rows(batch, done + 1, file_label, cfg)
                done += batch.num_rows
        except Exception as e:  # corrupt page: the rest of this row group is lost, not the rest of the file
            detail = f"row group {group}: {_error(e)}"
            for line in range(done + 1, end + 1):
                yield rejected(file_label, line, "invalid_parquet", detail, b"")
        done = end
