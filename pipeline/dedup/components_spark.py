"""Connected components of an edge DataFrame by alternating large-star and small-star rounds.

Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014): every round is a few
joins and aggregations over edges, nothing is collected to the driver, and the number of rounds grows
with log(n) rather than with the diameter, so a 1,000-document chain converges in a handful of rounds.
Each round is written to `checkpoint_dir` and read back, which cuts the lineage that would otherwise
grow with every round.
"""
from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

log = logging.getLogger(__name__)


def checkpoint(df: DataFrame, path: str) -> DataFrame:
    """Materialise `df` as Parquet at `path` and read it back: a lineage cut that works on any Spark URI."""
    df.write.mode("overwrite").parquet(path)
    return df.sparkSession.read.parquet(path)


def _smallest_neighbour() -> Column:
    """min(v) over the edges of the row's u: a window instead of an aggregate joined back, one shuffle
    instead of two (a hub's edges are buffered with spilling, so a huge star stays in bounded memory)."""
    return F.min("v").over(Window.partitionBy("u"))


def _large_star(edges: DataFrame) -> DataFrame:
    """Connect every larger neighbour of u to the smallest node of u's neighbourhood (u included)."""
    both = edges.unionByName(edges.select(F.col("v").alias("u"), F.col("u").alias("v")))
    return (
        both.withColumn("m", F.least(F.col("u"), _smallest_neighbour()))
        .where(F.col("v") > F.col("u"))
        .select(F.col("v").alias("u"), F.col("m").alias("v"))
        .distinct()
    )


def _small_star(edges: DataFrame) -> DataFrame:
    """Connect u and its smaller neighbours to the smallest of them: (v, m) for every smaller neighbour
    v but m itself, and (u, m)."""
    down = edges.select(F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v"))
    down = down.withColumn("m", _smallest_neighbour())
    to_smallest = F.array(F.struct(F.col("v").alias("u"), F.col("m").alias("v")),
                          F.struct(F.col("u").alias("u"), F.col("m").alias("v")))
    return (
        down.select(F.explode(to_smallest).alias("e"))
        .select("e.u", "e.v")
        .where(F.col("u") != F.col("v"))
        .distinct()
    )


def _star_forest(edges: DataFrame) -> tuple[int, bool]:
    """The number of edges, and whether every node has one edge to a node that has none: each
    component is then a star around its smallest id. One aggregation over each node's roles (child
    of an edge, parent of one), a single job."""
    roles = edges.select(F.col("u").alias("node"), F.lit(1).alias("child"), F.lit(False).alias("parent")).unionByName(
        edges.select(F.col("v").alias("node"), F.lit(0).alias("child"), F.lit(True).alias("parent")))
    per_node = roles.groupBy("node").agg(F.sum("child").alias("edges"), F.max("parent").alias("parent"))
    row = per_node.agg(F.sum("edges").alias("edges"), F.max("edges").alias("most"),
                       F.max((F.col("edges") > 0) & F.col("parent")).alias("inner")).first()
    return row["edges"] or 0, not row["inner"] and (row["most"] or 0) <= 1


def connected_components(
    edges: DataFrame, checkpoint_dir: str, max_rounds: int = 50
) -> tuple[DataFrame, int]:
    """(id, component) for every node that appears in `edges` (columns src, dst), and the rounds used.

    `component` is the smallest id of the node's component, so the result does not depend on edge order
    or partitioning. Raises if the graph has not converged after `max_rounds` rounds.
    """
    current = edges.where(F.col("src") != F.col("dst")).select(
        F.greatest("src", "dst").alias("u"), F.least("src", "dst").alias("v")
    ).distinct()
    current = checkpoint(current, f"{checkpoint_dir}/round-000")
    for round_ in range(1, max_rounds + 1):
        current = checkpoint(_small_star(_large_star(current)), f"{checkpoint_dir}/round-{round_:03d}")
        n_edges, done = _star_forest(current)
        log.info("connected components round %d: %d edges%s", round_, n_edges, ", converged" if done else "")
        if done:
            roots = current.select(F.col("v").alias("id"), F.col("v").alias("component")).distinct()
            members = current.select(F.col("u").alias("id"), F.col("v").alias("component"))
            return members.unionByName(roots), round_
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds (max_cc_rounds)")
