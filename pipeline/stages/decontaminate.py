"""decontaminate: drop (or mark) the documents that share a word n-gram with an evaluation benchmark.

The benchmarks' n-grams are hashed once, in one task per benchmark file, into one table of distinct
hashes (each with the first benchmark listed that has it), sorted and written to this attempt's temporary
directory. Every part's task reads that table once and marks its documents with a vectorised lookup
(`pipeline.decontaminate.match_batch`): the documents are never compared with the benchmarks one by one.
The table holds 12 bytes per distinct benchmark n-gram (a million n-grams: 12 MB per task).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark import StorageLevel
from pyspark.accumulators import AccumulatorParam
from pyspark.sql import functions as F

from pipeline import spark_io, stagedir, storage
from pipeline.decontaminate import (MATCH_COLUMNS, REASON, SUFFIXES, TABLE, benchmark_name, benchmark_ngrams,
                                    match_batch)
from pipeline.stagedir import Route, StageError
from pipeline.stages.stage import Output, Stage

COUNTS = pa.schema([("benchmark", pa.int32()), ("ngrams", pa.int64())])


class _Counts(AccumulatorParam):
    """Contaminated documents per benchmark index, summed across tasks (a retried task may add twice)."""

    def zero(self, value):
        return {}

    def addInPlace(self, a, b):
        for k, n in b.items():
            a[k] = a.get(k, 0) + n
        return a


def _benchmark_files(uris: list[str]) -> list[str]:
    files = []
    for uri in uris:
        if storage.is_dir(uri):
            found = storage.list_files(uri, tuple(f"*{s}" for s in SUFFIXES))
            if not found:
                raise StageError(f"decontaminate.benchmarks: no {', '.join(SUFFIXES)} file under {storage.display(uri)}")
            files += found
        elif storage.exists(uri):
            files.append(uri)
        else:
            raise StageError(f"decontaminate.benchmarks: {storage.display(uri)} does not exist")
    names = [benchmark_name(f) for f in files]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StageError(f"decontaminate.benchmarks: several files are named {', '.join(repeated)}; a benchmark "
                         f"is named after its file, so give each a distinct name")
    return files


def _hash_fn(cfg):
    def run(batches):
        for batch in batches:
            for index, uri in zip(batch.column("index").to_pylist(), batch.column("uri").to_pylist()):
                yield benchmark_ngrams(uri, index, cfg)

    return run


def _table_writer(uri: str):
    """The one task that writes the sorted table and returns each benchmark's count of n-grams in it."""

    def run(batches):
        table = pa.Table.from_batches(list(batches), schema=TABLE).sort_by("hash")
        with storage.open_output(uri) as sink:
            pq.write_table(table, sink, compression="zstd")
        counts = table.group_by("benchmark").aggregate([([], "count_all")])
        yield pa.RecordBatch.from_arrays([counts.column("benchmark").combine_chunks().cast(pa.int32()),
                                          counts.column("count_all").combine_chunks()], schema=COUNTS)

    return run


class Decontaminate(Stage):
    name = "decontaminate"

    def check(self) -> None:
        if not self.cfg.decontaminate.benchmarks:
            raise StageError("decontaminate.benchmarks is empty: give the benchmark files to match, e.g. "
                             "--set decontaminate.benchmarks=s3://bucket/evals/mmlu.jsonl,evals/")
        self.benchmark_files = _benchmark_files(self.cfg.decontaminate.benchmarks)
        self.names = [benchmark_name(f) for f in self.benchmark_files]

    def prepare(self) -> None:
        cfg, files = self.cfg.decontaminate, self.benchmark_files
        self.table_uri = storage.join(self.work_uri, "benchmark-ngrams.parquet")
        listed = self.spark.createDataFrame(self.spark.sparkContext.parallelize(
            list(enumerate(files)), numSlices=len(files)), "index int, uri string")
        # Persisted: the per-benchmark counts and the table both read it, and each file is hashed once.
        hashed = listed.mapInArrow(_hash_fn(cfg), spark_io.spark_schema(TABLE)).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            self.ngrams = {r.benchmark: r.n for r in hashed.groupBy("benchmark").agg(F.count("*").alias("n")).collect()}
            distinct = hashed.groupBy("hash").agg(F.min("benchmark").alias("benchmark")).coalesce(1)
            distinct.mapInArrow(_table_writer(self.table_uri), spark_io.spark_schema(COUNTS)).collect()
        finally:
            hashed.unpersist()
        self.matched = self.spark.sparkContext.accumulator({}, _Counts())

    def routes(self) -> dict[str, Route]:
        columns = spark_io.stage_schema(self.input_uri).names
        matched = [name for name, _ in MATCH_COLUMNS]
        kept = columns + matched if self.cfg.decontaminate.mode == "mark" else columns
        return {"kept": Route("data", kept),
                "dropped": Route("dropped", columns + matched + ["_reason"],
                                 sample=self.cfg.audit.dropped_samples_per_reason)}

    def transform(self) -> spark_io.Transform:
        cfg, table_uri, names, matched = self.cfg.decontaminate, self.table_uri, self.names, self.matched

        def mark(batches):
            fs, path = storage.resolve(table_uri)
            with fs.open_input_file(path) as f:
                table = pq.read_table(f)
            hashes = table.column("hash").to_numpy()
            benchmarks = table.column("benchmark").to_numpy()
            for batch in batches:
                found, shared = match_batch(pc.fill_null(batch.column("text"), ""), hashes, benchmarks, cfg)
                hit = found >= 0
                if hit.any():
                    matched.add({int(k): int(n) for k, n in zip(*np.unique(found[hit], return_counts=True))})
                name = pa.array([names[k] if k >= 0 else None for k in found.tolist()], pa.string())
                drop = hit if cfg.mode == "drop" else np.zeros(len(hit), bool)
                status = pa.array(np.where(drop, "dropped", "kept"), pa.string())
                reason = pa.array([REASON if d else None for d in drop.tolist()], pa.string())
                yield pa.RecordBatch.from_arrays(
                    batch.columns + [name, pa.array(shared, pa.int32()), status, reason],
                    names=batch.schema.names + [n for n, _ in MATCH_COLUMNS] + ["_status", "_reason"])

        return mark

    def finish(self, output: Output) -> dict:
        documents = self.matched.value
        return {
            "mode": self.cfg.decontaminate.mode, "ngram": self.cfg.decontaminate.ngram,
            "benchmarks": {name: {"uri": storage.display(uri), "ngrams": self.ngrams.get(i, 0),
                                  "documents": documents.get(i, 0)}
                           for i, (name, uri) in enumerate(zip(self.names, self.benchmark_files))},
            "document_schema": stagedir.DOCUMENT_SCHEMA,
        }


STAGE = Decontaminate
