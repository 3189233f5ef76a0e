"""Parquet input: rows are checked like JSON records; `line` is the 1-based row number in the file, also
when a task reads only some of its row groups (a byte range, pipeline/readers/splits.py).

Damage stays local: a row that cannot be converted is rejected alone, and a row group that cannot be read
rejects each of its rows not yet read, then the next row group is read."""
from __future__ import annotations

import itertools
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.readers.records import ReaderConfig, record_from_object, rejected
from pipeline.readers.splits import row_groups_in

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


def read_parquet(source, file_label: str, cfg: ReaderConfig, byte_range: tuple[int, int] | None = None,
                 tally=None) -> Iterator[dict]:
    """The rows of the whole file, or of the row groups centred in `byte_range`. `source` must be seekable
    (a pyarrow random-access file). `tally` (pipeline.readers.Tally) counts the rows the footer gives the
    groups read."""
    try:
        pf = pq.ParquetFile(source)
    except Exception as e:  # not a Parquet file, truncated footer: reported once, by the file's first range
        if byte_range is None or byte_range[0] == 0:
            if tally is not None:
                tally.units += 1
            yield rejected(file_label, 1, "invalid_parquet", _error(e), b"")
        return
    meta = pf.metadata
    groups = range(meta.num_row_groups) if byte_range is None else row_groups_in(meta, *byte_range)
    starts = [0, *itertools.accumulate(meta.row_group(g).num_rows for g in range(meta.num_row_groups))]
    for group in groups:
        done, end = starts[group], starts[group + 1]  # rows of the file before this group, and after it
        if tally is not None:
            tally.units += end - done
        try:
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[group]):
                yield from _rows(batch, done + 1, file_label, cfg)
                done += batch.num_rows
        except Exception as e:  # corrupt page: the rest of this row group is lost, not the rest of the file
            detail = f"row group {group}: {_error(e)}"
            for line in range(done + 1, end + 1):
                yield rejected(file_label, line, "invalid_parquet", detail, b"")
