"""tokenize: filtered documents to WebDataset token shards, a tokenizer.json and manifest.json.

Shuffle and layout are pure functions of (documents, seed): a document's split comes from a hash of its
id, its shard from a seeded hash, its place inside the shard from a second seeded hash. No step depends on
the number of cores or partitions, so the shards are byte-identical under local[1], local[2] or a cluster.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import time

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipeline import config as config_lib
from pipeline import storage
from pipeline.stages import spark_io
from pipeline.stages.config import PipelineConfig
from pipeline.tokenize.shards import build_manifest, pack_documents, token_dtype, write_shard
from pipeline.tokenize.tokenizer import encode_texts, eos_id, load_tokenizer, split_of, train_bpe, utf8_lengths

ENCODED = pa.schema(
    [("id", pa.string()), ("split", pa.string()), ("n_tokens", pa.int64()), ("text_bytes", pa.int64()), ("tokens", pa.binary())]
)
SHARD_INFO = pa.schema(
    [
        ("split", pa.string()),
        ("shard", pa.int64()),
        ("path", pa.string()),
        ("samples", pa.int64()),
        ("tokens", pa.int64()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
        ("documents", pa.int64()),
        ("text_bytes", pa.int64()),
    ]
)


def tokenizer_json(spark_docs, cfg) -> str:
    """The given tokenizer, or a BPE trained on a bounded, seeded sample of documents."""
    if cfg.tokenizer:
        return storage.read_bytes(cfg.tokenizer).decode("utf-8")
    sample = (
        spark_docs.select(F.xxhash64(F.lit(cfg.seed), "id").alias("k"), "id", F.substring("text", 1, cfg.train_chars_per_doc).alias("t"))
        .orderBy("k", "id")
        .limit(cfg.train_docs)
        .select("t")
        .collect()
    )
    print(f"[tokenize] training a {cfg.vocab_size}-token byte-level BPE on {len(sample)} sampled documents", flush=True)
    return train_bpe((r.t for r in sample), cfg.vocab_size, cfg.min_frequency).to_str()


def _encode_fn(tok_json: str, dtype: np.dtype, val_fraction: float):
    def encode(batches):
        tok = load_tokenizer(tok_json)
        for batch in batches:
            ids = batch.column("id").to_pylist()
            texts = batch.column("text")
            arrays = encode_texts(tok, texts.to_pylist(), dtype)
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(ids, pa.string()),
                    pa.array(split_of(ids, val_fraction), pa.string()),
                    pa.array([len(a) for a in arrays], pa.int64()),
                    pa.array(utf8_lengths(texts), pa.int64()),
                    pa.array([a.tobytes() for a in arrays], pa.binary()),
                ],
                schema=ENCODED,
            )

    return encode


def _write_fn(tmp_root: str, dtype: np.dtype, sample_tokens: int):
    def rows(batches):
        for batch in batches:
            yield from zip(*(batch.column(c).to_pylist() for c in ("split", "shard", "id", "tokens", "text_bytes")))

    def write(batches):
        from pyspark import TaskContext

        attempt = TaskContext.get().attemptNumber() if TaskContext.get() else 0
        for (split, shard), group in itertools.groupby(rows(batches), key=lambda r: (r[0], r[1])):
            counted = {"documents": 0, "text_bytes": 0}

            def docs(group=group, counted=counted):
                for _, _, doc_id, tokens, text_bytes in group:
                    counted["documents"] += 1
                    counted["text_bytes"] += text_bytes
                    yield doc_id, np.frombuffer(tokens, dtype=dtype)

            path = storage.join(tmp_root, "shards", split, f"shard-{shard:06d}-a{attempt}.tar")
            with storage.open_output(path) as f:
                info = write_shard(f, pack_documents(docs(), sample_tokens), shard, dtype)
            yield pa.RecordBatch.from_pylist([{"split": split, "shard": shard, "path": path, **info, **counted}], schema=SHARD_INFO)

    return write


def run(spark: SparkSession, input_uri: str, output_uri: str, cfg: PipelineConfig) -> dict:
    start = time.time()
    tcfg = cfg.tokenize
    expected = spark_io.read_stats(input_uri)["kept"]
    attempt = spark_io.begin(output_uri)
    docs = spark_io.read_stage(spark, input_uri).select("id", "text")

    tok_json = tokenizer_json(docs, tcfg)
    tok = load_tokenizer(tok_json)
    vocab_size, eos = tok.get_vocab_size(), eos_id(tok)
    dtype = np.dtype(token_dtype(vocab_size))

    encoded = docs.mapInArrow(_encode_fn(tok_json, dtype, tcfg.val_fraction), spark_io.spark_schema(ENCODED)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        totals = {r.split: r.tokens for r in encoded.groupBy("split").agg(F.sum("n_tokens").alias("tokens")).collect()}
        n_shards = {s: max(1, math.ceil(t * dtype.itemsize / tcfg.shard_bytes)) for s, t in totals.items()}
        print(f"[tokenize] tokens per split {totals}; shards per split {n_shards}", flush=True)
        shard_count = F.lit(0)
        for split, n in n_shards.items():
            shard_count = F.when(F.col("split") == split, F.lit(n)).otherwise(shard_count)
        arranged = (
            encoded.withColumn("shard", F.pmod(F.xxhash64(F.lit(tcfg.seed), "id"), shard_count))
            .withColumn("order", F.xxhash64(F.lit(tcfg.seed + 1), "id"))
            .repartition(max(1, sum(n_shards.values())), "split", "shard")
            .sortWithinPartitions("split", "shard", "order", "id")
        )
        tmp_root = storage.join(output_uri, spark_io.TEMPORARY, attempt)
        infos = [r.asDict() for r in arranged.mapInArrow(_write_fn(tmp_root, dtype, tcfg.sample_tokens), spark_io.spark_schema(SHARD_INFO)).collect()]
    finally:
        encoded.unpersist()

    # Final names are dense per split (shard-000000, -000001, ...) in shard order.
    infos.sort(key=lambda i: (i["split"], i["shard"]))
    final, files, splits = {}, {}, {}
    for split, group in itertools.groupby(infos, key=lambda i: i["split"]):
        for k, info in enumerate(group):
            name = f"shard-{k:06d}.tar"
            final[info["path"]] = name
            files.setdefault(split, []).append(info["path"])
            splits.setdefault(split, []).append({**info, "url": f"shards/{split}/{name}"})

    tok_bytes = tok_json.encode("utf-8")
    manifest = build_manifest(
        tokenizer={"path": "tokenizer.json", "sha256": hashlib.sha256(tok_bytes).hexdigest(), "vocab_size": vocab_size, "eos_id": eos},
        dtype=dtype,
        sample_tokens=tcfg.sample_tokens,
        seed=tcfg.seed,
        splits=splits,
        config=config_lib.to_dict(cfg),
    )
    result = spark_io.WriteResult()
    result.counts[("kept", None)] = sum(i["documents"] for i in infos)
    stats = spark_io.stage_stats(
        "tokenize",
        expected,
        result,
        time.time() - start,
        tokens={s: v["tokens"] for s, v in manifest["splits"].items()},
        documents={s: v["documents"] for s, v in manifest["splits"].items()},
        shards={s: len(v["shards"]) for s, v in manifest["splits"].items()},
        text_bytes={s: v["text_bytes"] for s, v in manifest["splits"].items()},
        vocab_size=vocab_size,
        dtype=dtype.name,
    )
    spark_io.commit(
        output_uri,
        attempt,
        files,
        stats,
        extra_files={"tokenizer.json": tok_bytes, "manifest.json": json.dumps(manifest, indent=1).encode()},
        final_names=lambda route, path: final[path],
    )
    return stats
