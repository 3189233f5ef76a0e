"""Packed samples vs one sample per document: tar overhead and read throughput of the same tokens.

The corpus's cleaned documents are encoded once (a 32,768-token byte-level BPE trained on a seeded sample)
and written twice with the pipeline's own `write_shard`: packed into fixed 2,048-token samples
(`pack_documents`, the tokenize stage's format) and one sample per document. Both are read back with a plain
`webdataset.WebDataset(...).decode()` iteration (what a user's own code does) and with the trainer's
`iter_shard`, in one run.

    .venv/bin/python benchmarks/sample_format.py [--shards 'docs-0[0-3].jsonl.gz']
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks import labelled_corpus  # noqa: E402
from pipeline import evaluate  # noqa: E402
from pipeline.tokenize.shards import iter_shard, pack_documents, write_shard  # noqa: E402
from pipeline.tokenize.tokenizer import encode_texts, train_bpe  # noqa: E402

SHARD_TOKENS = 4_000_000  # ~8 MB of uint16 tokens per shard


def write(root: Path, docs: list[tuple[str, np.ndarray]], packed: bool, sample_tokens: int) -> list[Path]:
    """Shards of about SHARD_TOKENS tokens each, in the given format."""
    paths, start = [], 0
    while start < len(docs):
        end, size = start, 0
        while end < len(docs) and size < SHARD_TOKENS:
            size += len(docs[end][1])
            end += 1
        chunk = docs[start:end]
        samples = (pack_documents(chunk, sample_tokens) if packed else
                   ((tokens, {"ids": [doc_id], "spans": [[0, len(tokens)]]}) for doc_id, tokens in chunk))
        path = root / f"shard-{len(paths):06d}.tar"
        with open(path, "wb") as f:
            write_shard(f, samples, len(paths), np.uint16)
        paths.append(path)
        start = end
    return paths


def read_webdataset(paths: list[Path]) -> tuple[float, int, int]:
    import webdataset as wds

    start, tokens, samples = time.perf_counter(), 0, 0
    for sample in wds.WebDataset([str(p) for p in paths], shardshuffle=False).decode():
        tokens += len(sample["tokens.npy"])
        samples += 1
    return time.perf_counter() - start, tokens, samples


def read_ours(paths: list[Path]) -> tuple[float, int, int]:
    start, tokens, samples = time.perf_counter(), 0, 0
    for p in paths:
        for _, array, _ in iter_shard(p.read_bytes(), p.name):
            tokens += len(array)
            samples += 1
    return time.perf_counter() - start, tokens, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(labelled_corpus.DEFAULT))
    ap.add_argument("--shards", default="docs-0[0-3].jsonl.gz", help="glob of raw shards under CORPUS/raw")
    ap.add_argument("--sample-tokens", type=int, default=2048)
    args = ap.parse_args()

    docs = [(d["id"], d["text"]) for d in evaluate.documents(Path(args.corpus), args.shards, cleaned=True)]
    tok = train_bpe((t[:20_000] for _, t in docs[::4]), 32_768)
    encoded = []
    for i in range(0, len(docs), 1024):
        chunk = docs[i:i + 1024]
        encoded += zip((d for d, _ in chunk), encode_texts(tok, [t for _, t in chunk], np.uint16))
    n_tokens = sum(len(t) for _, t in encoded)
    print(f"{len(encoded):,} documents, {n_tokens:,} tokens ({args.shards}); median document "
          f"{int(np.median([len(t) for _, t in encoded])):,} tokens\n")
    print("| format | samples | tar bytes per token byte | webdataset tokens/s | iter_shard tokens/s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, packed in ((f"packed, {args.sample_tokens} tokens", True), ("one sample per document", False)):
            root = Path(tmp) / ("packed" if packed else "per-doc")
            root.mkdir()
            paths = write(root, encoded, packed, args.sample_tokens)
            size = sum(p.stat().st_size for p in paths)
            wds_s, wds_tokens, samples = read_webdataset(paths)
            ours_s, ours_tokens, _ = read_ours(paths)
            assert wds_tokens == ours_tokens == n_tokens
            print(f"| {name} | {samples:,} | {size / (2 * n_tokens):.3f} | {n_tokens / wds_s / 1e6:.1f}M | "
                  f"{n_tokens / ours_s / 1e6:.1f}M |")


if __name__ == "__main__":
    main()
