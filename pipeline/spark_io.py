"""How stages read their input and write their parts with Spark.

Executors do the file I/O through `pipeline.storage` inside `mapInArrow`, so local disks, S3 and HDFS
behave the same, and a stage reads, changes and writes each part in one Python task: text that the next
step needs only in Python never passes through the JVM. What a committed output looks like, and how it gets
committed, is `pipeline.stagedir`'s (no Spark needed).
"""
from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from pipeline import storage
from pipeline.readers import PATTERNS, Tally, read_piece, to_batches
from pipeline.readers import splits as splits_lib
from pipeline.readers.records import RAW_SCHEMA
from pipeline.stagedir import TEMPORARY, UNKNOWN_LANGUAGE, Route, StageError, WriteResult, committed_files

# Internal columns keep their underscore inside a stage; written files use the public names.
PUBLIC_NAMES = {"_reason": "reason", "_detail": "detail"}

# What the part writer returns to the driver: one row per written file and one per (status, reason, lang) count.
_RESULT_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("partition", pa.int64()),
        ("route", pa.string()),
        ("path", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("lang", pa.string()),
        ("n", pa.int64()),
    ]
)


Transform = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]  # a `mapInArrow` function


def spark_schema(schema: pa.Schema):
    """mapInArrow wants a Spark schema; the pipeline defines its batch schemas in Arrow."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


WRITTEN = spark_schema(_RESULT_SCHEMA)  # what `part_writer` gives Spark


def task_attempt() -> tuple[int, int]:
    """(partition, attempt id) of the running task. The attempt id is unique in the application (the attempt
    number restarts with each stage attempt), so a straggler of a failed attempt never writes the same
    temporary file as its replacement."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return (ctx.partitionId(), ctx.taskAttemptId()) if ctx else (0, 0)


# ---------------------------------------------------------------------------------------------- reading


def list_inputs(input_uri: str, patterns=PATTERNS) -> list[str]:
    files = storage.list_files(input_uri, patterns)
    if not files:
        raise StageError(f"no input files under {storage.display(input_uri)} (looked for {', '.join(patterns)})")
    return files


def labels_of(input_uri: str, files: list[str]) -> list[str]:
    """Each input file's label: its path relative to `input_uri` (its name, when it lies elsewhere)."""
    root = input_uri.rstrip("/")
    return [f[len(root) + 1 :] if f.startswith(root + "/") else f.rsplit("/", 1)[-1] for f in files]


def input_splits(spark: SparkSession, input_uri: str, reader_cfg,
                 files: list[str] | None = None) -> list[list[splits_lib.Piece]]:
    """What each clean task reads (pipeline/readers/splits.py), planned by size: a pure function of the
    files, their sizes and `reader_cfg.split_bytes`. JSONL byte ranges get the newlines before them from a
    counting pass, one task per range; plain WARC ranges their record starts, one task per file."""
    split_bytes = reader_cfg.split_bytes
    files = sorted(files) if files else list_inputs(input_uri)
    planned, unsplittable = splits_lib.plan(list(zip(files, labels_of(input_uri, files), storage.sizes(files))),
                                            split_bytes)
    if unsplittable:
        print(f"[clean] {unsplittable} compressed input file(s) larger than clean.reader.split_bytes="
              f"{split_bytes:,} are read whole, one task each (compression cannot be split); plain JSONL, "
              f"Parquet or smaller files give more parallelism", flush=True)
    print(f"[clean] {len(files)} input file(s) in {len(planned)} task(s) of up to {split_bytes:,} bytes", flush=True)
    ranges = [p for split in planned for p in split if splits_lib.needs_line_count(p)]
    if ranges:
        counted = spark.sparkContext.parallelize(ranges, numSlices=len(ranges)).map(
            lambda p: ((p.uri, p.start), splits_lib.count_newlines(p))).collect()
        planned = splits_lib.with_newlines(planned, dict(counted))
    warcs = sorted(splits_lib.warc_bounds(planned).items())
    if warcs:
        found = spark.sparkContext.parallelize(warcs, numSlices=len(warcs)).map(
            lambda item: _record_starts(*item, reader_cfg)).collect()
        planned = splits_lib.with_record_starts(planned, dict(found))
    return planned


def _record_starts(uri: str, bounds_and_size: tuple[list[int], int], reader_cfg) -> tuple[str, dict]:
    """(uri, {bound: RecordStart}) of one plain WARC file: one task reads it through once."""
    from pipeline.readers.warc import record_starts

    bounds, size = bounds_and_size
    with storage.open_input(uri) as f:
        return uri, dict(zip(bounds, record_starts(f, bounds, size, reader_cfg)))


def read_raw(spark: SparkSession, input_uri: str, reader_cfg, html_cfg, files: list[str] | None = None,
             transform: Transform | None = None, schema=None, units=None) -> DataFrame:
    """Raw records of every input file (or of `files`, under `input_uri`) in file then line order, one Spark
    partition per split (`input_splits`). Files are labelled by their path relative to `input_uri`.
    `transform` (a `mapInArrow` function giving Spark schema `schema`) runs on the batches in the reading
    task, as in `read_stage`. `units`, a Spark accumulator, adds up what the readers read, counted apart
    from their rows (`readers.Tally`)."""
    planned = input_splits(spark, input_uri, reader_cfg, files)
    rows = spark.sparkContext.parallelize([(json.dumps([dataclasses.asdict(p) for p in split]),) for split in planned],
                                          numSlices=len(planned))
    pieces = spark.createDataFrame(rows, "pieces string")

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for listed in batch.column("pieces").to_pylist():
                for piece in json.loads(listed):
                    tally = Tally()
                    yield from to_batches(read_piece(splits_lib.Piece(**piece), reader_cfg, html_cfg, tally))
                    if units is not None:
                        units.add(tally.units)

    if transform is None:
        return pieces.mapInArrow(read, spark_schema(RAW_SCHEMA))
    return pieces.mapInArrow(lambda batches: transform(read(batches)), schema)


def _parts(stage_uri: str, subdir: str) -> list[str]:
    files = committed_files(stage_uri, subdir)
    if not files:
        raise StageError(
            f"{storage.display(stage_uri)}: no committed {subdir}/ files: that stage kept no documents "
            f"(see its stats.json for why), so there is nothing for this stage to do"
        )
    return files


def _schema_of(part: str) -> pa.Schema:
    """A part's Arrow schema as `read_stage` gives it: strings, not large ones."""
    fs, path = storage.resolve(part)
    with fs.open_input_file(path) as f:
        schema = pq.read_schema(f)
    return pa.schema([f.with_type(pa.string()) if f.type == pa.large_string() else f for f in schema])


def stage_schema(stage_uri: str, subdir: str = "data") -> pa.Schema:
    """The Arrow schema of a committed stage's parts, as `read_stage` gives them."""
    return _schema_of(_parts(stage_uri, subdir)[0])


def read_stage(spark: SparkSession, stage_uri: str, subdir: str = "data", transform: Transform | None = None,
               schema=None) -> DataFrame:
    """A committed stage's parts, one Spark partition per part (partition i reads part i), in part order.
    `transform` (a `mapInArrow` function, giving Spark schema `schema`) runs on the batches in the reading
    task, so text that the next step only needs in Python never passes through the JVM; with `part_writer`
    as its last step, a stage reads, changes and writes each part in one Python task."""
    files = _parts(stage_uri, subdir)
    read_schema = _schema_of(files[0])
    paths = spark.createDataFrame(
        spark.sparkContext.parallelize([(f,) for f in files], numSlices=len(files)), "uri string"
    )

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for uri in batch.column("uri").to_pylist():
                fs, p = storage.resolve(uri)
                with fs.open_input_file(p) as f:
                    for b in pq.ParquetFile(f).iter_batches(batch_size=2048):
                        yield b.cast(read_schema)

    if transform is None:
        return paths.mapInArrow(read, spark_schema(read_schema))
    return paths.mapInArrow(lambda batches: transform(read(batches)), schema)


def write_by_part(df: DataFrame, uri: str) -> None:
    """`df`'s rows as Parquet under `uri/part=N/` by its integer `part` column (the input part each row
    belongs to), so that the task of part N reads its own rows (`read_part`) and never all of them."""
    df.repartition("part").write.mode("overwrite").partitionBy("part").parquet(uri)


def read_part(uri: str, part: int) -> pa.Table | None:
    """Part `part`'s rows written by `write_by_part` (without the `part` column), or None if it has none."""
    directory = storage.join(uri, f"part={part}")
    if not storage.exists(directory):
        return None
    tables = []
    for path in storage.list_files(directory, ("*.parquet",)):
        fs, p = storage.resolve(path)
        with fs.open_input_file(p) as f:
            tables.append(pq.read_table(f))
    return pa.concat_tables(tables) if tables else None


# ---------------------------------------------------------------------------------------------- writing


def write_parts(df: DataFrame, stage_uri: str, routes: dict[str, Route], attempt: str) -> WriteResult:
    """Write each partition's rows to `<route>/part-NNNNN` Parquet files by `_status`, and count rows per
    (status, reason), and per language where rows have a `lang`, on the way. Rows without `_status` count
    as kept."""
    writer = part_writer(stage_uri, routes, attempt, has_status="_status" in df.columns)
    return collect_written(df.mapInArrow(writer, WRITTEN))


def part_writer(stage_uri: str, routes: dict[str, Route], attempt: str, has_status: bool = True) -> Transform:
    """The `mapInArrow` function of `write_parts`, giving schema `WRITTEN`: one task's batches written to
    its part files; `collect_written` gathers what the tasks wrote."""
    tmp_root = storage.join(stage_uri, TEMPORARY, attempt)

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        partition, attempt_no = task_attempt()
        writers: dict[str, tuple[pq.ParquetWriter, object, str]] = {}
        written: dict[str, int] = defaultdict(int)
        counts: dict[tuple[str, str | None, str | None], int] = defaultdict(int)  # (status, reason, lang)
        sampled: dict[tuple[str, str | None], int] = defaultdict(int)
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                if has_status:
                    keys = {"s": batch.column("_status"), "r": batch.column("_reason")}
                    if "lang" in batch.schema.names:
                        lang = batch.column("lang")
                        keys["l"] = pc.if_else(pc.fill_null(pc.equal(lang, ""), True), UNKNOWN_LANGUAGE, lang)
                    grouped = pa.table(keys).group_by(list(keys)).aggregate([([], "count_all")])
                    for row in grouped.to_pylist():
                        counts[(row["s"], row["r"], row.get("l"))] += row["count_all"]
                else:
                    counts[("kept", None, None)] += batch.num_rows
                for name, route in routes.items():
                    part = batch if not has_status else batch.filter(pc.equal(batch.column("_status"), name))
                    if part.num_rows == 0:
                        continue
                    if route.sample is not None:
                        part = _sample(part, route.sample, sampled)
                        if part.num_rows == 0:
                            continue
                    part = part.select(route.columns)
                    part = part.rename_columns([PUBLIC_NAMES.get(c, c) for c in part.schema.names])
                    if name not in writers:
                        path = storage.join(tmp_root, route.subdir, f"part-{partition:05d}-a{attempt_no}.parquet")
                        sink = storage.open_output(path)
                        writers[name] = (pq.ParquetWriter(sink, part.schema, compression="zstd"), sink, path)
                    writers[name][0].write_batch(part)
                    written[name] += part.num_rows
        finally:
            for writer, sink, _ in writers.values():
                writer.close()
                sink.close()
        rows = [
            {"kind": "file", "partition": partition, "route": name, "path": path, "status": None, "reason": None,
             "lang": None, "n": written[name]}
            for name, (_, _, path) in writers.items()
        ] + [
            {"kind": "count", "partition": partition, "route": None, "path": None, "status": s, "reason": r, "lang": lang,
             "n": n}
            for (s, r, lang), n in counts.items()
        ]
        yield pa.RecordBatch.from_pylist(rows, schema=_RESULT_SCHEMA)

    return write


def collect_written(df: DataFrame) -> WriteResult:
    """Run the job whose last step is `part_writer` and gather the files and counts its tasks report."""
    result = WriteResult()
    for row in df.collect():
        if row.kind == "file":
            result.files[row.route].append(row.path)
            result.rows[row.route] += row.n
        else:
            result.counts[(row.status, row.reason)] += row.n
            if row.lang is not None:
                result.languages[(row.lang, row.status, row.reason)] += row.n
    return result


def _sample(batch: pa.RecordBatch, per_reason: int, taken: dict) -> pa.RecordBatch:
    """The first `per_reason` rows of each (status, reason) in this partition (deterministic)."""
    keep = []
    for i, (s, r) in enumerate(zip(batch.column("_status").to_pylist(), batch.column("_reason").to_pylist())):
        if taken[(s, r)] < per_reason:
            taken[(s, r)] += 1
            keep.append(i)
    return batch.take(pa.array(keep, type=pa.int64()))
