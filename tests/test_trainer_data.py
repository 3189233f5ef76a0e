"""The trainer's loader on a small real dataset (tests.synthetic.make_dataset: standard-library docstrings, a
byte-level BPE trained on them, and shards + manifest laid out the way the tokenize stage writes them)."""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.tokenize.shards import ShardError, read_manifest
from synthetic import make_dataset
from trainer.data import ShardStore, TrainWindows, eval_batches, micro_positions


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return read_manifest(str(make_dataset(tmp_path_factory.mktemp("ds"))))


def _windows(manifest, block=64, batch=16, seed=5):
    return TrainWindows(ShardStore(manifest, "train"), block, batch, seed)


def _consumed(windows, steps, world, micro, start_step=0):
    """Global positions' window contents each rank reads, in global order, for a run of `steps` steps."""
    rows = {}
    batch = 16
    for step in range(start_step, start_step + steps):
        for m in range(batch // (micro * world)):
            for r in range(world):
                first = micro_positions(step * batch, m, r, world, micro)
                x, y = windows.batch(first, micro)
                for k in range(micro):
                    rows[first + k] = torch.cat([x[k], y[k, -1:]])
    return rows


def test_windows_are_slices_of_a_shard_stream_with_shifted_targets(manifest):
    w = _windows(manifest)
    x, y = w.batch(0, 8)
    assert x.shape == y.shape == (8, 64) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    (shard, idx), *_ = w.locate(0, 1)
    stream = w.store.stream(shard)
    assert x[0].tolist() == stream[idx[0] * 64 : idx[0] * 64 + 64].tolist()


def test_an_epoch_visits_every_window_once_in_an_order_fixed_by_seed_and_epoch(manifest):
    w = _windows(manifest)
    seen = [(s, int(i)) for p in range(0, w.epoch_length, 16) for s, idx in w.locate(p, 16) for i in idx]
    assert len(seen) == len(set(seen)) == w.epoch_length
    again = _windows(manifest)
    assert [(s, i.tolist()) for s, i in again.locate(32, 16)] == [(s, i.tolist()) for s, i in w.locate(32, 16)]
    next_epoch = [(s, i.tolist()) for s, i in w.locate(w.epoch_length, 16)]
    assert next_epoch != [(s, i.tolist()) for s, i in w.locate(0, 16)]
    other_seed = _windows(manifest, seed=6)
    assert [(s, i.tolist()) for s, i in other_seed.locate(0, 16)] != [(s, i.tolist()) for s, i in w.locate(0, 16)]


def test_global_order_is_the_same_for_any_world_size(manifest):
    one = _consumed(_windows(manifest), steps=6, world=1, micro=4)
    two = _consumed(_windows(manifest), steps=6, world=2, micro=4)
    four = _consumed(_windows(manifest), steps=6, world=4, micro=2)
    assert sorted(one) == list(range(6 * 16))
    for other in (two, four):
        assert sorted(other) == sorted(one)
        assert all(torch.equal(one[p], other[p]) for p in one)


def test_resume_from_world_1_to_2_continues_the_order_without_repeats_or_gaps(manifest):
    w1 = _windows(manifest)
    before = _consumed(w1, steps=5, world=1, micro=4)
    state = w1.state(5 * 16)
    w2 = _windows(manifest)
    assert w2.position(state) == 5 * 16
    after = _consumed(w2, steps=5, world=2, micro=4, start_step=5)
    uninterrupted = _consumed(_windows(manifest), steps=10, world=2, micro=4)
    assert set(before).isdisjoint(after)
    assert sorted({**before, **after}) == sorted(uninterrupted)
    assert all(torch.equal({**before, **after}[p], uninterrupted[p]) for p in uninterrupted)


def test_every_token_of_the_val_split_is_a_target_exactly_once_across_ranks(manifest):
    store = ShardStore(manifest, "val")
    for world in (1, 3):
        targets = []
        for rank in range(world):
            for x, y in eval_batches(store, 64, 5, rank, world):
                targets.append(y[y != -1])
        assert sum(len(t) for t in targets) == manifest.splits["val"].tokens
    stream0 = store.stream(0)
    x, y = next(eval_batches(store, 64, 1, 0, 1))
    assert x[0, 0].item() == manifest.eos_id
    assert y[0].tolist() == stream0[:64].tolist()


def test_a_corrupted_shard_stops_the_loader_with_its_name(tmp_path):
    m = make_dataset(tmp_path)
    shard = tmp_path / "shards" / "train" / "shard-000001.tar"
    data = bytearray(shard.read_bytes())
    data[2000] ^= 0x01
    shard.write_bytes(bytes(data))
    store = ShardStore(read_manifest(str(m)), "train")
    with pytest.raises(ShardError, match=r"shards/train/shard-000001\.tar: sha256 mismatch"):
        for i in range(len(store.shards)):
            store.stream(i)


def _flip_a_byte(shard: Path) -> None:
    data = bytearray(shard.read_bytes())
    data[2000] ^= 0x01
    shard.write_bytes(bytes(data))


def test_a_truncated_shard_read_without_sha256_checks_stops_the_loader_with_its_name(tmp_path):
    m = make_dataset(tmp_path)
    shard = tmp_path / "shards" / "train" / "shard-000001.tar"
    data = shard.read_bytes()
    with tarfile.open(shard) as tar:
        end = max(info.offset_data + info.size for info in tar)  # past this only the tar's zero padding follows
    store = ShardStore(read_manifest(str(m)), "train", verify=False)
    for cut in range(1, end, 331):  # inside headers, .json and .npy members alike
        shard.write_bytes(data[:cut])
        with pytest.raises(ShardError, match=r"shards/train/shard-000001\.tar"):
            store.stream(1)
    shard.write_bytes(data[: end - 1])
    with pytest.raises(ShardError, match=r"shards/train/shard-000001\.tar: truncated"):
        store.stream(1)


def test_skipping_a_bad_shard_fills_its_windows_with_ignored_targets_and_leaves_the_rest_alone(tmp_path):
    m = make_dataset(tmp_path)
    manifest = read_manifest(str(m))
    intact = TrainWindows(ShardStore(manifest, "train"), 64, 16, 5)
    expected = [intact.batch(p, 16) for p in range(0, intact.epoch_length, 16)]
    _flip_a_byte(tmp_path / "shards" / "train" / "shard-000001.tar")
    with pytest.raises(ShardError, match="shard-000001.tar: sha256 mismatch"):
        TrainWindows(ShardStore(manifest, "train"), 64, 16, 5).store.stream(1)

    skipping = TrainWindows(ShardStore(manifest, "train", on_bad_shard="skip"), 64, 16, 5)
    filler = 0
    for p, (want_x, want_y) in zip(range(0, skipping.epoch_length, 16), expected):
        x, y = skipping.batch(p, 16)
        bad = torch.from_numpy(np.concatenate([np.full(len(idx), s == 1) for s, idx in skipping.locate(p, 16)]))
        assert x.shape == y.shape == (16, 64)
        assert torch.equal(x[~bad], want_x[~bad]) and torch.equal(y[~bad], want_y[~bad])
        assert (x[bad] == manifest.eos_id).all() and (y[bad] == -1).all()
        filler += int(bad.sum())
    assert filler == skipping.per_shard[1] and skipping.store.skipped == {1}
