"""The node cache: processes of one node racing for a shard fetch it once, an evicted or damaged file is fetched
again, and under real torchrun two nodes of two processes training from a real S3 server (SeaweedFS on
127.0.0.1) each fetch every shard once, to the same loss at every step as with the cache off."""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import tempfile
import time
from functools import partial
from pathlib import Path

import pytest

from s3server import seaweedfs
from synthetic import MODULES, WRAPPER, make_dataset, run_nodes
from trainer.node_cache import NodeCache, cache_directory

URI = "s3://bucket/data/shards/train/shard-000000.tar"
DATA = os.urandom(100_000)
SHA = hashlib.sha256(DATA).hexdigest()


def _slow_read(calls: Path, data: bytes, uri: str) -> bytes:
    """A storage read that records itself and takes long enough for every racer to arrive meanwhile."""
    with open(calls, "a") as f:
        f.write(uri + "\n")
    time.sleep(0.3)
    return data


def _racer(directory: Path, calls: Path, barrier, results) -> None:
    cache = NodeCache(partial(_slow_read, calls, DATA), directory, {URI: SHA})
    barrier.wait()
    data = cache(URI)
    results.put((hashlib.sha256(data).hexdigest(), cache.fetched))


def test_processes_racing_for_one_shard_fetch_it_once_and_all_read_it_whole(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    calls = tmp_path / "calls"
    procs = [ctx.Process(target=_racer, args=(tmp_path / "cache", calls, barrier, results)) for _ in range(3)]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert calls.read_text() == URI + "\n"
    assert sorted(got) == [(SHA, 0), (SHA, 0), (SHA, len(DATA))]
    assert sorted(f.name for f in (tmp_path / "cache").iterdir()) == [f"{SHA}.lock", f"{SHA}.tar"]


def _counting(data: dict[str, bytes], calls: list[str], uri: str) -> bytes:
    calls.append(uri)
    return data[uri]


def test_a_shard_evicted_over_the_budget_or_deleted_is_fetched_again_never_an_error(tmp_path):
    data = {f"s3://b/shard-{i}.tar": os.urandom(1000) for i in range(2)}
    a, b = data
    calls: list[str] = []
    shas = {u: hashlib.sha256(d).hexdigest() for u, d in data.items()}
    cache = NodeCache(partial(_counting, data, calls), tmp_path, shas, budget=1500)
    assert cache(a) == data[a] and cache(a) == data[a] and calls == [a]  # the second read is a hit
    assert cache(b) == data[b]  # a and b would exceed the budget: a, the least recently used, goes
    assert sorted(p.name for p in tmp_path.glob("*.tar")) == [f"{shas[b]}.tar"]
    assert cache(a) == data[a] and calls == [a, b, a]
    (tmp_path / f"{shas[a]}.tar").unlink()  # gone under a reader, e.g. by hand
    assert cache(a) == data[a] and calls == [a, b, a, a]
    assert cache.fetched == 4000


def test_bytes_failing_their_sha256_are_handed_back_uncached_and_a_dead_writers_leftover_is_removed(tmp_path):
    damaged = b"x" + DATA[1:]
    leftover = tmp_path / f"{SHA}.tar.999-1.tmp"
    leftover.write_bytes(DATA[:10])
    calls: list[str] = []
    cache = NodeCache(partial(_counting, {URI: damaged}, calls), tmp_path, {URI: SHA})
    assert cache(URI) == damaged and cache(URI) == damaged and calls == [URI, URI]
    assert not list(tmp_path.glob("*.tar")) and not leftover.exists()
    other = "s3://bucket/data/tokenizer.json"  # no shard of the manifests: read through, counted
    assert NodeCache(partial(_counting, {other: b"{}"}, calls), tmp_path, {URI: SHA})(other) == b"{}"


def test_the_cache_is_on_by_default_only_for_remote_data_read_by_several_processes_per_node(tmp_path):
    remote = ["s3://bucket/run/tokenize/manifest.json"]
    auto = cache_directory("auto", remote, 8)
    assert auto is not None and auto.parent == Path(tempfile.gettempdir())
    assert cache_directory("auto", remote, 4) == auto  # the same data on a node: the same directory
    assert cache_directory("auto", ["s3://other/manifest.json"], 8) != auto
    assert cache_directory("auto", remote, 1) is None
    assert cache_directory("auto", ["/data/manifest.json", "file:///data/b/manifest.json"], 8) is None
    assert cache_directory("none", remote, 8) is None and cache_directory("", remote, 8) is None
    assert cache_directory(str(tmp_path), ["/data/manifest.json"], 1) == tmp_path


# ------------------------------------------------------------------ two nodes of two processes, data on S3

STEPS = 22  # the tiny preset's 16 windows a step: just past the first epoch of the dataset below
ARGS = ["--preset", "tiny", "--steps", str(STEPS), "--eval-every", "0", "--set", "eval.generate_tokens=0"]


@pytest.fixture(scope="module")
def s3_data(tmp_path_factory):
    """A small dataset (two train shards, one val shard) uploaded to s3://BUCKET/data/, and the server."""
    root = tmp_path_factory.mktemp("node_cache")
    manifest = make_dataset(root / "data", modules=MODULES[:8], train_shards=2, val_shards=1)
    with seaweedfs(root / "seaweedfs") as server:
        client = server.client()
        for path in sorted(manifest.parent.rglob("*")):
            if path.is_file():
                client.put_object(Bucket=server.bucket, Key=f"data/{path.relative_to(manifest.parent)}",
                                  Body=path.read_bytes())
        yield server, root, json.loads(manifest.read_text())


def _train(s3_data, name: str, caches: list[str]) -> list[dict]:
    """Train on two nodes of two processes from S3, node n caching in caches[n]; rank 0's metrics rows."""
    server, root, _ = s3_data
    out = root / name
    script = root / "run_trainer.py"
    script.write_text(WRAPPER)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **server.env()}
    data = f"s3://{server.bucket}/data/manifest.json"
    run_nodes(script, [["--data", data, "--out", str(out), *ARGS, "--set", f"data.node_cache={cache}"]
                       for cache in caches], 2, env)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_nodes_fetch_each_shard_once_each_and_train_as_without_the_cache(s3_data, tmp_path):
    server, _, manifest = s3_data
    shards = [s for split in manifest["splits"].values() for s in split["shards"]]
    train = manifest["splits"]["train"]["shards"]
    # Every process reads every shard: each train shard spans whole steps, each rank gets val blocks.
    assert all((s["tokens"] - 1) // 64 >= 16 for s in train)
    assert all(s["tokens"] >= 4 * 64 for s in manifest["splits"]["val"]["shards"])
    # The shards' bytes as the store holds them, measured apart from the manifest and the trainer.
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix="data/shards/")
    stored = sum(o["Size"] for page in pages for o in page["Contents"])

    caches = [tmp_path / "node0", tmp_path / "node1"]
    cached = _train(s3_data, "cached", [str(c) for c in caches])
    direct = _train(s3_data, "direct", ["none", "none"])

    assert [r["step"] for r in cached] == list(range(1, STEPS + 1))
    assert cached[-1]["epochs_by_source"]["data"] > 1  # the second epoch fetched nothing more
    assert cached[-1]["bytes_fetched"] == stored and cached[-1]["bytes_fetched_by_node"] == {"0": stored, "1": stored}
    assert all(a["bytes_fetched"] <= b["bytes_fetched"] for a, b in zip(cached, cached[1:]))
    for cache in caches:  # each node keeps every shard once, by its sha256, and nothing half written
        assert sorted(p.name for p in cache.glob("*.tar")) == sorted(f"{s['sha256']}.tar" for s in shards)
        assert not list(cache.glob("*.tmp"))
    # Without the cache each of a node's two processes fetches every shard itself.
    assert direct[-1]["bytes_fetched_by_node"] == {"0": 2 * stored, "1": 2 * stored}
    assert [r["train_loss"] for r in cached] == [r["train_loss"] for r in direct]
    assert cached[-1]["val_loss"] == direct[-1]["val_loss"]
