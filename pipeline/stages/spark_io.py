"""How every stage reads its input, writes its parts and commits, on top of Spark DataFrames.

Executors do the file I/O through `pipeline.storage` inside `mapInArrow`, so local disks, S3 and HDFS
behave the same. A stage's output becomes visible only when `_SUCCESS` (which lists every committed file)
is written; readers refuse a stage without it and read only the files it lists.
"""
from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from pipeline import lock, storage
from pipeline.readers import PATTERNS, read_file, to_batches
from pipeline.readers.records import RAW_SCHEMA
from pipeline.stages.layout import SUCCESS, TEMPORARY, is_committed, listed_files

# Internal columns keep their underscore inside a stage; written files use the public names.
PUBLIC_NAMES = {"_reason": "reason", "_detail": "detail"}
UNKNOWN_LANGUAGE = "unknown"  # per-language counts of rows whose lang is null or empty

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


class StageError(RuntimeError):
    pass


@dataclass
class Route:
    """Where rows of one `_status` go: a sub-directory and its columns; `sample` bounds how many rows per
    reason each partition keeps (None = all)."""

    subdir: str
    columns: list[str]
    sample: int | None = None


@dataclass
class WriteResult:
    files: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # route -> temp paths
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # route -> rows written
    counts: dict[tuple[str, str | None], int] = field(default_factory=lambda: defaultdict(int))
    # (lang, status, reason) -> rows, where the rows carry a language (filter and the stages after it)
    languages: dict[tuple[str, str, str | None], int] = field(default_factory=lambda: defaultdict(int))

    def by_status(self, status: str) -> dict[str, int]:
        return {r or "": n for (s, r), n in sorted(self.counts.items(), key=lambda kv: str(kv[0])) if s == status}

    def total(self, status: str) -> int:
        return sum(n for (s, _), n in self.counts.items() if s == status)

    def by_language(self) -> dict[str, dict]:
        """{lang: {"kept": n, "dropped": {reason: n}, "rejected": {reason: n}}}, languages by document count."""
        out: dict[str, dict] = defaultdict(lambda: {"kept": 0, "dropped": {}, "rejected": {}})
        for (lang, status, reason), n in sorted(self.languages.items(), key=lambda kv: str(kv[0])):
            if status == "kept":
                out[lang]["kept"] += n
            else:
                out[lang][status][reason or ""] = n
        total = {lang: c["kept"] + sum(c["dropped"].values()) + sum(c["rejected"].values()) for lang, c in out.items()}
        return {lang: out[lang] for lang in sorted(out, key=lambda lang: (-total[lang], lang))}


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


def read_raw(spark: SparkSession, input_uri: str, reader_cfg, html_cfg, files: list[str] | None = None,
             transform: Transform | None = None, schema=None) -> DataFrame:
    """Raw records of every input file (or of `files`, under `input_uri`), one Spark partition per file, in
    file then line order. Files are labelled by their path relative to `input_uri`. `transform` (a `mapInArrow`
    function giving Spark schema `schema`) runs on the batches in the reading task, as in `read_stage`."""
    files = sorted(files) if files else list_inputs(input_uri)
    labels = labels_of(input_uri, files)
    rows = spark.sparkContext.parallelize(list(zip(files, labels)), numSlices=len(files))
    paths = spark.createDataFrame(rows, "uri string, label string")

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for uri, label in zip(batch.column("uri").to_pylist(), batch.column("label").to_pylist()):
                yield from to_batches(read_file(uri, label, reader_cfg, html_cfg))

    if transform is None:
        return paths.mapInArrow(read, spark_schema(RAW_SCHEMA))
    return paths.mapInArrow(lambda batches: transform(read(batches)), schema)


def committed_files(stage_uri: str, subdir: str = "data") -> list[str]:
    if not is_committed(stage_uri):
        raise StageError(
            f"{storage.display(stage_uri)} has no {SUCCESS}: the stage did not finish (run it first, or re-run it)"
        )
    return listed_files(stage_uri, subdir)


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


# ---------------------------------------------------------------------------------------------- commit


def new_attempt() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


# The schema (schemas/) of the documents clean, filter and dedupe write to data/; stats.json names it.
DOCUMENT_SCHEMA = "document.v2"
# The lock file a stage holds on its output directory from `begin` to `commit`.
LOCK = "_lock"
# A stage's directory holds at least one of these from its first step (`begin`) to its last (`commit`).
STAGE_MARKS = frozenset({SUCCESS, TEMPORARY, "stats.json", LOCK})
# Output URI -> the lock this process holds on it: a stage that failed in this process left its lock here,
# and this process's next run into that output takes it back.
_held: dict[str, lock.Lock] = {}


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def check_output(stage_uri: str, input_uri: str | None = None) -> None:
    """Refuse an output a run would destroy data in: one that is, holds or lies inside the input (a commit
    replaces the output's parts; an output inside the input is read back as input), and an existing
    directory no stage wrote, holding none of `STAGE_MARKS` (a stage replaces only what it wrote itself)."""
    out_fs, out = storage.resolve(stage_uri)
    if input_uri:
        in_fs, inp = storage.resolve(input_uri)
        if out_fs.type_name == in_fs.type_name and _overlaps(out, inp):
            raise StageError(
                f"output {storage.display(stage_uri)} overlaps input {storage.display(input_uri)}: writing it would "
                f"replace or re-read the input; choose an output directory outside the input"
            )
    entries = storage.entries(stage_uri)
    if entries and not STAGE_MARKS & set(entries):
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise StageError(
            f"{storage.display(stage_uri)} already holds files no stage wrote ({shown}): a stage replaces its output "
            f"directory's contents, so give it a new or empty directory"
        )


def begin(stage_uri: str, input_uri: str | None = None) -> str:
    """Start a (re-)run into a checked output (`check_output`), as its one writer: the stage holds the
    directory's lock until `commit` (another live run's lock raises `lock.LockHeld`). Holding it, the run
    removes what earlier, dead attempts left in `_temporary`. The attempt's directory is marked first and the
    old `_SUCCESS` goes next, so the directory always shows it is a stage's (either file is there) and a
    crash from here on never leaves a stage that looks complete but mixes old and new files."""
    check_output(stage_uri, input_uri)
    if is_committed(stage_uri):
        print(f"[stage] {storage.display(stage_uri)} holds a committed run, which this one replaces; to keep it, give "
              f"another output (jobs/pipeline.py --state reuses the committed stages of an interrupted batch)")
    release(stage_uri)
    try:
        _held[stage_uri] = lock.Lock(storage.join(stage_uri, LOCK), name="stage").acquire()
    except lock.LockHeld as e:
        raise StageError(f"{e}: another run is writing this output; wait for it to end or choose another output") from None
    storage.delete(storage.join(stage_uri, TEMPORARY))
    attempt = new_attempt()
    storage.write_bytes(storage.join(stage_uri, TEMPORARY, attempt, "_started"), b"")
    storage.delete(storage.join(stage_uri, SUCCESS))
    return attempt


def release(stage_uri: str) -> None:
    """Give up this process's lock on `stage_uri`, if it holds one (a commit does; so does a stage that
    writes nothing after all)."""
    held = _held.pop(stage_uri, None)
    if held is not None:
        held.release()


def commit(
    stage_uri: str,
    attempt: str,
    files: dict[str, list[str]],
    stats: dict,
    extra_files: dict[str, bytes] | None = None,
    final_names: Callable[[str, str], str] | None = None,
) -> None:
    """Move the attempt's files into place (replacing any earlier run's, and removing what an earlier run
    wrote that this one does not: a stage owns its directory), write stats.json, then the other small files
    in the order given, then `_SUCCESS` listing everything; finally drop the attempt's temporary
    directory (never another's) and release the output's lock."""
    listing: dict[str, list[str]] = {}
    for route, paths in files.items():
        subdir = paths and _subdir_of(paths[0], stage_uri, attempt)
        if subdir:
            storage.delete(storage.join(stage_uri, subdir))
        for p in sorted(paths):
            name = final_names(route, p) if final_names else _final_part_name(p)
            rel = f"{subdir}/{name}"
            storage.move(p, storage.join(stage_uri, rel))
            listing.setdefault(subdir, []).append(rel)
    keep = {*(subdir.split("/")[0] for subdir in listing), "stats.json", *(extra_files or {}), SUCCESS, TEMPORARY, LOCK}
    for name in storage.entries(stage_uri):  # an earlier run's files this run did not replace
        if name not in keep:
            storage.delete(storage.join(stage_uri, name))
    storage.write_bytes(storage.join(stage_uri, "stats.json"), json.dumps(stats, indent=2, sort_keys=False).encode())
    for name, data in (extra_files or {}).items():  # in order: a manifest given last is the commit point
        storage.write_bytes(storage.join(stage_uri, name), data)
    storage.write_bytes(
        storage.join(stage_uri, SUCCESS),
        json.dumps({"stage": stats["stage"], "files": listing}, indent=1, sort_keys=True).encode(),
    )
    others = set(storage.entries(storage.join(stage_uri, TEMPORARY))) - {attempt}
    storage.delete(storage.join(stage_uri, TEMPORARY, attempt) if others else storage.join(stage_uri, TEMPORARY))
    release(stage_uri)


def _subdir_of(path: str, stage_uri: str, attempt: str) -> str:
    prefix = storage.join(stage_uri, TEMPORARY, attempt) + "/"
    return path[len(prefix) :].rsplit("/", 1)[0]


def _final_part_name(path: str) -> str:
    """part-00003-a1.parquet -> part-00003.parquet (the attempt number is an accident of the run)."""
    name = path.rsplit("/", 1)[-1]
    stem, ext = name.split(".", 1)
    return stem.rsplit("-a", 1)[0] + "." + ext


def stage_stats(stage: str, input_count: int, result: WriteResult, seconds: float, **extra) -> dict:
    """stats.json, checked: input must equal kept + dropped + rejected, or the stage fails."""
    kept = result.total("kept")
    dropped, rejected = result.by_status("dropped"), result.by_status("rejected")
    total = kept + sum(dropped.values()) + sum(rejected.values())
    if total != input_count:
        raise StageError(
            f"{stage}: records do not reconcile: input {input_count} != kept {kept} + dropped "
            f"{sum(dropped.values())} + rejected {sum(rejected.values())} = {total}"
        )
    languages = {"languages": result.by_language()} if result.languages else {}
    return {
        "stage": stage,
        "schema_version": 1,
        "input": input_count,
        "kept": kept,
        "dropped": dropped,
        "rejected": rejected,
        **languages,
        **extra,
        "seconds": round(seconds, 3),
    }


def read_stats(stage_uri: str) -> dict:
    committed_files(stage_uri)  # refuses an uncommitted stage
    return json.loads(storage.read_bytes(storage.join(stage_uri, "stats.json")))
