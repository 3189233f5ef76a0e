"""The stages and their registry: what the stage jobs, the command line, jobs/pipeline.py, the report and
the ablation read to know which stages exist, in which order, and what each writes.

A stage is a `Stage` subclass (pipeline/stages/stage.py) bound to `STAGE` in pipeline/stages/<name>.py;
adding one is that module, a job script and an entry here (docs/DESIGN.md, "Adding a stage"). Importing
this module imports no Spark: a stage's module is loaded when it runs.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


def _always(cfg) -> bool:
    return True


def _with_benchmarks(cfg) -> bool:
    return bool(cfg.decontaminate.benchmarks)


@dataclass(frozen=True)
class Entry:
    name: str  # its directory under the pipeline's OUTPUT, its job (jobs/<name>.py) and its config section
    description: str  # what the stage does, for its job's --help
    documents: bool = True  # its data/ holds documents (schemas/document.v2.json), which the next stage reads
    enabled: Callable[[object], bool] = _always  # whether jobs/pipeline.py runs it under a PipelineConfig

    def stage(self) -> type:
        return importlib.import_module(f"pipeline.stages.{self.name}").STAGE


# The order jobs/pipeline.py runs them in, each reading the one before: FineWeb's, so only what passed the
# filter is deduplicated (docs/DESIGN.md, "Stage order").
REGISTRY = (
    Entry("clean", "Read raw documents (JSONL, JSONL.gz/.zst, Parquet, WARC/WET, HTML), decode HTML character "
          "references left in text, normalise Unicode, control characters, whitespace and boilerplate lines; "
          "unusable records go to rejected/ with file, line and reason."),
    Entry("filter", "Identify the language (fastText lid.176, or the fastText model at filter.langid_model, e.g. "
          "GlotLID), apply Gopher/C4/FineWeb quality rules (language-aware), drop mojibake, optionally score with "
          "a fastText quality classifier (filter.quality.model; train one with jobs/train_quality.py), replace "
          "e-mail and public IP addresses; every drop carries its reason."),
    Entry("dedupe", "Remove exact duplicates (hash of normalised text), then near duplicates (MinHash LSH, "
          "verified edges, distributed connected components); each cluster keeps its earliest-published copy "
          "(created date, then canonical URL, then id); writes clusters/."),
    Entry("decontaminate", "Drop the documents that share a word n-gram (13 words by default, as GPT-3 and OLMo) "
          "with a benchmark's text: decontaminate.benchmarks lists JSONL or Parquet files (each a benchmark named "
          "after its file), decontaminate.fields the fields matched; each drop says benchmark_overlap, with the "
          "benchmark and the count of shared n-grams in dropped/ (decontaminate.mode=mark keeps and marks them).",
          enabled=_with_benchmarks),
    Entry("tokenize", "Train (or load) a byte-level BPE, encode every document with EOS, and write WebDataset "
          "token shards for train/val plus tokenizer.json and manifest.json.", documents=False),
)
BY_NAME = {entry.name: entry for entry in REGISTRY}
STAGES = tuple(BY_NAME)


def enabled(cfg) -> list[Entry]:
    """The stages jobs/pipeline.py runs under `cfg`, in order."""
    return [entry for entry in REGISTRY if entry.enabled(cfg)]


def run(name: str, spark, input_uri: str, output_uri: str, cfg, files: list[str] | None = None) -> dict:
    """Run stage `name` from `input_uri` (raw files for clean, a committed stage otherwise) into `output_uri`
    and return its stats.json; `files`: only these raw input files (a scheduled run's new ones)."""
    return BY_NAME[name].stage()(spark, input_uri, output_uri, cfg, files).run()


def notes(name: str, stats: dict) -> str:
    """What an operator must read after stage `name` ran (printed last by the jobs); empty for nothing."""
    return BY_NAME[name].stage().notes(stats)
