"""The Spark stages: each `run(spark, input, output, cfg) -> stats` reads, transforms and commits."""

# The order jobs/pipeline.py runs them in, each reading the one before: FineWeb's, so only what passed the
# filter is deduplicated (docs/DESIGN.md, "Stage order").
STAGES = ("clean", "filter", "dedupe", "tokenize")
