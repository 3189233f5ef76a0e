"""Tokenize throughput: the Spark tokenize stage vs bare `encode_batch` on the same documents in one run,
plus bytes per token per language.

One 32,768-token byte-level BPE is trained up front on a seeded sample and given to both sides, so no
training is timed. `bare` encodes batches of 2048 documents in this process on as many Rust threads as
Spark gets cores (2), with `encode_batch` (the issue's reference) and with the stage's own `encode_texts`
(`encode_batch_fast`: the same ids without character offsets); `spark` is the whole tokenize stage (encode, shuffle, pack, write tars, commit) on
`local[2]`, reading a committed stage directory of the cleaned documents. The stage runs twice: the first
run includes Python worker start-up, the second is the warm rate.

    .venv/bin/python benchmarks/tokenize_speed.py [--shards 'docs-0[01].jsonl.gz']
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

CORES = 2
# Set before tokenizers is imported: its Rust thread pool reads these once.
os.environ["RAYON_NUM_THREADS"] = str(CORES)
os.environ["TOKENIZERS_PARALLELISM"] = "true"
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import labelled_corpus  # noqa: E402
from pipeline import config as config_lib  # noqa: E402
from pipeline.stages import tokenize as tokenize_stage  # noqa: E402
from pipeline.stages.config import PipelineConfig  # noqa: E402
from pipeline.tokenize.shards import token_dtype  # noqa: E402
from pipeline.tokenize.tokenizer import encode_texts, train_bpe  # noqa: E402

BATCH = 2048


def bare(encode, texts: list[str]) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    arrays = []
    for i in range(0, len(texts), BATCH):
        arrays += encode(texts[i:i + BATCH])
    return time.perf_counter() - start, arrays


def encode_batch(tok, dtype):
    """The issue's reference: `encode_batch`, ids and EOS into NumPy as the stage keeps them."""
    eos = tok.token_to_id("<|endoftext|>")
    return lambda texts: [np.array(e.ids + [eos], dtype) for e in tok.encode_batch(texts, add_special_tokens=False)]


def spark_runs(stage_in: str, out: str, tokenizer_path: str, shard_bytes: int, runs: int = 2) -> list[tuple[float, dict]]:
    from pyspark.sql import SparkSession

    cfg = config_lib.load(PipelineConfig, overrides=[f"tokenize.tokenizer={tokenizer_path}",
                                                     f"tokenize.shard_bytes={shard_bytes}"])
    spark = (SparkSession.builder.master(f"local[{CORES}]").appName("tokenize-speed")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.memory", "4g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        results = []
        for _ in range(runs):
            start = time.perf_counter()
            stats = tokenize_stage.run(spark, stage_in, out, cfg)
            results.append((time.perf_counter() - start, stats))
        return results
    finally:
        spark.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(labelled_corpus.DEFAULT))
    ap.add_argument("--shards", default="docs-0[01].jsonl.gz", help="glob of raw shards under CORPUS/raw")
    ap.add_argument("--parts", type=int, default=8, help="Parquet parts of the input stage (Spark tasks)")
    ap.add_argument("--train-docs", type=int, default=4000)
    ap.add_argument("--vocab", type=int, default=32_768)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--shard-bytes", type=int, default=1_000_000,
                    help="tokenize.shard_bytes: a task encodes and writes one shard, so a split needs at least "
                    "as many shards as cores to use them all (the 64 MiB default gives one shard per ~32M tokens)")
    args = ap.parse_args()
    root = Path(args.corpus)

    docs = list(labelled_corpus.documents(root, args.shards, cleaned=True))
    texts = [d["text"] for d in docs]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    print(f"{len(docs)} cleaned documents, {n_bytes / 1e6:.1f} MB UTF-8, from raw/{args.shards}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sample = random.Random(args.seed).sample(texts, min(args.train_docs, len(texts)))
        tok = train_bpe(sample, args.vocab)
        tokenizer_path = f"{tmp}/tokenizer.json"
        tok.save(tokenizer_path)
        print(f"trained a {tok.get_vocab_size()}-token BPE on {len(sample)} documents in "
              f"{time.perf_counter() - start:.1f} s (not timed below)", flush=True)
        dtype = np.dtype(token_dtype(tok.get_vocab_size()))

        t_bare, reference = bare(encode_batch(tok, dtype), texts)
        t_fast, arrays = bare(lambda chunk: encode_texts(tok, chunk, dtype), texts)
        if any(a.tolist() != b.tolist() for a, b in zip(reference, arrays)):
            raise SystemExit("encode_texts and encode_batch disagree")
        n_tokens = sum(len(a) for a in arrays)

        labelled_corpus.write_input_stage(f"{tmp}/filter", docs, args.parts, "filter")
        runs = spark_runs(f"{tmp}/filter", f"{tmp}/tokenize", tokenizer_path, args.shard_bytes)

    for seconds, stats in runs:
        if sum(stats["tokens"].values()) != n_tokens or sum(stats["text_bytes"].values()) != n_bytes:
            raise SystemExit(f"spark and bare disagree: {stats['tokens']} vs {n_tokens} tokens")
    (t_cold, _), (t_warm, _) = runs
    mb = n_bytes / 1e6
    print(f"\n{len(docs)} documents, {mb:.1f} MB, {n_tokens:,} tokens (EOS included), {CORES} cores each\n")
    print("| run | seconds | MB/s | tokens/s |")
    print("|---|---|---|---|")
    for name, t in ((f"bare encode_batch, batches of {BATCH}, RAYON_NUM_THREADS={CORES}", t_bare),
                    (f"bare encode_texts (encode_batch_fast, the stage's call), same batches and threads", t_fast),
                    (f"spark tokenize stage, local[{CORES}], first run", t_cold),
                    (f"spark tokenize stage, local[{CORES}], warm run", t_warm)):
        print(f"| {name} | {t:.2f} | {mb / t:.2f} | {n_tokens / t:,.0f} |")
    print(f"\nratio spark/bare encode_batch (MB/s): warm {t_bare / t_warm:.2f}, first run {t_bare / t_cold:.2f} "
          f"(target >= 0.8); spark/bare encode_texts: warm {t_fast / t_warm:.2f}, first run {t_fast / t_cold:.2f}")

    labels = labelled_corpus.labels(root)
    lang_bytes, lang_tokens, lang_docs = defaultdict(int), defaultdict(int), Counter()
    for d, a in zip(docs, arrays):
        lang = labels.get(d["id"], {}).get("lang") or "(junk)"
        lang_docs[lang] += 1
        lang_bytes[lang] += len(d["text"].encode("utf-8"))
        lang_tokens[lang] += len(a) - 1  # without EOS
    print("\n| lang | documents | MB | tokens | bytes/token |")
    print("|---|---|---|---|---|")
    for lang, n in lang_docs.most_common(15):
        print(f"| {lang} | {n} | {lang_bytes[lang] / 1e6:.2f} | {lang_tokens[lang]:,} | "
              f"{lang_bytes[lang] / max(lang_tokens[lang], 1):.2f} |")


if __name__ == "__main__":
    main()
