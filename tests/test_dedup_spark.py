"""The Spark dedupe stage: exact and near duplicates, verification, star edges, connected components,
and output that does not depend on partitioning."""
from __future__ import annotations

import logging
import random

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from pipeline.dedup.config import DedupeConfig
from pipeline.dedup.dedupe_spark import dedupe
from pipeline.dedup.components_spark import _star_forest, connected_components
from pipeline.dedup.decisions import mark

WORDS = ("river stone lantern orchard velvet harbor meadow copper whisper canyon glacier saddle "
         "thistle amber quarry falcon marble pepper ribbon timber walnut cobalt ember fjord").split()


def prose(n_words: int, seed: int) -> list[str]:
    return list(np.random.default_rng(seed).choice(WORDS, n_words))


def substitute(words: list[str], positions: list[int]) -> str:
    out = list(words)
    for p in positions:
        out[p] = "zebra"
    return " ".join(out)


BASE = prose(200, 1)
ZH = "今天天气很好我们去公园散步吧然后一起吃晚饭再回家看书睡觉明天早上还要早起去上班工作"
# id -> (text, expected status, expected reason, expected cluster or None)
FIXTURE = {
    "m-orig": (" ".join(BASE), "kept", None, "a-near"),
    "a-near": (substitute(BASE, [20, 100, 180]), "kept", None, "a-near"),
    "z-exact": (" ".join(BASE).upper().replace(" ", ",  "), "dropped", "exact_duplicate", "a-near"),
    "q-near2": (substitute(BASE, [20, 100, 150]), "dropped", "near_duplicate", "a-near"),
    "b-half": (" ".join(BASE[:100] + prose(100, 2)), "kept", None, None),
    "c-other": (" ".join(prose(150, 3)), "kept", None, None),
    "k-zh": (ZH * 2, "dropped", "near_duplicate", "d-zh"),
    "d-zh": (ZH * 2 + "好", "kept", None, "d-zh"),
    "e-short": ("two words", "kept", None, "e-short"),
    "f-short": ("Two words!", "dropped", "exact_duplicate", "e-short"),
    "g-empty": ("", "kept", None, None),
}
FIXTURE["m-orig"] = (FIXTURE["m-orig"][0], "dropped", "near_duplicate", "a-near")


def fixture_frame(spark, partitions: int):
    rows = [(i, text, f"src-{i}") for i, (text, *_ ) in FIXTURE.items()]
    return spark.createDataFrame(rows, "id string, text string, source string").repartition(partitions)


def statuses(out, ids) -> dict[str, tuple[str, str | None]]:
    """(status, reason) of every id, from the result's decisions (the dropped ids and their reasons)."""
    dropped = {r["id"]: r["_reason"] for r in out.decisions.collect()}
    return {i: ("dropped", dropped[i]) if i in dropped else ("kept", None) for i in ids}


@pytest.fixture(scope="module")
def result(spark, tmp_path_factory):
    out = dedupe(fixture_frame(spark, 3), DedupeConfig(), str(tmp_path_factory.mktemp("dedupe")))
    return out, statuses(out, FIXTURE), sorted(tuple(r) for r in out.clusters.collect())


def test_exact_and_near_duplicates_are_dropped_and_without_dates_the_smallest_id_is_kept(result):
    out, got, clusters = result
    assert got == {i: (status, reason) for i, (_, status, reason, _) in FIXTURE.items()}
    expected_clusters = sorted((i, c, i == c) for i, (*_, c) in FIXTURE.items() if c is not None)
    assert clusters == expected_clusters
    assert out.stats["exact_duplicates"] == 2 and out.stats["near_duplicates"] == 3
    assert out.stats["cluster_size_histogram"] == {2: 2, 4: 1}
    assert out.stats["parameters"]["bands"] * out.stats["parameters"]["rows"] <= 128


def test_each_cluster_keeps_its_earliest_publication_at_its_canonical_url(spark, tmp_path):
    text = " ".join(BASE)
    rows = [  # id, text, created, url
        ("a-late", text, "2022-02-02", "https://example.org/a"),
        ("b-early", substitute(BASE, [20, 100]), "2010-05-05", "https://example.org/a?utm_source=feed"),
        ("c-early-canonical", substitute(BASE, [20, 150]), "2010-05-05", "https://example.org/a"),
        ("d-undated", text, None, "https://example.org/a"),
    ]
    df = spark.createDataFrame(rows, "id string, text string, created string, url string")
    out = dedupe(df, DedupeConfig(), str(tmp_path))
    assert sorted(tuple(r) for r in out.clusters.collect()) == [
        ("a-late", "c-early-canonical", False), ("b-early", "c-early-canonical", False),
        ("c-early-canonical", "c-early-canonical", True), ("d-undated", "c-early-canonical", False)]
    reasons = {r["id"]: r["_reason"] for r in out.decisions.collect()}
    # The exact pair's earlier member is kept within the pair and then loses to the cluster's choice.
    assert reasons == {"a-late": "near_duplicate", "b-early": "near_duplicate", "d-undated": "exact_duplicate"}


def test_output_is_identical_for_any_partition_count_and_either_components_path(result, spark, tmp_path):
    _, got, clusters = result
    for partitions, driver_max_edges in ((1, 10**6), (5, 10**6), (3, 0)):
        cfg = DedupeConfig(cc_driver_max_edges=driver_max_edges)
        other = dedupe(fixture_frame(spark, partitions), cfg, str(tmp_path / f"{partitions}-{driver_max_edges}"))
        assert statuses(other, FIXTURE) == got
        assert sorted(tuple(r) for r in other.clusters.collect()) == clusters
        assert (other.stats["cc_rounds"] > 0) == (driver_max_edges == 0)


def test_decisions_mark_each_dropped_id_with_its_reason_and_keep_every_other(result):
    out, got, _ = result
    decided = {r["id"]: r["_reason"] for r in out.decisions.collect()}
    assert decided == {i: reason for i, (status, reason) in got.items() if status == "dropped"}
    batch = pa.RecordBatch.from_pydict({"id": ["a", "b", "c", "d"], "text": ["1", "2", "3", "4"]})
    dropped = pa.table({"id": ["c", "zz", "a"], "_reason": ["near_duplicate", "exact_duplicate", "exact_duplicate"]})
    marked = mark(batch, dropped).to_pydict()
    assert marked["_status"] == ["dropped", "kept", "dropped", "kept"]
    assert marked["_reason"] == ["exact_duplicate", None, "near_duplicate", None]
    assert marked["text"] == ["1", "2", "3", "4"]
    assert mark(batch, None).to_pydict()["_status"] == ["kept"] * 4


def test_verification_rejects_lsh_candidates_below_the_threshold(spark, tmp_path):
    # Half the text in common (Jaccard ~0.33): with 64 bands of 2 rows LSH proposes the pair for sure.
    df = spark.createDataFrame([("a", " ".join(BASE)), ("b", FIXTURE["b-half"][0])], "id string, text string")
    loose = DedupeConfig(bands=64, rows=2)
    verified = dedupe(df, loose, str(tmp_path / "verified"))
    assert verified.stats["candidate_edges"] == 1 and verified.stats["rejected_edges"] == 1
    assert verified.decisions.count() == 0
    unverified = dedupe(df, DedupeConfig(bands=64, rows=2, verify=False), str(tmp_path / "unverified"))
    assert unverified.decisions.count() == 1


def test_a_bucket_of_ten_thousand_near_identical_documents_becomes_a_star(spark, tmp_path):
    k = 10_000
    base = " ".join(prose(300, 4))
    suffix = lambda i: "".join(chr(97 + (i // 26**p) % 26) for p in range(3))  # noqa: E731
    df = spark.range(k).select(
        F.format_string("d%05d", "id").alias("id"),
        F.concat(F.lit(base + " "), F.udf(suffix)("id")).alias("text"),
    )
    out = dedupe(df, DedupeConfig(), str(tmp_path))
    stats = out.stats
    # A star per band bucket: at most (k - 1) edges per band, never the k^2/2 pairs of the bucket.
    assert k - 1 <= stats["candidate_edges"] <= stats["parameters"]["bands"] * (k - 1)
    assert stats["candidate_edges"] < 3 * k
    assert stats["cluster_size_histogram"] == {k: 1}
    assert out.clusters.where("kept").select("id").collect()[0]["id"] == "d00000"
    assert stats["near_duplicates"] == k - 1


DRIVER = pytest.mark.parametrize("driver_max_edges", [0, 10**6], ids=["rounds", "driver"])


@DRIVER
def test_connected_components_converge_on_a_long_chain(spark, tmp_path, caplog, driver_max_edges):
    n = 1000
    edges = [(f"n{i:04d}", f"n{i + 1:04d}") for i in range(n - 1)]
    random.Random(0).shuffle(edges)
    df = spark.createDataFrame(edges, "src string, dst string").repartition(4)
    with caplog.at_level(logging.INFO, logger="pipeline.dedup.components_spark"):
        components, rounds, driver_edges = connected_components(df, str(tmp_path), 30, driver_max_edges)
    rows = components.collect()
    assert len(rows) == n and {r["component"] for r in rows} == {"n0000"}
    assert sum("connected components round" in m for m in caplog.messages) == rounds
    assert (rounds > 0, driver_edges) == ((True, 0) if driver_max_edges == 0 else (False, n - 1))


@DRIVER
def test_connected_components_keep_separate_graphs_apart(spark, tmp_path, driver_max_edges):
    edges = [("e", "d"), ("d", "c"), ("x", "y"), ("y", "w"), ("m", "p"), ("p", "o"), ("o", "m"), ("s", "s")]
    df = spark.createDataFrame(edges, "src string, dst string")
    components, _, _ = connected_components(df, str(tmp_path), driver_max_edges=driver_max_edges)
    assert dict((r["id"], r["component"]) for r in components.collect()) == {
        "c": "c", "d": "c", "e": "c", "w": "w", "x": "w", "y": "w", "m": "m", "o": "m", "p": "m"}


def test_connected_components_finish_on_the_driver_once_the_graph_is_small(spark, tmp_path, caplog):
    """A random forest of chains and stars: rounds until the edges left fit the bound, then the driver;
    the same components as rounds alone."""
    rng = random.Random(3)
    ids = [f"{rng.getrandbits(48):012x}" for _ in range(3000)]
    edges = [(a, b) for a, b in zip(ids, ids[1:]) if rng.random() < 0.9]
    edges += [(ids[0], rng.choice(ids)) for _ in range(300)]
    edges += [(a, b) for a in ids[100:160] for b in ids[100:160] if a < b]  # a clique: rounds shrink it
    df = spark.createDataFrame(edges, "src string, dst string")
    by_rounds, rounds, _ = connected_components(df, str(tmp_path / "a"))
    with caplog.at_level(logging.INFO, logger="pipeline.dedup.components_spark"):
        mixed, mixed_rounds, driver_edges = connected_components(df, str(tmp_path / "b"), driver_max_edges=4000)
    assert 0 < mixed_rounds < rounds and 0 < driver_edges <= 4000
    assert any("finished on the driver" in m for m in caplog.messages)
    assert sorted(mixed.collect()) == sorted(by_rounds.collect())


def test_connected_components_stop_at_the_round_limit(spark, tmp_path):
    edges = [(f"n{i:03d}", f"n{i + 1:03d}") for i in range(200)]
    with pytest.raises(RuntimeError, match="max_cc_rounds"):
        connected_components(spark.createDataFrame(edges, "src string, dst string"), str(tmp_path), max_rounds=1)


@pytest.mark.parametrize("edges, expected", [
    ([("b", "a"), ("c", "a"), ("d", "a")], (3, True)),  # one star around its smallest node
    ([("b", "a"), ("d", "c")], (2, True)),  # two stars
    ([("b", "a"), ("c", "b")], (2, False)),  # a chain: b is a child and a parent
    ([("b", "a"), ("b", "c")], (2, False)),  # b has two parents
    ([], (0, True)),
])
def test_convergence_check_recognises_a_forest_of_stars(spark, edges, expected):
    assert _star_forest(spark.createDataFrame(edges, "u string, v string")) == expected
