"""The Spark stages: each `run(spark, input, output, cfg) -> stats` reads, transforms and commits."""
