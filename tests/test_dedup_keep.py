"""The keep rule: which member of a duplicate cluster is kept (`pipeline.dedup.keep`)."""
from __future__ import annotations

import pyarrow as pa

from pipeline.dedup.keep import keep_keys


def ranked(rows: list[tuple]) -> list[str]:
    """ids of (id, created, url) rows in keep order, most preferred first."""
    ids, created, urls = zip(*rows)
    batch = pa.RecordBatch.from_pydict({"id": list(ids), "created": list(created), "url": list(urls)})
    return [k.as_py()[-1] for k in sorted(keep_keys(batch), key=lambda k: k.as_py())]


def test_the_earliest_publication_comes_first_and_an_unknown_or_malformed_date_last():
    assert ranked([("a", "2021-03-01", None), ("b", "2019-12-31T23:00:00Z", None), ("c", None, None),
                   ("d", "March 2001", None), ("e", "2020-01-01", None)]) == ["b", "e", "a", "c", "d"]


def test_on_the_same_date_a_canonical_url_beats_a_query_string_or_a_mobile_or_amp_host():
    day = "2020-05-05"
    assert ranked([("a", day, "https://m.example.org/story?utm_source=x"),
                   ("b", day, "https://example.org/story?amp=1"),
                   ("c", day, "https://amp.example.org/story"),
                   ("d", day, "https://example.org/story"),
                   ("e", day, "https://example.org/story#comments")]) == ["d", "e", "b", "c", "a"]


def test_otherwise_the_smallest_id_is_kept_and_missing_columns_count_as_unknown():
    assert ranked([("b", None, None), ("a", None, None)]) == ["a", "b"]
    only_ids = pa.RecordBatch.from_pydict({"id": ["x1", "x0"], "text": ["t", "t"]})
    keys = keep_keys(only_ids).to_pylist()
    assert sorted(keys) == [keys[1], keys[0]] and all(k.endswith(i) for k, i in zip(keys, ["x1", "x0"]))
