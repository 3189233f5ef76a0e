"""The one shape of a stage: read, mark every row kept, dropped or rejected with a reason, write by route,
account, commit.

A stage subclasses `Stage` and fills in what is its own: `transform` (the per-part function: Arrow batches
in, the same rows out with `_status` and `_reason`), `routes` (where each status goes), `prepare` (work over
the whole input before that pass: a first pass, global decisions), `finish` (work over what was written,
and its extra stats.json keys).
`run` does the rest in the same order for every stage: check the settings, read the input's count, take
the output (`stagedir.begin`), prepare, read each part, transform and write it in one Python task (the text
never crosses into the JVM), check `input = kept + dropped + rejected`, commit. A stage whose output is not
rows by route (tokenize writes token shards) overrides `write`. Every Spark job a stage starts carries its
name as job group (`spark.jobGroup.id`), so the Spark UI and the event log tell which stage a job belongs to.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, ClassVar

from pyspark.sql import SparkSession

from pipeline import spark_io, stagedir, storage
from pipeline.stagedir import Route, WriteResult
from pipeline.stages.config import PipelineConfig


def document_routes(columns: list[str], cfg: PipelineConfig) -> dict[str, Route]:
    """Kept documents to data/, dropped ones (a bounded sample per reason, with it) to dropped/."""
    return {
        "kept": Route("data", columns),
        "dropped": Route("dropped", columns + ["_reason"], sample=cfg.audit.dropped_samples_per_reason),
    }


@dataclass
class Output:
    """What a stage's write produced: the rows' files and counts, and the small files committed after them
    (in order: the last is the commit point readers wait for)."""

    written: WriteResult
    extra_files: dict[str, bytes] = field(default_factory=dict)
    final_names: Callable[[str, str], str] | None = None  # route, temporary path -> committed file name


class Stage:
    name: ClassVar[str]
    reads_raw: ClassVar[bool] = False  # raw input files (clean) rather than a committed stage's parts

    def __init__(self, spark: SparkSession, input_uri: str, output_uri: str, cfg: PipelineConfig,
                 files: list[str] | None = None):
        self.spark, self.input_uri, self.output_uri, self.cfg = spark, input_uri, output_uri, cfg
        self.files = files  # raw stages: only these input files (a scheduled run's new ones)
        self.attempt = ""
        # raw stages: what the readers read, counted apart from their rows (a Spark accumulator)
        self.units = spark.sparkContext.accumulator(0) if self.reads_raw else None

    @property
    def work_uri(self) -> str:
        """This attempt's temporary directory: anything written there goes when the stage commits."""
        return storage.join(self.output_uri, stagedir.TEMPORARY, self.attempt)

    # ------------------------------------------------------------------------------------------ hooks

    def check(self) -> None:
        """Refuse settings that cannot work (raise StageError), before the output is touched."""

    def prepare(self) -> None:
        """Work over the whole input before the per-part pass (runs holding the output)."""

    def transform(self) -> spark_io.Transform:
        """The per-part function: an iterator of Arrow batches to the same rows with `_status` ('kept',
        'dropped', 'rejected') and `_reason`. It runs on executors: it must not capture `self`."""
        raise NotImplementedError

    def routes(self) -> dict[str, Route]:
        return document_routes(spark_io.stage_schema(self.input_uri).names, self.cfg)

    def finish(self, output: Output) -> dict:
        """Work over what was written, before it commits; returns this stage's own stats.json keys, beside
        the counts every stage has."""
        return {}

    def input_count(self, output: Output) -> int:
        """The records this run read: the input stage's kept documents."""
        return self.expected

    def close(self) -> None:
        """Release what `prepare` holds, whether the stage committed or failed."""

    def after_commit(self) -> None:
        """Work that must follow the commit (dedupe's index generation)."""

    @classmethod
    def notes(cls, stats: dict) -> str:
        """Lines an operator must read after the run (printed last by the jobs); empty for none."""
        return ""

    # ------------------------------------------------------------------------------------------ the run

    def write(self) -> Output:
        """Read each part, transform it and write its rows by route, in one task per part."""
        write = spark_io.part_writer(self.output_uri, self.routes(), self.attempt)
        transform = self.transform()

        def task(batches):
            return write(transform(batches))

        if self.reads_raw:
            df = spark_io.read_raw(self.spark, self.input_uri, self.cfg.clean.reader, self.cfg.clean.html, self.files,
                                   transform=task, schema=spark_io.WRITTEN, units=self.units)
        else:
            df = spark_io.read_stage(self.spark, self.input_uri, transform=task, schema=spark_io.WRITTEN)
        return Output(spark_io.collect_written(df))

    @contextmanager
    def job_group(self):
        """Label the Spark jobs started inside with this stage's name (group) and what it reads and writes
        (description); the caller's labels are restored afterwards."""
        sc = self.spark.sparkContext
        keys = ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel")
        before = {key: sc.getLocalProperty(key) for key in keys}
        sc.setJobGroup(self.name, f"{self.name}: {storage.display(self.input_uri)} -> "
                       f"{storage.display(self.output_uri)}")
        try:
            yield
        finally:
            for key, value in before.items():
                sc.setLocalProperty(key, value)  # None removes the key

    def run(self) -> dict:
        with self.job_group():
            start = time.time()
            self.check()
            self.expected = None if self.reads_raw else stagedir.read_stats(self.input_uri)["kept"]
            self.attempt = stagedir.begin(self.output_uri, self.input_uri)
            try:
                self.prepare()
                output = self.write()
                extra = self.finish(output)
                stats = stagedir.stage_stats(self.name, self.input_count(output), output.written,
                                             time.time() - start, **extra)
                stagedir.commit(self.output_uri, self.attempt, dict(output.written.files), stats,
                                output.extra_files, output.final_names)
            finally:
                self.close()
            self.after_commit()
        return stats
