"""Tokenize throughput: the Spark tokenize stage vs bare `encode_batch` on the same documents in one run,
plus bytes per token per language.

One 32,768-token byte-level BPE is trained up front on a seeded sample and given to both sides, so no
training is timed. `bare` encodes batches of 2048 documents in this process on as many Rust threads as
Spark gets cores (2), with `encode_batch` (the reference) and with the stage's own `encode_texts`
(`encode_batch_fast`: the same ids without character offsets); `spark` is the whole tokenize stage (read,
sample, shuffle, encode, pack, write tars, commit) on `local[2]`, reading a committed stage directory of
the cleaned documents, in one session: its first run includes Python worker start-up, the others are warm
(`--repeat` per size, alternating, the median standing for the size).

Both sides run on a quarter of the corpus (`--part`) and on all of it (`--shards`): a stage run has a fixed
part (its Spark jobs, the sample, the commit; ~2 s here) that bare encoding has not, so the ratio at one
size depends on the size. The steady-state ratio is that of the marginal rates between the two sizes.

    .venv/bin/python benchmarks/tokenize_speed.py [--part 'docs-0[01].jsonl.gz'] [--shards 'docs-*.jsonl.gz']
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
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
from pipeline import evaluate  # noqa: E402
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
    """The reference: `encode_batch`, ids and EOS into NumPy as the stage keeps them."""
    eos = tok.token_to_id("<|endoftext|>")
    return lambda texts: [np.array(e.ids + [eos], dtype) for e in tok.encode_batch(texts, add_special_tokens=False)]


def spark_session():
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(f"local[{CORES}]").appName("tokenize-speed")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.memory", "4g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_run(spark, stage_in: str, out: str, tokenizer_path: str, shard_bytes: int) -> tuple[float, dict]:
    cfg = config_lib.load(PipelineConfig, overrides=[f"tokenize.tokenizer={tokenizer_path}",
                                                     f"tokenize.shard_bytes={shard_bytes}"])
    start = time.perf_counter()
    stats = tokenize_stage.run(spark, stage_in, out, cfg)
    return time.perf_counter() - start, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(labelled_corpus.DEFAULT))
    ap.add_argument("--part", default="docs-0[01].jsonl.gz", help="glob of the smaller size's raw shards")
    ap.add_argument("--shards", default="docs-*.jsonl.gz", help="glob of the full size's raw shards under CORPUS/raw")
    ap.add_argument("--parts", type=int, default=8, help="Parquet parts of the input stage (Spark tasks)")
    ap.add_argument("--repeat", type=int, default=3, help="warm stage runs per size, alternating")
    ap.add_argument("--train-docs", type=int, default=4000)
    ap.add_argument("--vocab", type=int, default=32_768)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--shard-bytes", type=int, default=1_000_000,
                    help="tokenize.shard_bytes: a task encodes and writes one shard, so a split needs at least "
                    "as many shards as cores to use them all (the 64 MiB default gives one shard per ~32M tokens)")
    args = ap.parse_args()
    root = Path(args.corpus)

    sizes = {name: list(evaluate.documents(root, glob, cleaned=True))
             for name, glob in (("part", args.part), ("full", args.shards))}
    docs = sizes["full"]
    texts = [d["text"] for d in docs]
    mb = {name: sum(len(d["text"].encode("utf-8")) for d in ds) / 1e6 for name, ds in sizes.items()}
    for name, glob in (("part", args.part), ("full", args.shards)):
        print(f"{name}: {len(sizes[name])} cleaned documents, {mb[name]:.1f} MB UTF-8, from raw/{glob}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sample = random.Random(args.seed).sample(texts, min(args.train_docs, len(texts)))
        tok = train_bpe(sample, args.vocab)
        tokenizer_path = f"{tmp}/tokenizer.json"
        tok.save(tokenizer_path)
        print(f"trained a {tok.get_vocab_size()}-token BPE on {len(sample)} documents in "
              f"{time.perf_counter() - start:.1f} s (not timed below)", flush=True)
        dtype = np.dtype(token_dtype(tok.get_vocab_size()))

        bare_s, bare_fast_s, n_tokens = {}, {}, {}
        for name, ds in sizes.items():
            size_texts = [d["text"] for d in ds]
            bare_s[name], reference = bare(encode_batch(tok, dtype), size_texts)
            bare_fast_s[name], arrays = bare(lambda chunk: encode_texts(tok, chunk, dtype), size_texts)
            if any(a.tolist() != b.tolist() for a, b in zip(reference, arrays)):
                raise SystemExit("encode_texts and encode_batch disagree")
            n_tokens[name] = sum(len(a) for a in arrays)
            encoded = arrays  # the full size's, last, give the bytes per token below
            labelled_corpus.write_input_stage(f"{tmp}/{name}/filter", ds, args.parts, "filter")

        spark = spark_session()
        try:
            first, _ = spark_run(spark, f"{tmp}/part/filter", f"{tmp}/part/tokenize", tokenizer_path, args.shard_bytes)
            warm: dict[str, list[float]] = {"part": [], "full": []}
            for _ in range(args.repeat):
                for name in warm:
                    seconds, stats = spark_run(spark, f"{tmp}/{name}/filter", f"{tmp}/{name}/tokenize",
                                               tokenizer_path, args.shard_bytes)
                    if sum(stats["tokens"].values()) != n_tokens[name]:
                        raise SystemExit(f"spark and bare disagree: {stats['tokens']} vs {n_tokens[name]} tokens")
                    warm[name].append(seconds)
        finally:
            spark.stop()
    stage_s = {name: statistics.median(times) for name, times in warm.items()}

    print(f"\n{CORES} cores each; `{args.part}` then `{args.shards}`\n")
    print("| run | documents | MB | seconds | MB/s | tokens/s |")
    print("|---|---|---|---|---|---|")
    for name in sizes:
        rows = [(f"bare encode_batch, batches of {BATCH}, RAYON_NUM_THREADS={CORES}", bare_s[name]),
                ("bare encode_texts (encode_batch_fast, the stage's call), same batches and threads", bare_fast_s[name]),
                (f"spark tokenize stage, local[{CORES}], warm (median of {args.repeat}: "
                 f"{', '.join(f'{t:.2f}' for t in warm[name])})", stage_s[name])]
        if name == "part":
            rows.append((f"spark tokenize stage, local[{CORES}], first run of the session", first))
        for label, t in rows:
            print(f"| {label} | {len(sizes[name]):,} | {mb[name]:.1f} | {t:.2f} | {mb[name] / t:.2f} | {n_tokens[name] / t:,.0f} |")

    def marginal(seconds: dict[str, float]) -> float:
        return (seconds["full"] - seconds["part"]) / (mb["full"] - mb["part"])

    print()
    for name in sizes:
        print(f"ratio spark/bare at {mb[name]:.1f} MB (warm): {bare_s[name] / stage_s[name]:.2f} against encode_batch, "
              f"{bare_fast_s[name] / stage_s[name]:.2f} against encode_texts")
    fixed = stage_s["full"] - marginal(stage_s) * mb["full"]
    print(f"steady state (marginal s per MB): bare encode_batch {marginal(bare_s):.4f}, bare encode_texts "
          f"{marginal(bare_fast_s):.4f}, spark {marginal(stage_s):.4f} (+ {fixed:.1f} s fixed per stage run)")
    print(f"steady-state ratio spark/bare: **{marginal(bare_s) / marginal(stage_s):.2f}** against encode_batch "
          f"(target >= 0.8), {marginal(bare_fast_s) / marginal(stage_s):.2f} against encode_texts")

    labels = evaluate.labels(root)
    lang_bytes, lang_tokens, lang_docs = defaultdict(int), defaultdict(int), Counter()
    for d, a in zip(docs, encoded):
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
