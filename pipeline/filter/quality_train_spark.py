"""Train a fastText quality classifier (`fasttext.train_supervised`) from labelled documents.

Examples come from Spark DataFrames of (text, label): a labelled JSONL/Parquet table, or one committed
stage directory (or raw document files) per label, e.g. the filter stage's kept `data/` as positives and its
`dropped/` audit samples as negatives. Each label is sampled on the executors: documents are ordered by a
seeded 64-bit hash of their text and the first `max_per_label` reach the driver, so the sample is bounded,
the same for the same input and seed whatever the partitioning, and uniform over distinct texts. The same
hash puts a fixed fraction of the texts in a held-out set that training never sees; precision and recall on
it go into the report. Training runs with one thread in a bare interpreter (see `fit`), which makes
fastText deterministic for a given seed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline import storage
from pipeline.filter.config import MODEL_INPUT_CHARS
from pipeline.filter.quality import model_input
from pipeline import spark_io
from pipeline.clean.config import CleanConfig
from pipeline.stagedir import is_committed

FIT_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fasttext_fit.py")
LABEL_PREFIX = "__label__"
MAX_LABELS = 100  # a label column with more distinct values is almost surely the wrong column
EXAMPLE_SCHEMA = pa.schema([("text", pa.string()), ("label", pa.string())])
LABELLED_PATTERNS = tuple(f"*{s}{c}" for s in (".jsonl", ".json", ".ndjson") for c in ("", ".gz", ".zst")) + ("*.parquet",)


@dataclass
class TrainConfig:
    max_per_label: int = 50_000  # at most this many examples of each label are sampled (train + held out)
    holdout_fraction: float = 0.1  # share of texts (by hash) kept out of training to measure the model
    seed: int = 0  # sampling, held-out split and fastText's own initialisation
    max_chars: int = MODEL_INPUT_CHARS  # the prefix of each text the model sees; the filter uses the same
    # fastText hyper-parameters (`fasttext.train_supervised` names in snake case)
    epoch: int = 5
    lr: float = 0.1
    word_ngrams: int = 2
    dim: int = 64
    min_count: int = 2
    bucket: int = 200_000  # hashed n-gram rows: the .bin holds (words + bucket) x dim floats
    quantize: bool = False  # also write model.ftz (product-quantised, a fraction of the size)


def fasttext_label(name: str) -> str:
    """"keep" -> "__label__keep"; a label must be one token, since fastText splits lines on whitespace."""
    name = str(name).strip()
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"a label must be a non-empty word, got {name!r}")
    return name if name.startswith(LABEL_PREFIX) else LABEL_PREFIX + name


# ---------------------------------------------------------------------------------------------- inputs


def documents_as(spark: SparkSession, uri: str, label: str, subdir: str = "data") -> DataFrame:
    """Every document of a committed stage's `subdir` (or of raw input files, read as the clean stage reads
    them) under one label."""
    if is_committed(uri):
        docs = spark_io.read_stage(spark, uri, subdir)
    else:
        clean = CleanConfig()
        docs = spark_io.read_raw(spark, uri, clean.reader, clean.html).where(F.col("_status") == "kept")
    return docs.select(F.col("text"), F.lit(label).alias("label"))


def labelled_table(spark: SparkSession, uri: str, text_field: str = "text", label_field: str = "label") -> DataFrame:
    """(text, label) rows of JSONL (plain, .gz, .zst) or Parquet files; executors read one file each,
    streaming. Rows with a null text or label are skipped."""
    files = spark_io.list_inputs(uri, LABELLED_PATTERNS)
    rdd = spark.sparkContext.parallelize([(f,) for f in files], numSlices=len(files))
    paths = spark.createDataFrame(rdd, "uri string")

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for file in batch.column("uri").to_pylist():
                for part in _read_labelled(file, text_field, label_field):
                    keep = pc.and_(pc.is_valid(part.column(0)), pc.is_valid(part.column(1)))
                    yield pa.RecordBatch.from_arrays(
                        [part.column(0).cast(pa.string()), part.column(1).cast(pa.string())], schema=EXAMPLE_SCHEMA
                    ).filter(keep)

    return paths.mapInArrow(read, spark_io.spark_schema(EXAMPLE_SCHEMA))


def _read_labelled(uri: str, text_field: str, label_field: str) -> Iterator[pa.RecordBatch]:
    fs, path = storage.resolve(uri)
    columns = [text_field, label_field]
    if uri.endswith(".parquet"):
        with fs.open_input_file(path) as f:
            yield from pq.ParquetFile(f).iter_batches(batch_size=4096, columns=columns)
        return
    with fs.open_input_stream(path, compression="detect") as f:  # .gz / .zst by extension
        reader = pj.open_json(f)
        missing = [c for c in columns if c not in reader.schema.names]
        if missing:
            raise ValueError(f"{uri}: no {', '.join(missing)} field in its records")
        for batch in reader:
            yield batch.select(columns)


# ---------------------------------------------------------------------------------------------- sample


@dataclass
class Examples:
    train: list[tuple[str, str]]  # (fastText label, model input text), labels mixed in hash order
    holdout: list[tuple[str, str]]
    available: dict[str, int]  # fastText label -> documents in the input


def sample(examples: DataFrame, cfg: TrainConfig) -> Examples:
    """At most `max_per_label` texts per label, chosen and split by seeded hashes of the text (labels given
    as "keep" or "__label__keep" alike)."""
    buckets = 1_000_000
    keyed = examples.select(
        F.substring("text", 1, cfg.max_chars).alias("text"),
        "label",
        F.xxhash64(F.lit(cfg.seed), F.col("text")).alias("_key"),
        F.pmod(F.xxhash64(F.lit(cfg.seed), F.lit("holdout"), F.col("text")), F.lit(buckets)).alias("_bucket"),
    )
    names = {r["label"]: r["count"] for r in keyed.groupBy("label").count().limit(MAX_LABELS + 1).collect()}
    if len(names) > MAX_LABELS:
        raise ValueError(f"more than {MAX_LABELS} distinct labels: is the label field the right one?")
    train, holdout = [], []
    for name in sorted(names):
        label = fasttext_label(name)
        rows = keyed.where(F.col("label") == name).orderBy("_key", "text").limit(cfg.max_per_label).collect()
        texts = model_input(pa.array([r["text"] for r in rows], type=pa.string()), cfg.max_chars)
        for text, row in zip(texts, rows):
            if text.strip():
                held_out = row["_bucket"] < cfg.holdout_fraction * buckets
                (holdout if held_out else train).append((row["_key"], label, text))
    # fastText reads its input in order: one label after the other would skew every epoch
    train.sort()
    return Examples(
        [(label, text) for _, label, text in train],
        [(label, text) for _, label, text in holdout],
        {fasttext_label(name): n for name, n in names.items()},
    )


# ---------------------------------------------------------------------------------------------- training


def evaluate(model, holdout: list[tuple[str, str]]) -> dict[str, dict[str, float | int]]:
    """Precision, recall and support per label of the model's top prediction on held-out examples."""
    if not holdout:
        return {}
    predicted = [labels[0] for labels in model.predict([text for _, text in holdout], k=1)[0]]
    out = {}
    for label in sorted({label for label, _ in holdout}):
        tp = sum(p == label and t == label for (t, _), p in zip(holdout, predicted))
        n_pred = sum(p == label for p in predicted)
        n_true = sum(t == label for t, _ in holdout)
        out[label] = {
            "precision": round(tp / n_pred, 4) if n_pred else 0.0,
            "recall": round(tp / n_true, 4) if n_true else 0.0,
            "support": n_true,
        }
    return out


def fit(data: str, out_dir: str, params: dict, quantize: bool) -> list[str]:
    """Train (and quantise) with one thread in a bare interpreter (see pipeline/filter/fasttext_fit.py for
    why); returns the model files written to `out_dir`."""
    spec = {"data": data, "out_dir": out_dir, "params": params, "quantize": quantize}
    done = subprocess.run([sys.executable, FIT_SCRIPT, json.dumps(spec)], capture_output=True, text=True)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise RuntimeError(f"fastText training failed: {last[0]} (a lower lr helps against NaN)")
    return ["model.bin", "model.ftz"] if quantize else ["model.bin"]


def train(examples: Examples, output_uri: str, cfg: TrainConfig) -> dict:
    """Train on `examples.train`, write model.bin (and model.ftz) and report.json under `output_uri`."""
    import fasttext

    labels = sorted({label for label, _ in examples.train})
    if len(labels) < 2:
        raise ValueError(f"a classifier needs examples of at least two labels, got {labels or 'none'}")
    start = time.time()
    report: dict = {
        "labels": {
            label: {
                "available": examples.available.get(label, 0),
                "train": sum(t == label for t, _ in examples.train),
                "holdout": sum(t == label for t, _ in examples.holdout),
            }
            for label in sorted(examples.available)
        },
        "config": asdict(cfg),
        "holdout": {},
        "files": {},
    }
    params = {
        "epoch": cfg.epoch, "lr": cfg.lr, "wordNgrams": cfg.word_ngrams, "dim": cfg.dim,
        "minCount": cfg.min_count, "bucket": cfg.bucket, "seed": cfg.seed,
    }
    with tempfile.TemporaryDirectory(prefix="train-quality-") as tmp:
        data = os.path.join(tmp, "train.txt")
        with open(data, "w", encoding="utf-8") as f:
            f.writelines(f"{label} {text}\n" for label, text in examples.train)
        for name in fit(data, tmp, params, cfg.quantize):
            local = os.path.join(tmp, name)
            report["holdout"][name] = evaluate(fasttext.load_model(local), examples.holdout)
            report["files"][name] = os.path.getsize(local)
            with open(local, "rb") as f:
                storage.write_bytes(storage.join(output_uri, name), f.read())
    report["seconds"] = round(time.time() - start, 3)
    storage.write_bytes(storage.join(output_uri, "report.json"), json.dumps(report, indent=2).encode())
    return report
