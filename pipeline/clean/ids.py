"""Ids unique within a stage's output. Later stages key documents by id (dedupe's decisions, the shard and
split assignment), so two different documents under one id would be taken for one: dedupe would drop the
second as a duplicate of the first whatever its text."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def derived_ids(ids: pa.Array, duplicated: pa.Array, label: str) -> pa.Array:
    """`ids` with every id found in `duplicated` replaced by `ID@LABEL#ROW`, ROW the 1-based position in
    `ids` (the kept documents of the input file `label`, in line order): unique, stable for the same input
    and config, and it names the file a document came from."""
    hit = pc.is_in(ids, value_set=duplicated)
    if not pc.any(hit).as_py():
        return ids
    rows = pa.array(np.arange(1, len(ids) + 1).astype(str), type=pa.string())
    derived = pc.binary_join_element_wise(ids, pa.scalar(f"@{label}#"), rows, "")
    return pc.if_else(hit, derived, ids)
