"""Ids unique within a stage's output. Later stages key documents by id (dedupe's decisions, the shard and
split assignment), so two different documents under one id would be taken for one: dedupe would drop the
second as a duplicate of the first whatever its text."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def derived_ids(ids: pa.Array, duplicated: pa.Array, files: pa.Array, lines: pa.Array) -> pa.Array:
    """`ids` with every id found in `duplicated` replaced by `ID@FILE#LINE`, from each document's own input
    file and line (row, record): unique, stable for the same input whatever the split of the input into
    tasks, and it says where the document came from."""
    hit = pc.is_in(ids, value_set=duplicated)
    if not pc.any(hit).as_py():
        return ids
    derived = pc.binary_join_element_wise(ids, pa.scalar("@"), files, pa.scalar("#"), pc.cast(lines, pa.string()), "")
    return pc.if_else(hit, derived, ids)
