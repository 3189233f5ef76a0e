"""The `filter` stage's logic: fastText language ID, Gopher / C4 / FineWeb quality rules, PII replacement.

Pure functions over Arrow batches; the Spark stage wraps `filter_batch` in `mapInArrow`.
"""
from pipeline.filter.batch import filter_batch, filter_counters
from pipeline.filter.config import (
    C4Config,
    FilterConfig,
    FineWebConfig,
    GopherQualityConfig,
    GopherRepetitionConfig,
    RuleSet,
)

__all__ = [
    "C4Config",
    "FilterConfig",
    "FineWebConfig",
    "GopherQualityConfig",
    "GopherRepetitionConfig",
    "RuleSet",
    "filter_batch",
    "filter_counters",
]
