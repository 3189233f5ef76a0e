"""Which member of a duplicate cluster is kept: the first publication, at its canonical address.

Copies of a page are usually published after it (syndication, scrapers, mirrors) and often under an
address variant of its URL: a query string (tracking, sharing, paging, AMP parameters) or a mobile or AMP
host. So every cluster keeps the member with the smallest *keep key*, which orders documents by

1. `created` (its first ten characters when they are an ISO date `YYYY-MM-DD`; unknown dates last),
2. the number of copy signs in its `url` (a query string; an `m.`, `amp.` or `mobile.` host),
3. `id` (string order), so that the choice is total and does not depend on partitioning.

The key is one string, `DATE + SIGNS + id`, with a fixed-width prefix, so comparing keys compares
documents by the three criteria at once (Spark: `min_by("id", "key")`).
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

COLUMNS = ("created", "url")  # document columns the key reads besides id; a missing one counts as unknown
UNKNOWN_DATE = "9999-99-99"
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
QUERY = r"^[^#]*\?"
COPY_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/@]*@)?(?:m|amp|mobile)\."


def keep_keys(batch: pa.RecordBatch) -> pa.Array:
    """The keep key of every document in `batch` (columns id and, if present, created and url)."""
    created, url = (_strings(batch, name) for name in COLUMNS)

    date = pc.utf8_slice_codeunits(created, 0, len(UNKNOWN_DATE))
    date = pc.if_else(pc.fill_null(pc.match_substring_regex(date, ISO_DATE), False), date, UNKNOWN_DATE)
    signs = pc.add(_flag(url, QUERY), _flag(url, COPY_HOST))
    return pc.binary_join_element_wise(date, pc.cast(signs, pa.string()), batch.column("id"), "")


def _strings(batch: pa.RecordBatch, name: str) -> pa.Array:
    if name not in batch.schema.names:
        return pa.nulls(batch.num_rows, pa.string())
    return pc.cast(batch.column(name), pa.string())


def _flag(url: pa.Array, pattern: str) -> pa.Array:
    return pc.cast(pc.fill_null(pc.match_substring_regex(url, pattern), False), pa.int8())
