"""Whole-pipeline throughput: `spark-submit jobs/pipeline.py` from raw JSONL to shards, in MB of input text
per second per core, beside bare single-thread `encode_batch` (the bound the issue names) in the same run.

Spark's fixed start-up (JVM, session, first job) is measured by a separate trivial spark-submit and reported
apart; the steady-state rate is (input text MB) / (pipeline wall time - start-up) / cores. Input text MB
is the UTF-8 size of the `text` of every record the reader accepts.

    .venv/bin/python benchmarks/pipeline_speed.py [--shards 'docs-*.jsonl.gz'] [--cores 2]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["RAYON_NUM_THREADS"] = "1"  # the bare side is one thread: a per-core rate
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import labelled_corpus  # noqa: E402
from pipeline.tokenize.shards import token_dtype  # noqa: E402
from pipeline.tokenize.tokenizer import encode_texts, load_tokenizer  # noqa: E402

STARTUP = """\
from pyspark.sql import SparkSession
SparkSession.builder.appName("startup").getOrCreate().range(10).count()
"""


def spark_submit(script: str, args: list[str], cores: int, log: Path) -> float:
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", f"local[{cores}]",
           "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.memory=6g",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1", script, *args]
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed; log: {log}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(labelled_corpus.DEFAULT))
    ap.add_argument("--shards", default="docs-*.jsonl.gz", help="glob of raw shards under CORPUS/raw")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--bare-mb", type=float, default=8.0, help="MB of text the bare encode side times")
    args = ap.parse_args()

    corpus = Path(args.corpus)
    texts = [d["text"] for d in labelled_corpus.documents(corpus, args.shards)]
    text_mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    work = Path(tempfile.mkdtemp(prefix="pipeline-speed-"))
    try:
        raw = work / "raw"
        raw.mkdir()
        for path in sorted((corpus / "raw").glob(args.shards)):
            os.symlink(path, raw / path.name)
        (work / "startup.py").write_text(STARTUP)
        startup = spark_submit(str(work / "startup.py"), [], args.cores, work / "startup.log")
        wall = spark_submit("jobs/pipeline.py", ["--input", str(raw), "--output", str(work / "out")],
                            args.cores, work / "pipeline.log")
        summary = json.loads((work / "out" / "pipeline.json").read_text())

        # Bare: the pipeline's own tokenizer, one thread, on the first --bare-mb of the corpus text.
        tok = load_tokenizer((work / "out" / "tokenize" / "tokenizer.json").read_text())
        dtype = token_dtype(tok.get_vocab_size())
        sample, size = [], 0
        for t in texts:
            if size >= args.bare_mb * 1e6:
                break
            sample.append(t)
            size += len(t.encode("utf-8"))
        start = time.perf_counter()
        for i in range(0, len(sample), 1024):
            encode_texts(tok, sample[i:i + 1024], dtype)
        bare = size / 1e6 / (time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    steady = wall - startup
    per_core = text_mb / steady / args.cores
    print(f"\ninput: {len(texts):,} records, {text_mb:.1f} MB of text ({args.shards}); local[{args.cores}]\n")
    print("| measure | value |\n|---|---|")
    print(f"| spark-submit start-up (session + first job) | {startup:.1f} s |")
    print(f"| jobs/pipeline.py wall time | {wall:.1f} s |")
    for s in summary["stages"]:
        print(f"| {s['stage']} stage | {s['seconds']:.1f} s ({s['input']:,} in, {s['kept']:,} kept) |")
    print(f"| pipeline steady state | {text_mb / steady:.2f} MB/s, **{per_core:.2f} MB/s per core** |")
    print(f"| bare encode_batch, 1 thread, {size / 1e6:.1f} MB | {bare:.2f} MB/s |")
    print(f"\npipeline per core / bare encode: {per_core / bare:.2f} (target: pipeline >= 1.5 MB/s per core)")


if __name__ == "__main__":
    main()
