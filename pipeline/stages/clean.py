"""clean: raw files (JSONL/gz/zst, Parquet, WARC, HTML) to normalised documents; bad records to rejected/."""
from __future__ import annotations

import sys

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline import spark_io, stagedir, storage
from pipeline.clean.batch import COUNTERS, clean_batch
from pipeline.clean.ids import derived_ids
from pipeline.stagedir import Route
from pipeline.stages.stage import Output, Stage, document_routes

DOC_COLUMNS = ["id", "text", "source", "url", "created", "file", "line"]  # schemas/document.v2.json
REJECT_COLUMNS = ["file", "line", "id", "_reason", "_detail", "excerpt"]
DUPLICATE_EXAMPLES = 5  # ids named in stats.json and on the console


def _part_of(path: str) -> int:
    """part-00003-a7.parquet -> 3: a clean part's number is its input split's (pipeline/readers/splits.py)."""
    return int(path.rsplit("/", 1)[-1].split("-")[1].split(".")[0])


def _ids_by_part(spark: SparkSession, paths: list[str]) -> DataFrame:
    """(id, part) of every kept document: only the id column of each written part is read."""

    def read(batches):
        for batch in batches:
            for uri in batch.column("uri").to_pylist():
                fs, p = storage.resolve(uri)
                with fs.open_input_file(p) as f:
                    ids = pq.read_table(f, columns=["id"]).column("id")
                yield pa.RecordBatch.from_arrays([ids.combine_chunks(), pa.array([_part_of(uri)] * len(ids), pa.int32())],
                                                 names=["id", "part"])

    uris = spark.createDataFrame(spark.sparkContext.parallelize([(p,) for p in paths], numSlices=len(paths)), "uri string")
    return uris.mapInArrow(read, "id string, part int")


def resolve_duplicate_ids(spark: SparkSession, written: stagedir.WriteResult, policy: str, work_uri: str) -> dict:
    """Find ids that more than one kept document carries (a distributed count: only the totals and a few
    examples reach the driver) and, by `policy`, derive unique ids for them or fail. Returns stats.json's
    `duplicate_ids`; rewritten parts replace their originals in `written`."""
    paths = written.files.get("kept", [])
    if not paths:
        return {"ids": 0, "documents": 0, "examples": [], "policy": policy}
    ids = _ids_by_part(spark, paths)
    repeated = ids.groupBy("id").agg(F.count("*").alias("n")).where(F.col("n") > 1)
    total = repeated.agg(F.count("*").alias("ids"), F.sum("n").alias("documents")).first()
    examples = [r.id for r in repeated.orderBy("id").limit(DUPLICATE_EXAMPLES).collect()]
    summary = {"ids": total.ids, "documents": int(total.documents or 0), "examples": examples, "policy": policy}
    if not total.ids:
        return summary
    said = (f"clean: {total.ids} ids are carried by more than one document ({summary['documents']} documents), "
            f"e.g. {', '.join(map(repr, examples))}")
    if policy == "fail":
        raise stagedir.StageError(f"{said}; set clean.duplicate_ids=derive to keep each under ID@FILE#ROW")
    print(f"warning: {said}; each is kept under ID@FILE#ROW (clean.duplicate_ids=fail refuses such input)",
          file=sys.stderr)
    by_part_uri = storage.join(work_uri, "duplicate_ids")
    carriers = ids.join(repeated.select("id"), "id", "left_semi").distinct()
    spark_io.write_by_part(carriers, by_part_uri)
    affected = {r.part for r in carriers.select("part").distinct().collect()}  # at most one row per part
    todo = [(p, _part_of(p)) for p in paths if _part_of(p) in affected]

    def rewrite(batches):
        for batch in batches:
            for uri, part in zip(*(batch.column(c).to_pylist() for c in ("uri", "part"))):
                fs, p = storage.resolve(uri)
                with fs.open_input_file(p) as f:
                    table = pq.read_table(f)
                duplicated = spark_io.read_part(by_part_uri, part).column("id").combine_chunks()
                table = table.set_column(0, "id", derived_ids(table.column("id").combine_chunks(), duplicated,
                                                              table.column("file").combine_chunks(),
                                                              table.column("line").combine_chunks()))
                new_uri = uri[: -len(".parquet")] + "-ids.parquet"
                with storage.open_output(new_uri) as sink:
                    pq.write_table(table, sink, compression="zstd")
                storage.delete(uri)
                yield pa.RecordBatch.from_pylist([{"old": uri, "new": new_uri}])

    jobs = spark.createDataFrame(spark.sparkContext.parallelize(todo, numSlices=len(todo)), "uri string, part int")
    moved = {r.old: r.new for r in jobs.mapInArrow(rewrite, "old string, new string").collect()}
    written.files["kept"] = [moved.get(p, p) for p in paths]
    return summary


class Clean(Stage):
    name = "clean"
    reads_raw = True

    def prepare(self) -> None:
        self.files = sorted(self.files or spark_io.list_inputs(self.input_uri))
        self.counters = {name: self.spark.sparkContext.accumulator(0) for name in COUNTERS}

    def routes(self) -> dict[str, Route]:
        return {**document_routes(DOC_COLUMNS, self.cfg), "rejected": Route("rejected", REJECT_COLUMNS)}

    def transform(self) -> spark_io.Transform:
        clean_cfg, counters = self.cfg.clean, self.counters

        def cleaned(batches):
            for batch in batches:
                out, counts = clean_batch(batch, clean_cfg)
                for name, n in counts.items():
                    counters[name].add(n)
                yield out

        return cleaned

    def input_count(self, output: Output) -> int:
        """The lines, rows and records the readers read, counted apart from the rows they made of them, so
        a reader that loses one fails the stage's reconciliation."""
        return self.units.value

    def finish(self, output: Output) -> dict:
        duplicates = resolve_duplicate_ids(self.spark, output.written, self.cfg.clean.duplicate_ids, self.work_uri)
        return {"input_files": len(self.files), "document_schema": stagedir.DOCUMENT_SCHEMA,
                "duplicate_ids": duplicates, **{name: acc.value for name, acc in self.counters.items()}}


STAGE = Clean
