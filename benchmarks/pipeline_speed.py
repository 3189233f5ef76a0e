"""Whole-pipeline throughput: `spark-submit jobs/pipeline.py` from raw JSONL to shards, in MB of input text
per second per core, beside bare single-thread `encode_batch` (the bound to compare with) and the stage's own
`encode_texts` (`encode_batch_fast`, which skips the offsets) in the same run.

The pipeline runs twice, on a part of the corpus (`--part`) and on all of it (`--shards`). Costs that do not
grow with the input (JVM and session, per-job scheduling, the connected-components rounds' fixed part) cancel
in the difference, so the steady state is the marginal rate: (extra MB) / (extra seconds) / cores, and the
fixed part is the intercept of the line through the two runs. BPE training reads a sample bounded by
`tokenize.train_docs`, so on a large corpus it is fixed too, but here a run may sample all its documents: its
wall and CPU time (from the job's log) are taken out of the tokenize stage and reported apart. Per stage, the
same two-point line gives marginal seconds per MB and a fixed part. CPU seconds of the job's process tree, read
from /proc at each stage's start and end, are reported beside wall time: the machine is shared, and CPU time
moves less with other people's load. Each size runs `--repeat` times, alternating, and the run with the
median wall time (BPE training excluded) stands for it: identical runs differ by 10-20% here, mostly in
the JVM's warm-up (JIT and query compilation, ~20 CPU s in the dedupe stage alone), in either direction,
and the minimum of each size would let one lucky small run decide the difference. The smaller run is a
quarter of the corpus, so that the difference the steady state is measured over is three quarters of it.
Input text MB is the UTF-8 size of the `text` of every record the reader accepts.

    .venv/bin/python benchmarks/pipeline_speed.py [--part 'docs-0[01].jsonl.gz'] [--shards 'docs-*.jsonl.gz'] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ["RAYON_NUM_THREADS"] = "1"  # the bare side is one thread: a per-core rate
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import labelled_corpus  # noqa: E402
from pipeline import evaluate  # noqa: E402
from pipeline.tokenize.shards import token_dtype  # noqa: E402
from pipeline.tokenize.tokenizer import encode_texts, load_tokenizer  # noqa: E402

STARTUP = """\
from pyspark.sql import SparkSession
SparkSession.builder.appName("startup").getOrCreate().range(10).count()
"""
STAGES = ("clean", "dedupe", "filter", "tokenize")
STARTED = re.compile(r"^\[pipeline\] (clean|dedupe|filter|tokenize): ", re.M)
FINISHED = re.compile(r"^(clean|dedupe|filter|tokenize): input [0-9,]+ -> kept", re.M)
TRAINED = re.compile(r"\[tokenize\] trained the BPE in ([0-9.]+) s \(([0-9.]+) CPU s\)")


@dataclass
class Run:
    """One spark-submit of the pipeline: wall seconds, CPU seconds of its four stages, per stage too, and its
    input."""

    shards: str
    records: int
    text_mb: float
    wall: float
    cpu: float
    stages: dict[str, float]
    stage_cpu: dict[str, float]
    train: float
    train_cpu: float
    load: float


def tree_cpu(root: int) -> float:
    """CPU seconds so far of process `root` and all its descendants (their reaped children included)."""
    parent, cpu = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        pid = int(stat.parent.name)
        parent[pid] = int(fields[1])
        cpu[pid] = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    tree, frontier = {root}, [root]
    while frontier:
        children = [p for p, pp in parent.items() if pp in frontier and p not in tree]
        tree.update(children)
        frontier = children
    return sum(cpu.get(p, 0.0) for p in tree)


def spark_submit(script: str, args: list[str], cores: int, log: Path) -> tuple[float, dict]:
    """(wall seconds, CPU seconds of the job's process tree, JVM and Python workers, when each stage's start
    line and summary line appeared in the log, by ("start"|"end", stage)). The tree is read from /proc while
    the job runs: rusage of children misses Python workers that outlive the daemon which forked them."""
    env = {k: v for k, v in os.environ.items() if k != "RAYON_NUM_THREADS"}  # the job runs as a user would
    env.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", f"local[{cores}]",
           "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.memory=6g",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1", script, *args]
    marks: dict[tuple[str, str], float] = {}
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            text = log.read_text()
            for mark in [("start", s) for s in STARTED.findall(text)] + [("end", s) for s in FINISHED.findall(text)]:
                if mark not in marks:
                    marks[mark] = tree_cpu(proc.pid)
            time.sleep(0.2)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed; the end of its log:\n{log.read_text()[-4000:]}")
    return seconds, marks


def run_pipeline(corpus: Path, shards: str, work: Path, cores: int) -> Run:
    texts = [d["text"] for d in evaluate.documents(corpus, shards)]
    raw = work / "raw"
    raw.mkdir(parents=True)
    for path in sorted((corpus / "raw").glob(shards)):
        os.symlink(path, raw / path.name)
    log = work / "pipeline.log"
    wall, marks = spark_submit("jobs/pipeline.py", ["--input", str(raw), "--output", str(work / "out")], cores, log)
    load = os.getloadavg()[1]  # the 5-minute average: about the run's own span
    summary = json.loads((work / "out" / "pipeline.json").read_text())
    train, train_cpu = map(float, TRAINED.findall(log.read_text())[-1])
    cpu = marks[("end", STAGES[-1])] - marks[("start", STAGES[0])]
    return Run(shards, len(texts), sum(len(t.encode("utf-8")) for t in texts) / 1e6, wall, cpu,
               {s["stage"]: s["seconds"] for s in summary["stages"]},
               {s: marks[("end", s)] - marks[("start", s)] for s in STAGES}, train, train_cpu, load)


def median_run(runs: list[Run]) -> Run:
    """The run of median wall time without BPE training (the lower middle one of an even number)."""
    return sorted(runs, key=lambda r: r.wall - r.train)[(len(runs) - 1) // 2]


def line(small: float, big: float, mb_small: float, mb_big: float) -> tuple[float, float]:
    """(seconds per MB, fixed seconds) of the line through two (MB, seconds) points."""
    slope = (big - small) / (mb_big - mb_small)
    return slope, small - slope * mb_small


def bare_encode(tok_json: str, corpus: Path, shards: str, mb: float) -> tuple[float, float, float]:
    """(MB timed, MB/s of `encode_batch`, MB/s of `encode_texts`) with the pipeline's own tokenizer on one
    thread over the first `mb` MB of text: the bound, and the call the stage makes
    (`encode_batch_fast`)."""
    tok = load_tokenizer(tok_json)
    dtype = token_dtype(tok.get_vocab_size())
    sample, size = [], 0
    for d in evaluate.documents(corpus, shards):
        if size >= mb * 1e6:
            break
        sample.append(d["text"])
        size += len(d["text"].encode("utf-8"))
    batches = [sample[i:i + 1024] for i in range(0, len(sample), 1024)]
    start = time.perf_counter()
    for batch in batches:
        tok.encode_batch(batch, add_special_tokens=False)
    middle = time.perf_counter()
    for batch in batches:
        encode_texts(tok, batch, dtype)
    end = time.perf_counter()
    return size / 1e6, size / 1e6 / (middle - start), size / 1e6 / (end - middle)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(labelled_corpus.DEFAULT))
    ap.add_argument("--part", default="docs-0[01].jsonl.gz", help="glob of the smaller run's raw shards")
    ap.add_argument("--shards", default="docs-*.jsonl.gz", help="glob of the full run's raw shards under CORPUS/raw")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--bare-mb", type=float, default=8.0, help="MB of text the bare encode side times")
    ap.add_argument("--repeat", type=int, default=3, help="runs per size, alternating; the median stands for it")
    args = ap.parse_args()

    corpus = Path(args.corpus)
    work = Path(tempfile.mkdtemp(prefix="pipeline-speed-"))
    try:
        (work / "startup.py").write_text(STARTUP)
        startup, _ = spark_submit(str(work / "startup.py"), [], args.cores, work / "startup.log")
        runs: dict[str, list[Run]] = {"part": [], "full": []}
        for k in range(args.repeat):
            for size, shards in (("part", args.part), ("full", args.shards)):
                runs[size].append(run_pipeline(corpus, shards, work / f"{size}-{k}", args.cores))
        part, full = (median_run(runs[size]) for size in ("part", "full"))
        tok_json = (work / "full-0" / "out" / "tokenize" / "tokenizer.json").read_text()
        bare_mb, bare, bare_fast = bare_encode(tok_json, corpus, args.shards, args.bare_mb)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mb = (part.text_mb, full.text_mb)
    print(f"\nlocal[{args.cores}]; spark-submit start-up (session + first job, separate run): {startup:.1f} s\n")
    print("| run | records | text MB | wall s | CPU s of the stages | BPE training s (CPU s) | load avg | overall MB/s per core |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs["part"] + runs["full"]:
        print(f"| `{r.shards}`{' (median)' if r is part or r is full else ''} | {r.records:,} | {r.text_mb:.1f} | {r.wall:.1f} | {r.cpu:.1f} | {r.train:.1f} ({r.train_cpu:.1f}) | "
              f"{r.load:.1f} | {r.text_mb / r.wall / args.cores:.2f} |")

    print("\n| stage | wall s (part / full) | CPU s (part / full) | marginal wall s per MB | fixed wall s | "
          "marginal CPU s per MB |\n|---|---|---|---|---|---|")
    for stage in STAGES:
        train = (part.train, full.train) if stage == "tokenize" else (0.0, 0.0)
        train_cpu = (part.train_cpu, full.train_cpu) if stage == "tokenize" else (0.0, 0.0)
        wall = (part.stages[stage] - train[0], full.stages[stage] - train[1])
        cpu = (part.stage_cpu[stage] - train_cpu[0], full.stage_cpu[stage] - train_cpu[1])
        slope, fixed = line(*wall, *mb)
        print(f"| {stage}{' without BPE training' if stage == 'tokenize' else ''} | {wall[0]:.1f} / {wall[1]:.1f} | "
              f"{cpu[0]:.1f} / {cpu[1]:.1f} | {slope:.3f} | {fixed:.1f} | {line(*cpu, *mb)[0]:.3f} |")
    wall_slope, wall_fixed = line(part.wall - part.train, full.wall - full.train, *mb)
    cpu_slope, _ = line(part.cpu - part.train_cpu, full.cpu - full.train_cpu, *mb)
    print(f"| whole job without BPE training | {part.wall - part.train:.1f} / {full.wall - full.train:.1f} | "
          f"{part.cpu - part.train_cpu:.1f} / {full.cpu - full.train_cpu:.1f} | {wall_slope:.3f} | {wall_fixed:.1f} | "
          f"{cpu_slope:.3f} |")

    marginal = 1 / wall_slope / args.cores
    overall = full.text_mb / full.wall / args.cores
    print(f"\noverall (full run): {overall:.2f} MB/s per core; steady state (marginal, wall): "
          f"**{marginal:.2f} MB/s per core**; from CPU time: {1 / cpu_slope:.2f} MB per CPU-second")
    print(f"bare encode_batch, 1 thread, {bare_mb:.1f} MB: {bare:.2f} MB/s; the stage's encode_texts "
          f"(encode_batch_fast): {bare_fast:.2f} MB/s")
    print(f"pipeline steady state per core / bare encode_batch: {marginal / bare:.2f} (target: pipeline >= 1.5 MB/s per core)")


if __name__ == "__main__":
    main()
