"""Exact and near-duplicate removal: pure MinHash functions (`minhash`) and the Spark stage (`dedupe`)."""
from pipeline.dedup.dedupe_spark import DedupeConfig, DedupeResult, dedupe

__all__ = ["DedupeConfig", "DedupeResult", "dedupe"]
