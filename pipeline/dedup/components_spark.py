"""Connected components of an edge DataFrame by alternating large-star and small-star rounds.

Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014): every round is a few
joins and aggregations over edges, none holds the graph in one place, and the number of rounds grows
with log(n) rather than with the diameter, so a 1,000-document chain converges in a handful of rounds.
Each round is written to `checkpoint_dir` and read back, which cuts the lineage that would otherwise
grow with every round. Once the edges left are at most `driver_max_edges`, they are collected and
finished in one pass on the driver (`components_local`): a round costs seconds of fixed Spark work
however small the graph, and most corpora's duplicate graphs are small.
"""
from __future__ import annotations

import logging
from typing import NamedTuple

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipeline.dedup.components_local import smallest_id_components

log = logging.getLogger(__name__)


class Components(NamedTuple):
    members: DataFrame  # id, component: every node on an edge
    rounds: int  # distributed rounds run
    driver_edges: int  # edges finished on the driver (0 when the rounds converged)


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


def _finish_on_driver(edges: DataFrame) -> DataFrame:
    """Components of a small edge DataFrame (u, v), computed in this process; self-loops ignored, as in
    the rounds."""
    table = edges.where(F.col("u") != F.col("v")).toArrow()
    components = smallest_id_components(table.column("u").combine_chunks(), table.column("v").combine_chunks())
    return edges.sparkSession.createDataFrame(components)


def connected_components(
    edges: DataFrame, checkpoint_dir: str, max_rounds: int = 50, driver_max_edges: int = 0
) -> Components:
    """(id, component) for every node that appears in `edges` (columns src, dst), and how it was found.

    `component` is the smallest id of the node's component, so the result does not depend on edge order,
    partitioning or where it was computed. Raises if the graph still has more than `driver_max_edges`
    edges and has not converged after `max_rounds` rounds.
    """
    current = edges.select(F.col("src").alias("u"), F.col("dst").alias("v"))
    n_edges = current.count()
    round_ = 0
    if n_edges > driver_max_edges:
        current = current.where(F.col("u") != F.col("v")).select(
            F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v")
        ).distinct()
        current = checkpoint(current, f"{checkpoint_dir}/round-000")
    while n_edges > driver_max_edges:
        if round_ == max_rounds:
            raise RuntimeError(f"connected components did not converge in {max_rounds} rounds (max_cc_rounds)")
        round_ += 1
        current = checkpoint(_small_star(_large_star(current)), f"{checkpoint_dir}/round-{round_:03d}")
        n_edges, done = _star_forest(current)
        log.info("connected components round %d: %d edges%s", round_, n_edges, ", converged" if done else "")
        if done:
            roots = current.select(F.col("v").alias("id"), F.col("v").alias("component")).distinct()
            members = current.select(F.col("u").alias("id"), F.col("v").alias("component"))
            return Components(members.unionByName(roots), round_, 0)
    log.info("connected components: %d edges finished on the driver", n_edges)
    return Components(_finish_on_driver(current), round_, n_edges)
