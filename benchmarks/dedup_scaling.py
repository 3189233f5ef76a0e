"""Scaling of the whole dedupe stage: 1x, 2x and 4x input in one Spark session, time and candidate edges.

The 1x input is the first `--docs` documents of the shared corpus. Copy k (k = 1, 2, 3) of every document
gets a new id and a text in which every word is mapped consistently to a new word (letters appended after
the last letter or digit of each whitespace token; Han and kana characters rotated inside their blocks), so each copy of the
corpus has exactly the corpus's duplicate structure (same shingle-set Jaccards inside a copy) and shares
no shingle with the other copies: the work grows with the input, not the duplicate rate.

The stage (`pipeline.stages.dedupe.run`: sign, exact groups, LSH edges, verification, connected
components, write) runs once untimed to start the Python workers, then on each size. Session start-up
is reported on its own and excluded. Time is wall time and CPU time of the whole process tree (driver,
JVM, Python workers), which other jobs on a shared machine do not inflate; linearity is judged on CPU.
Target: time linear within 15% and candidate edges O(n) (edges per document constant). Every size runs
`--repeat` times, interleaved (1x 2x 4x 1x 2x 4x ...), and keeps its smallest CPU time, the run least
disturbed by other work. Linearity is printed three ways: CPU ratio / size ratio (1.0 = proportional; a
job's fixed cost makes it fall below 1), the marginal CPU per document of 1x->2x against 2x->4x, and the
distance of each size from the least-squares line CPU = fixed + per-document * n (linear growth with a
fixed cost: every size within 15% of the line).

    .venv/bin/python benchmarks/dedup_scaling.py [--docs 10000] [--cores 2] [--repeat 2]
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import labelled_corpus  # noqa: E402
from pipeline import config as config_lib  # noqa: E402
from pipeline import evaluate  # noqa: E402
from pipeline.stages import dedupe as dedupe_stage  # noqa: E402
from pipeline.stages.config import PipelineConfig  # noqa: E402

DOCS_PER_PART = 2000  # input Parquet parts (Spark tasks) grow with the input
HAN, HIRAGANA, KATAKANA = (0x4E00, 0x9FF0), (0x3041, 0x3097), (0x30A1, 0x30FB)
# A whitespace token up to its last letter or digit outside Han and kana: the suffix goes there, so that
# tokens equal after the normaliser drops punctuation ("don't", "dont") stay equal.
TOKEN_WORD = re.compile(r"(?<!\S)\S*[^\W_\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fef]")


def read_docs(corpus: Path, limit: int) -> list[dict]:
    docs = []
    for d in evaluate.documents(corpus):
        docs.append({"id": d["id"], "text": d["text"]})
        if len(docs) == limit:
            break
    return docs


def _rotation(k: int) -> dict[int, int]:
    table = {}
    for lo, hi in (HAN, HIRAGANA, KATAKANA):
        size = hi - lo
        shift = (k * 7919) % size
        table.update({c: lo + (c - lo + shift) % size for c in range(lo, hi)})
    return table


def perturbed_copy(docs: list[dict], k: int) -> list[dict]:
    """Copy k of the documents: new ids, every word mapped one-to-one to a word no other copy has."""
    suffix = "q" + "".join(chr(ord("a") + int(c)) for c in str(k))
    table = _rotation(k)
    return [{"id": f"{d['id']}-{k}",
             "text": TOKEN_WORD.sub(lambda m: m.group() + suffix, d["text"]).translate(table)} for d in docs]


def start_spark(cores: int):
    """A local[cores] session and the seconds it took to start."""
    from pyspark.sql import SparkSession

    start = time.perf_counter()
    spark = (SparkSession.builder.master(f"local[{cores}]").appName("dedup-bench")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.memory", "4g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark, time.perf_counter() - start


def tree_cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds used so far by a process and all its descendants (Linux /proc): this driver, Spark's
    JVM and its Python workers. Descendants that exited count through their parent's reaped-children
    time, so differences of this are the CPU a job cost, whatever else loads the machine."""
    root = pid or os.getpid()
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # exited while we looked
                continue
            stats[int(entry.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))  # ppid, ticks
    children: dict[int, list[int]] = {}
    for p, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(p)
    ticks, todo = 0, [root]
    while todo:
        p = todo.pop()
        ticks += stats.get(p, (0, 0))[1]
        todo += children.get(p, [])
    return ticks / os.sysconf("SC_CLK_TCK")


def timed(fn, *args) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process tree, result) of fn(*args)."""
    wall, cpu = time.perf_counter(), tree_cpu_seconds()
    result = fn(*args)
    return time.perf_counter() - wall, tree_cpu_seconds() - cpu, result


def run_stage(spark, stage_in: str, out: str) -> tuple[float, float, dict]:
    """Wall seconds, CPU seconds and stats.json of one dedupe stage run with the default config."""
    return timed(dedupe_stage.run, spark, stage_in, out, config_lib.load(PipelineConfig))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(labelled_corpus.DEFAULT))
    ap.add_argument("--docs", type=int, default=10000, help="documents in the 1x input")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="runs per size; the smallest CPU time is kept")
    args = ap.parse_args()

    base = read_docs(Path(args.corpus), args.docs)
    sizes = (1, 2, 4)
    copies = [base] + [perturbed_copy(base, k) for k in range(1, max(sizes))]
    with tempfile.TemporaryDirectory() as tmp:
        for s in sizes:
            docs = [d for c in copies[:s] for d in c]
            labelled_corpus.write_input_stage(f"{tmp}/in{s}", docs, len(docs) // DOCS_PER_PART)
        spark, startup = start_spark(args.cores)
        try:
            warm, _, _ = run_stage(spark, f"{tmp}/in1", f"{tmp}/warm")
            best: dict[int, tuple] = {}
            for r in range(args.repeat):
                for s in sizes:
                    seconds, cpu, stats = run_stage(spark, f"{tmp}/in{s}", f"{tmp}/out{s}-{r}")
                    print(f"{s}x: {stats['input']} documents in {seconds:.1f} s ({cpu:.1f} CPU s)", flush=True)
                    if s not in best or cpu < best[s][3]:
                        best[s] = (s, stats["input"], seconds, cpu, stats)
            rows = [best[s] for s in sizes]
        finally:
            spark.stop()

    print(f"\nlocal[{args.cores}]; session start-up {startup:.1f} s and a warm-up run of the 1x input "
          f"({warm:.1f} s) not counted; smallest CPU of {args.repeat} runs per size\n")
    print("| input | documents | wall s | CPU s | docs per CPU s | CPU ratio / size ratio | marginal CPU s "
          "per 1,000 docs | candidate edges | edges/doc | verified edges | near dups | exact dups | CC rounds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    _, n1, _, c1, st1 = rows[0]
    marginal = []
    for i, (s, n, t, c, st) in enumerate(rows):
        if i:
            _, n0, _, c0, _ = rows[i - 1]
            marginal.append(1000 * (c - c0) / (n - n0))
        print(f"| {s}x | {n:,} | {t:.1f} | {c:.1f} | {n / c:,.0f} | {(c / c1) / (n / n1):.2f} "
              f"| {marginal[-1] if i else float('nan'):.2f} | {st['candidate_edges']:,} "
              f"| {st['candidate_edges'] / n:.4f} | {st['verified_edges']:,} | {st['near_duplicates']:,} "
              f"| {st['exact_duplicates']:,} | {st['cc_rounds']} |")
    worst = max(abs((c / c1) / (n / n1) - 1) for _, n, _, c, _ in rows)
    marginal_change = marginal[-1] / marginal[0] - 1
    n_docs = np.array([n for _, n, _, _, _ in rows], dtype=float)
    cpu_s = np.array([c for _, _, _, c, _ in rows])
    per_doc, fixed = np.polyfit(n_docs, cpu_s, 1)
    off_line = np.max(np.abs(cpu_s / (fixed + per_doc * n_docs) - 1))
    edge_growth = max(abs((st["candidate_edges"] / n) / (st1["candidate_edges"] / n1) - 1) for _, n, _, _, st in rows)
    print(f"\nCPU time proportional to input within 15%: {'met' if worst <= 0.15 else 'not met'} (largest "
          f"deviation {worst:.0%}); marginal CPU per document 1x->2x vs 2x->4x within 15%: "
          f"{'met' if abs(marginal_change) <= 0.15 else 'not met'} ({marginal_change:+.0%}); every size within "
          f"15% of the line {fixed:.1f} s + {1000 * per_doc:.2f} s per 1,000 docs: "
          f"{'met' if off_line <= 0.15 else 'not met'} (largest distance {off_line:.1%}); edges O(n): "
          f"{'met' if edge_growth <= 0.15 else 'not met'} (edges per document vary by {edge_growth:.1%})")

if __name__ == "__main__":
    main()
