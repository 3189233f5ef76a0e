"""Dedupe's decisions applied to a batch of documents: a dropped id gets its reason, every other is kept."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def mark(batch: pa.RecordBatch, dropped: pa.Table | None) -> pa.RecordBatch:
    """`batch` plus `_status` ('kept' | 'dropped') and `_reason` (null when kept), looked up by `id` in
    `dropped` (id, _reason; ids unique), which holds at least the batch's dropped documents."""
    if dropped is None or dropped.num_rows == 0:
        reason = pa.nulls(batch.num_rows, pa.string())
    else:
        at = pc.index_in(batch.column("id"), value_set=dropped.column("id").combine_chunks())
        reason = dropped.column("_reason").combine_chunks().take(at)
    status = pc.if_else(pc.is_null(reason), "kept", "dropped")
    return batch.append_column("_status", status).append_column("_reason", reason)
