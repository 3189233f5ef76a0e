"""How many Rust threads the tokenize stage gives each shard's encoding task."""
from __future__ import annotations

from pipeline.stages.tokenize import _encode_threads


def test_one_big_train_shard_encodes_on_every_core_and_the_small_val_shard_on_one():
    totals = {"train": (11_000, 34_000_000), "val": (120, 380_000)}
    assert _encode_threads(totals, {"train": 1, "val": 1}, cores=2) == {"train": 2, "val": 1}


def test_many_even_shards_get_one_thread_each_so_cores_are_not_oversubscribed():
    totals = {"train": (990_000, 3_000_000_000), "val": (10_000, 30_000_000)}
    assert _encode_threads(totals, {"train": 45, "val": 1}, cores=8) == {"train": 1, "val": 1}


def test_threads_never_exceed_the_executor_cores():
    assert _encode_threads({"train": (10, 1000)}, {"train": 1}, cores=4) == {"train": 4}
