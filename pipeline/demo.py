"""`make demo`: gather the embedded corpus, run the whole pipeline through spark-submit, train a tiny GPT
with torchrun on two processes, and print what happened. Every command is printed before it runs, so the
demo doubles as a walkthrough of the real entry points.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Small enough for a CPU demo, large enough to show every stage doing real work.
PIPELINE_SETTINGS = [
    "tokenize.vocab_size=8192",
    "tokenize.shard_bytes=4000000",
    "tokenize.val_fraction=0.02",
]
TRAIN_SETTINGS = [
    "model.block_size=128",
    "model.n_layer=4",
    "model.n_head=4",
    "model.n_embd=128",
    "data.batch_size=32",
    "data.micro_batch_size=8",
    "log_every=25",
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # Spark binds the external interface otherwise
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _run(cmd: list[str], log: Path) -> None:
    print("$ " + " ".join(cmd), flush=True)
    with open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=REPO, env=_env(), stdout=f, stderr=subprocess.STDOUT)
    lines = log.read_text(errors="replace").splitlines()
    shown = [line for line in lines if not (" INFO " in line or " WARN " in line or line.startswith(("W1", "[W")))]
    print("\n".join("  " + line for line in shown[-40:]), flush=True)
    if proc.returncode != 0:
        sys.exit(f"command failed with exit code {proc.returncode}; full log: {log}")


def torchrun(nproc: int, args: list[str]) -> list[str]:
    """torchrun's rendezvous store listens on every interface; where we may, run it in a private network
    namespace that has only loopback."""
    cmd = [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={nproc}", *args]
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        inner = " ".join(f"'{c}'" for c in cmd)
        return ["unshare", "-n", "sh", "-c", f"ip link set lo up 2>/dev/null; exec {inner}"]
    return cmd


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/demo", help="where the corpus, pipeline output and training run go")
    p.add_argument("--steps", type=int, default=300, help="training steps of the tiny GPT")
    p.add_argument("--max-docs", type=int, default=12000, help="documents gathered for the embedded corpus")
    args = p.parse_args(argv)
    out = (REPO / args.out).resolve() if not os.path.isabs(args.out) else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()

    print("== 1/3 gather the embedded corpus", flush=True)
    _run([sys.executable, "-m", "pipeline.default_corpus", str(out / "raw"), "--max-docs", str(args.max_docs)], out / "corpus.log")

    print("== 2/3 run the pipeline (clean, filter, dedupe, tokenize) with spark-submit", flush=True)
    sets = [a for s in PIPELINE_SETTINGS for a in ("--set", s)]
    _run(
        [str(BIN / "spark-submit"), "--master", "local[2]", "--conf", "spark.ui.showConsoleProgress=false",
         "jobs/pipeline.py", "--input", str(out / "raw"), "--output", str(out / "pipeline"), *sets],
        out / "pipeline.log",
    )

    print("== 3/3 train the tiny GPT on 2 processes (DDP, gloo)", flush=True)
    shutil.rmtree(out / "train", ignore_errors=True)
    sets = [a for s in TRAIN_SETTINGS for a in ("--set", s)]
    _run(
        torchrun(2, ["trainer/main.py", "--data", str(out / "pipeline" / "tokenize" / "manifest.json"),
                     "--out", str(out / "train"), "--preset", "tiny", "--steps", str(args.steps),
                     "--eval-every", "100", *sets]),
        out / "train.log",
    )
    summarize(out, time.time() - start)


def summarize(out: Path, seconds: float) -> None:
    summary = json.loads((out / "pipeline" / "pipeline.json").read_text())
    print("\n== summary", flush=True)
    for s in summary["stages"]:
        print(f"{s['stage']:>9}: {s['input']:>7,} in -> {s['kept']:>7,} kept   ({s['seconds']:.0f} s)")
        for kind in ("dropped", "rejected"):
            for reason, n in sorted(s.get(kind, {}).items(), key=lambda kv: -kv[1]):
                print(f"{'':>11}{kind} {n:>6,}  {reason}")
    tok = summary["stages"][-1]
    print(f"   tokens: {', '.join(f'{k} {v:,}' for k, v in tok['tokens'].items())} ({tok['dtype']}, vocab {tok['vocab_size']:,})")
    rows = [json.loads(line) for line in (out / "train" / "metrics.jsonl").read_text().splitlines() if line.strip()]
    evals = [r for r in rows if "val_loss" in r]
    if evals:
        first, last = evals[0], evals[-1]
        print(f"    train: {rows[-1]['step']} steps, {rows[-1]['tokens']:,} tokens; "
              f"val loss {first['val_loss']:.3f} (step {first['step']}) -> {last['val_loss']:.3f}, "
              f"bits per byte {last['val_bpb']:.3f}")
    print(f"\noutputs: {out}/pipeline/<stage>/ (data, stats.json), {out}/pipeline/tokenize/manifest.json,\n"
          f"         {out}/pipeline/report.html (open it in a browser), {out}/train/ (metrics.jsonl, checkpoints)\n"
          f"demo took {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
