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
import os
import time

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipeline import config as config_lib
from pipeline import spark_io, stagedir, storage
from pipeline.stages.stage import Output, Stage
from pipeline.tokenize.shards import build_manifest, pack_documents, token_dtype, write_shard
from pipeline.tokenize.tokenizer import encode_texts, eos_id, load_tokenizer, shared_tokenizer, split_of, train_bpe, utf8_lengths

ESTIMATE_DOCS, ESTIMATE_CHARS = 1000, 2000  # the bytes-per-token sample when the tokenizer is given
ASSIGNED = pa.schema([("id", pa.string()), ("text", pa.string()), ("split", pa.string()), ("text_bytes", pa.int64()),
                      ("lang", pa.string())])
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


def tokenizer_and_sample(spark_docs, cfg) -> tuple[str, list[str]]:
    """The given tokenizer, or a BPE trained on a bounded, seeded sample of documents; and that sample (the
    driver never holds more than train_docs x train_chars_per_doc characters)."""
    # A given tokenizer needs only enough text to measure its bytes per token.
    docs, chars = (ESTIMATE_DOCS, ESTIMATE_CHARS) if cfg.tokenizer else (cfg.train_docs, cfg.train_chars_per_doc)
    sample = [
        r.t for r in spark_docs.select(F.xxhash64(F.lit(cfg.seed), "id").alias("k"), "id",
                                       F.substring("text", 1, chars).alias("t"))
        .orderBy("k", "id").limit(docs).select("t").collect()
    ]
    if cfg.tokenizer:
        return storage.read_bytes(cfg.tokenizer).decode("utf-8"), sample
    print(f"[tokenize] training a {cfg.vocab_size}-token byte-level BPE on {len(sample)} sampled documents", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    tok_json = train_bpe(sample, cfg.vocab_size, cfg.min_frequency).to_str()
    # Logged, not in stats.json (whose only timing is `seconds`): benchmarks/pipeline_speed.py reads it.
    print(f"[tokenize] trained the BPE in {time.perf_counter() - wall:.2f} s ({time.process_time() - cpu:.2f} CPU s)", flush=True)
    return tok_json, sample


def bytes_per_token(tok, sample: list[str], max_bytes: int = 1_000_000) -> float:
    """UTF-8 bytes per token on the first `max_bytes` of the (already random) sample: how shards are sized
    before any document is encoded."""
    texts, total = [], 0
    for t in sample:
        if total >= max_bytes:
            break
        texts.append(t)
        total += len(t.encode("utf-8"))
    tokens = sum(len(e.ids) for e in tok.encode_batch_fast(texts, add_special_tokens=False))
    return total / tokens if tokens else 4.0


def _assign_fn(val_fraction: float):
    def assign(batches):
        for batch in batches:
            ids = batch.column("id").to_pylist()
            # The filter's language, kept per document in the shards (documents of stages before it have none).
            lang = batch.column("lang").cast(pa.string()) if "lang" in batch.schema.names else pa.nulls(len(ids), pa.string())
            yield pa.RecordBatch.from_arrays(
                [batch.column("id"), batch.column("text"), pa.array(split_of(ids, val_fraction), pa.string()),
                 pa.array(utf8_lengths(batch.column("text")), pa.int64()), lang],
                schema=ASSIGNED,
            )

    return assign


def _write_fn(tmp_root: str, tok_json: str, dtype: np.dtype, sample_tokens: int, threads: dict[str, int],
              encode_docs: int = 256):
    """Encode each shard's documents (already in shard order) and write its tar: tokens never cross the
    network, only the text they come from, once. `threads`: Rust encoding threads per split's shard."""

    def rows(batches):
        for batch in batches:
            yield from zip(*(batch.column(c).to_pylist() for c in ("split", "shard", "id", "text", "text_bytes", "lang")))

    def write(batches):
        from pyspark import TaskContext

        ctx = TaskContext.get()
        attempt = spark_io.task_attempt()[1]
        tok = shared_tokenizer(tok_json)
        for (split, shard), group in itertools.groupby(rows(batches), key=lambda r: (r[0], r[1])):
            # Rayon reads this once per Python worker, at its first encode (Spark reuses workers, and later
            # tasks keep that pool): a shard with a large share of the text gets that share of the cores.
            os.environ["RAYON_NUM_THREADS"] = str(max(threads[split], ctx.cpus() if ctx else 1))
            counted = {"documents": 0, "text_bytes": 0}

            def docs(group=group, counted=counted):
                for chunk in iter(lambda: list(itertools.islice(group, encode_docs)), []):
                    arrays = encode_texts(tok, [r[3] for r in chunk], dtype)
                    counted["documents"] += len(chunk)
                    counted["text_bytes"] += sum(r[4] for r in chunk)
                    yield from ((r[2], tokens, r[5], r[4]) for r, tokens in zip(chunk, arrays))

            path = storage.join(tmp_root, "shards", split, f"shard-{shard:06d}-a{attempt}.tar")
            with storage.open_output(path) as f:
                info = write_shard(f, pack_documents(docs(), sample_tokens), shard, dtype)
            yield pa.RecordBatch.from_pylist([{"split": split, "shard": shard, "path": path, **info, **counted}], schema=SHARD_INFO)

    return write


def _executor_cores(spark: SparkSession) -> int:
    """Cores of one executor: `spark.executor.cores`, else all the application has (local mode, or a
    standalone executor that took its whole worker)."""
    return int(spark.conf.get("spark.executor.cores", "0")) or spark.sparkContext.defaultParallelism


def _encode_threads(totals: dict[str, tuple[int, int]], n_shards: dict[str, int], cores: int) -> dict[str, int]:
    """Rust threads for a shard of each split: its share of all text times the cores, so that a corpus of one
    big train shard and a small val shard still encodes on every core, while many even shards get one each."""
    text = sum(b for _, b in totals.values()) or 1
    return {s: max(1, min(cores, round(cores * b / n_shards[s] / text))) for s, (_, b) in totals.items()}


class Tokenize(Stage):
    """Writes token shards, not rows by route: `write` is its own, and the tokenizer and manifest commit
    after them (the manifest last: trainers wait for it)."""

    name = "tokenize"

    def prepare(self) -> None:
        # The manifest is what trainers open: a re-run must not leave the old one pointing at shards it replaces.
        storage.delete(storage.join(self.output_uri, "manifest.json"))
        # Three jobs scan the documents (the tokenizer's sample, the split totals, the shuffle to shards): read
        # the parts and hash the ids once, in the reading task, not three times.
        self.assigned = spark_io.read_stage(self.spark, self.input_uri, transform=_assign_fn(self.cfg.tokenize.val_fraction),
                                            schema=spark_io.spark_schema(ASSIGNED)).persist(StorageLevel.MEMORY_AND_DISK)

    def close(self) -> None:
        if getattr(self, "assigned", None) is not None:
            self.assigned.unpersist()

    def write(self) -> Output:
        """Train or load the tokenizer, size the shards, encode and write them, and build the manifest."""
        tcfg, assigned = self.cfg.tokenize, self.assigned
        tok_json, sample = tokenizer_and_sample(assigned, tcfg)
        tok = load_tokenizer(tok_json)
        vocab_size, eos = tok.get_vocab_size(), eos_id(tok)
        dtype = np.dtype(token_dtype(vocab_size))

        # Shard counts are fixed before encoding, from text bytes and the sample's bytes per token, so each
        # document's shard is known up front and the one shuffle moves text to the task that encodes and writes.
        per_token = bytes_per_token(tok, sample)
        totals = {r.split: (r.documents, r.text_bytes) for r in assigned.groupBy("split").agg(
            F.count("*").alias("documents"), F.sum("text_bytes").alias("text_bytes")).collect()}
        n_shards = {s: max(1, math.ceil((b / per_token + n) * dtype.itemsize / tcfg.shard_bytes))
                    for s, (n, b) in totals.items()}
        print(f"[tokenize] documents and text bytes per split {totals}; {per_token:.2f} bytes per token on the "
              f"sample; shards per split {n_shards}", flush=True)
        shard_count = F.lit(0)
        for split, n in n_shards.items():
            shard_count = F.when(F.col("split") == split, F.lit(n)).otherwise(shard_count)
        arranged = (
            assigned.withColumn("shard", F.pmod(F.xxhash64(F.lit(tcfg.seed), "id"), shard_count))
            .withColumn("order", F.xxhash64(F.lit(tcfg.seed + 1), "id"))
            .repartition(max(1, sum(n_shards.values())), "split", "shard")
            .sortWithinPartitions("split", "shard", "order", "id")
        )
        threads = _encode_threads(totals, n_shards, _executor_cores(self.spark))
        write = _write_fn(self.work_uri, tok_json, dtype, tcfg.sample_tokens, threads)
        infos = [r.asDict() for r in arranged.mapInArrow(write, spark_io.spark_schema(SHARD_INFO)).collect()]

        # Final names are dense per split (shard-000000, -000001, ...) in shard order.
        infos.sort(key=lambda i: (i["split"], i["shard"]))
        final, written, splits = {}, stagedir.WriteResult(), {}
        for split, group in itertools.groupby(infos, key=lambda i: i["split"]):
            for k, info in enumerate(group):
                name = f"shard-{k:06d}.tar"
                final[info["path"]] = name
                written.files[split].append(info["path"])
                splits.setdefault(split, []).append({**info, "url": f"shards/{split}/{name}"})
        written.counts[("kept", None)] = sum(i["documents"] for i in infos)

        tok_bytes = tok_json.encode("utf-8")
        self.manifest = build_manifest(
            tokenizer={"path": "tokenizer.json", "sha256": hashlib.sha256(tok_bytes).hexdigest(),
                       "vocab_size": vocab_size, "eos_id": eos},
            dtype=dtype,
            sample_tokens=tcfg.sample_tokens,
            seed=tcfg.seed,
            splits=splits,
            config=config_lib.to_dict(self.cfg),
        )
        return Output(written,
                      extra_files={"tokenizer.json": tok_bytes,
                                   "manifest.json": json.dumps(self.manifest, indent=1).encode()},
                      final_names=lambda route, path: final[path])

    def finish(self, output: Output) -> dict:
        splits = self.manifest["splits"]
        return {
            "tokens": {s: v["tokens"] for s, v in splits.items()},
            "documents": {s: v["documents"] for s, v in splits.items()},
            "shards": {s: len(v["shards"]) for s, v in splits.items()},
            "text_bytes": {s: v["text_bytes"] for s, v in splits.items()},
            "vocab_size": self.manifest["tokenizer"]["vocab_size"],
            "dtype": self.manifest["dtype"],
        }


STAGE = Tokenize
