"""The whole pipeline's settings: one dataclass per stage, one YAML file with a section per stage."""
from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.clean.config import CleanConfig
from pipeline.config import check_ranges
from pipeline.decontaminate import DecontaminateConfig
from pipeline.dedup.config import DedupeConfig
from pipeline.filter.config import FilterConfig
from pipeline.state import StateConfig
from pipeline.tokenize.tokenizer import TokenizeConfig

# The values each numeric setting can take (pipeline.config.check_ranges), checked whenever a config is
# loaded, so a mistyped number fails before any stage starts rather than deep inside a Spark job.
# Seeds are absent: any integer seeds a hash. `state` checks its own (pipeline/lock.py).
RANGES = {
    "clean.reader.max_text_bytes": "[1, inf)",
    "clean.reader.max_line_bytes": "[1, inf)",
    "clean.reader.split_bytes": "[1, inf)",
    "clean.reader.max_decompressed_bytes": "[1, inf)",
    "clean.html.max_html_bytes": "[1, inf)",
    "clean.html.max_bad_char_share": "[0, 1]",
    "clean.html.max_html_depth": "[1, inf)",
    "clean.text.max_blank_lines": "[0, inf)",
    "dedupe.threshold": "(0, 1]",
    "dedupe.num_perm": "[1, inf)",
    "dedupe.bands": "[1, inf)",
    "dedupe.rows": "[1, inf)",
    "dedupe.false_positive_weight": "[0, 1]",
    "dedupe.false_negative_weight": "[0, 1]",
    "dedupe.ngram": "[1, inf)",
    "dedupe.char_ngram": "[1, inf)",
    "dedupe.char_script_fraction": "[0, 1]",
    "dedupe.seed": "[0, inf)",  # NumPy's PCG64 takes no negative seed
    "dedupe.max_cc_rounds": "[1, inf)",
    "dedupe.cc_driver_max_edges": "[0, inf)",
    "dedupe.partitions": "[0, inf)",
    "filter.min_lang_score": "[0, 1]",
    "filter.adaptive_min_docs": "[1, inf)",
    "filter.lang_words_min_share": "(0, 1]",
    "filter.lang_words_min_median_score": "[0, 1]",
    "filter.langid_max_chars": "[1, inf)",
    "filter.quality.threshold": "[0, 1]",
    "filter.quality.max_chars": "[1, inf)",
    "filter.main_content_min_share": "[0, 1]",
    # Every rule set (english, other_languages): fractions of a document are at most 1, counts and lengths
    # are not; '#' and ellipses per word and newlines per word may exceed 1.
    "filter.*.min_lang_score": "[0, 1]",
    "filter.*.gopher_repetition.*_frac": "[0, 1]",
    "filter.*.gopher_quality.min_doc_words": "[0, inf)",
    "filter.*.gopher_quality.short_prose_min_words": "[0, inf)",
    "filter.*.gopher_quality.short_prose_min_stop_words": "[0, inf)",
    "filter.*.gopher_quality.max_doc_words": "[0, inf)",
    "filter.*.gopher_quality.min_avg_word_length": "[0, inf)",
    "filter.*.gopher_quality.max_avg_word_length": "[0, inf)",
    "filter.*.gopher_quality.max_symbol_word_ratio": "[0, inf)",
    "filter.*.gopher_quality.max_bullet_lines_ratio": "[0, 1]",
    "filter.*.gopher_quality.max_ellipsis_lines_ratio": "[0, 1]",
    "filter.*.gopher_quality.min_list_lines": "[0, inf)",
    "filter.*.gopher_quality.min_alpha_words_ratio": "[0, 1]",
    "filter.*.gopher_quality.min_stop_words": "[0, inf)",
    "filter.*.c4.min_num_sentences": "[0, inf)",
    "filter.*.c4.min_words_per_line": "[0, inf)",
    "filter.*.c4.max_word_length": "[1, inf)",
    "filter.*.fineweb.line_punct_thr": "[0, 1]",
    "filter.*.fineweb.short_line_thr": "[0, 1]",
    "filter.*.fineweb.short_line_length": "[0, inf)",
    "filter.*.fineweb.char_duplicates_ratio": "[0, 1]",
    "filter.*.fineweb.new_line_ratio": "[0, inf)",
    "tokenize.vocab_size": "[257, inf)",  # a byte-level BPE holds the 256 bytes and EOS
    "tokenize.min_frequency": "[0, inf)",
    "tokenize.train_docs": "[1, inf)",
    "tokenize.train_chars_per_doc": "[1, inf)",
    "tokenize.sample_tokens": "[1, inf)",
    "tokenize.shard_bytes": "[1, inf)",
    "tokenize.val_fraction": "[0, 1]",
    "decontaminate.ngram": "[1, inf)",
    "audit.dropped_samples_per_reason": "[0, inf)",
}


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
    # benchmark decontamination, after dedupe (runs when decontaminate.benchmarks is set)
    decontaminate: DecontaminateConfig = field(default_factory=DecontaminateConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    state: StateConfig = field(default_factory=StateConfig)  # scheduled runs (jobs/pipeline.py --state)

    def __post_init__(self):
        check_ranges(self, RANGES)
