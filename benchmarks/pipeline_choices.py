"""The measurements behind two pipeline defaults, on the cleaned shared corpus, side by side in one run.

`tokenizer`: bytes per token on held-out documents of 32,768-token BPEs trained on the first 5k/10k/20k
documents of a seeded order (each cut to 20,000 characters, as `tokenize.train_chars_per_doc`), with the
training time (one Rust thread): how small `tokenize.train_docs` can be.
`codec`: write and read time and size of the cleaned documents as Parquet with each codec: what the
intermediate stages' zstd costs per MB.

    .venv/bin/python benchmarks/pipeline_choices.py tokenizer|codec [--shards 'docs-*.jsonl.gz']
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import time
from pathlib import Path

os.environ["RAYON_NUM_THREADS"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from benchmarks import labelled_corpus  # noqa: E402
from pipeline import evaluate  # noqa: E402
from pipeline.tokenize.tokenizer import train_bpe  # noqa: E402


def tokenizer(docs: list[dict], sizes: list[int], held_out: int) -> None:
    docs = sorted(docs, key=lambda d: (hashlib.blake2b(f"1234:{d['id']}".encode(), digest_size=8).digest(), d["id"]))
    held = [d["text"] for d in docs[-held_out:]]
    held_bytes = sum(len(t.encode("utf-8")) for t in held)
    print(f"held out: the last {len(held):,} documents of the order, {held_bytes / 1e6:.1f} MB\n")
    print("| train_docs | sample MB | training s (1 thread) | held-out bytes per token |\n|---|---|---|---|")
    for n in sizes:
        sample = [d["text"][:20_000] for d in docs[:n]]
        start = time.perf_counter()
        tok = train_bpe(sample, 32_768)
        seconds = time.perf_counter() - start
        tokens = sum(len(e.ids) for e in tok.encode_batch(held, add_special_tokens=False))
        print(f"| {n:,} | {sum(len(t.encode('utf-8')) for t in sample) / 1e6:.1f} | {seconds:.1f} | {held_bytes / tokens:.4f} |")


def codec(docs: list[dict], rounds: int = 3) -> None:
    table = pa.table({k: [d[k] for d in docs] for k in ("id", "text", "source", "url", "created")})
    mb = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    print(f"{len(docs):,} documents, {mb:.1f} MB of text, batches of 2,048 rows as the part writer gets them\n")
    print("| codec | file MB | write ms per MB | read ms per MB |\n|---|---|---|---|")
    for name, level in (("zstd", None), ("zstd", 3), ("snappy", None), ("lz4", None), ("none", None)):
        write = read = 0.0
        for _ in range(rounds):
            buf = io.BytesIO()
            start = time.perf_counter()
            with pq.ParquetWriter(buf, table.schema, compression=name, compression_level=level) as writer:
                for batch in table.to_batches(2048):
                    writer.write_batch(batch)
            write += time.perf_counter() - start
            data = buf.getvalue()
            start = time.perf_counter()
            for _ in pq.ParquetFile(io.BytesIO(data)).iter_batches(batch_size=2048):
                pass
            read += time.perf_counter() - start
        label = name if level is None else f"{name} level {level}"
        print(f"| {label} | {len(data) / 1e6:.1f} | {write / rounds / mb * 1e3:.1f} | {read / rounds / mb * 1e3:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("tokenizer", "codec"))
    ap.add_argument("--corpus", default=str(labelled_corpus.DEFAULT))
    ap.add_argument("--shards", default="docs-*.jsonl.gz")
    ap.add_argument("--sizes", default="5000,10000,20000", help="tokenizer: train_docs values")
    ap.add_argument("--held-out", type=int, default=10_000, help="tokenizer: documents kept out of every sample")
    args = ap.parse_args()
    docs = list(evaluate.documents(Path(args.corpus), args.shards, cleaned=True))
    if args.what == "tokenizer":
        sizes = [int(s) for s in args.sizes.split(",")]
        if max(sizes) + args.held_out > len(docs):
            sys.exit(f"{len(docs)} documents: too few for a sample of {max(sizes)} and {args.held_out} held out")
        tokenizer(docs, sizes, args.held_out)
    else:
        codec(docs)


if __name__ == "__main__":
    main()
