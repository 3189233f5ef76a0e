"""The whole pipeline's settings: one dataclass per stage, one YAML file with a section per stage."""
from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.clean.text import TextConfig
from pipeline.config import ConfigError
from pipeline.dedup import DedupeConfig
from pipeline.filter.config import FilterConfig
from pipeline.readers.html import HtmlConfig
from pipeline.readers.records import ReaderConfig
from pipeline.state import StateConfig
from pipeline.tokenize.tokenizer import TokenizeConfig

DUPLICATE_ID_POLICIES = ("derive", "fail")


@dataclass
class CleanConfig:
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    html: HtmlConfig = field(default_factory=HtmlConfig)
    text: TextConfig = field(default_factory=TextConfig)
    # Decode HTML character references left in plain text, "&#39;" -> "'" (pipeline/clean/entities.py).
    unescape_html_entities: bool = True
    # C4-style removal of cookie/privacy/javascript notice lines (pipeline/clean/boilerplate.py).
    remove_boilerplate_lines: bool = True
    # An id that more than one kept record carries (corpora merged from several sources reuse ids):
    # "derive" keeps every such record under `ID@FILE#ROW` (ROW: its 1-based row in that file's kept
    # documents), so later stages, which key documents by id, never mistake one for another; "fail" stops
    # the stage naming examples. Either way stats.json's `duplicate_ids` counts them.
    duplicate_ids: str = "derive"

    def __post_init__(self):
        if self.duplicate_ids not in DUPLICATE_ID_POLICIES:
            raise ConfigError(f"clean.duplicate_ids: expected one of {', '.join(DUPLICATE_ID_POLICIES)}, "
                              f"got {self.duplicate_ids!r}")


@dataclass
class DedupeStageConfig(DedupeConfig):
    # Where connected components checkpoint each round. Spark writes it itself, so on a cluster it must be
    # storage every executor reaches (HDFS, a shared mount). Empty: OUTPUT/dedupe/_temporary for local
    # output, else a local temporary directory (fine for local mode only).
    checkpoint_dir: str = ""
    # Number of parts of clusters/ and of a dedup index generation (rows hashed by id into them, sorted by
    # id). 0: as many as the input stage has. Kept documents stay in their input parts, in input order.
    partitions: int = 0
    # URI of a persisted dedup index (pipeline/dedup/index_spark.py). Set: documents that duplicate its
    # history are dropped too, and this batch's newly kept documents are added as a new generation.
    index: str = ""


@dataclass
class AuditConfig:
    # How many dropped documents per reason (per partition) each stage keeps in dropped/ for audit.
    dropped_samples_per_reason: int = 20


@dataclass
class PipelineConfig:
    clean: CleanConfig = field(default_factory=CleanConfig)
    dedupe: DedupeStageConfig = field(default_factory=DedupeStageConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    state: StateConfig = field(default_factory=StateConfig)  # scheduled runs (jobs/pipeline.py --state)
