"""Loader throughput: tokens/s of trainer.data (per process) beside a plain webdataset iteration of the same shards.

    .venv/bin/python benchmarks/loader_throughput.py [--data manifest.json] [--block-size 1024] [--micro-batch 16]

Without --data it writes synthetic shards (random uint16 tokens) to a temporary directory first. Both sides
count the tokens they hand out; the trainer's side includes fetching, sha256 checks, decoding and building
int64 input/target tensors, webdataset's side includes reading and decoding every sample's .npy.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.tokenize.shards import build_manifest, read_manifest, write_shard  # noqa: E402
from trainer.data import ShardStore, TrainWindows  # noqa: E402


def synthetic(root: Path, shards: int, tokens_per_shard: int, sample_tokens: int) -> Path:
    rng = np.random.default_rng(0)
    records = []
    for i in range(shards):
        tokens = rng.integers(0, 50257, size=tokens_per_shard, dtype=np.uint16)
        samples = ((tokens[s : s + sample_tokens], {"ids": [f"d{i}-{s}"], "spans": [[0, min(sample_tokens, tokens_per_shard - s)]]})
                   for s in range(0, tokens_per_shard, sample_tokens))
        url = f"shards/train/shard-{i:06d}.tar"
        (root / url).parent.mkdir(parents=True, exist_ok=True)
        with open(root / url, "wb") as f:
            info = write_shard(f, samples, i, np.uint16)
        records.append({**info, "url": url, "documents": info["samples"], "text_bytes": 4 * info["tokens"]})
    manifest = build_manifest(tokenizer={"path": "tokenizer.json", "sha256": "", "vocab_size": 50257, "eos_id": 50256},
                              dtype=np.uint16, sample_tokens=sample_tokens, seed=0, splits={"train": records})
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root / "manifest.json"


def ours(manifest_uri: str, block: int, micro: int) -> float:
    manifest = read_manifest(manifest_uri)
    windows = TrainWindows(ShardStore(manifest, "train"), block, micro, seed=0)
    n = 0
    t0 = time.perf_counter()
    for position in range(0, windows.epoch_length, micro):
        x, _ = windows.batch(position, micro)
        n += x.numel()
    windows.store.close()
    return n / (time.perf_counter() - t0)


def plain_webdataset(manifest_uri: str) -> float:
    import webdataset as wds

    manifest = read_manifest(manifest_uri)
    urls = [manifest.resolve(s.url) for s in manifest.splits["train"].shards]
    n = 0
    t0 = time.perf_counter()
    for sample in wds.WebDataset(urls, shardshuffle=False).decode():
        n += len(sample["tokens.npy"])
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="manifest.json to read (default: synthetic shards in a temporary directory)")
    p.add_argument("--shards", type=int, default=8, help="synthetic shards")
    p.add_argument("--tokens-per-shard", type=int, default=2_000_000, help="synthetic tokens per shard")
    p.add_argument("--sample-tokens", type=int, default=2049)
    p.add_argument("--block-size", type=int, default=1024)
    p.add_argument("--micro-batch", type=int, default=16)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = args.data or str(synthetic(Path(tmp), args.shards, args.tokens_per_shard, args.sample_tokens))
        plain = plain_webdataset(uri)
        loader = ours(uri, args.block_size, args.micro_batch)
    print(f"plain webdataset: {plain / 1e6:8.2f} M tokens/s")
    print(f"trainer.data:     {loader / 1e6:8.2f} M tokens/s per process (block {args.block_size}, micro {args.micro_batch})")
    print(f"ratio:            {loader / plain:8.1f}x")


if __name__ == "__main__":
    main()
