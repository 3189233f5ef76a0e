#!/usr/bin/env bash
# GPU readiness in one command, under 8 minutes on one H100/H200: shards of the embedded corpus through the
# pipeline (`make demo`'s route, no download), then gpt2-124m trained in bf16 on one GPU without and with
# torch.compile, and a table of each run's tokens/s, MFU and data-wait fraction read back from metrics.jsonl.
# A dry run takes the same path on the CPU in about a minute, so the script is tested where no GPU is.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
    cat <<'EOF'
usage: benchmarks/gpu.sh [--dry-run] [--python PY] [--out DIR] [--steps N] [--warmup N] [--docs N]
                         [--micro-batch N] [--batch N] [--data MANIFEST] [--peak-flops F]

Makes shards of the embedded corpus with the pipeline (python -m pipeline.default_corpus, then
jobs/pipeline.py through spark-submit; needs a JVM), trains gpt2-124m on one GPU in bf16 autocast twice,
eager and under torch.compile, and prints a table: tokens/s, MFU (model FLOPs over the device's dense bf16
peak, trainer/flops.py) and data wait (share of step time spent waiting for the loader), each the median
over the logged rows after the warm-up steps. Shards already in OUT are reused; each run is redone.

Settings: a flag, else its environment variable, else the default (dry-run default in brackets).
  --python PY       PYTHON       interpreter with the project installed       .venv/bin/python
  --out DIR         OUT          shards, runs and logs                        out/gpu [out/gpu-dry]
  --steps N         STEPS        optimizer steps of each run                  100 [6]
  --warmup N        WARMUP       leading steps left out of the figures        20 [2]
                                 (compilation, CUDA start-up)
  --docs N          DOCS         documents of the embedded corpus             12000 [200]
  --micro-batch N   MICRO_BATCH  windows of 1024 tokens per forward pass      16 [4]
  --batch N         BATCH        windows per optimizer step                   32 [16]
  --data MANIFEST   DATA         train on this manifest, make no shards       (none)
  --peak-flops F    PEAK_FLOPS   the device's dense bf16 FLOP/s, for an MFU   (trainer/flops.py's
                                 where trainer/flops.py does not know it       table)
  --dry-run         DRY_RUN=1    on the CPU: the tiny preset in float32, a small corpus and vocabulary,
                                 torch.compile with its "eager" backend (graph capture without kernel
                                 generation, which takes minutes on a CPU)
  -h, --help                     this text
EOF
}

DRY_RUN="${DRY_RUN:-0}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --python) PYTHON="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --steps) STEPS="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        --docs) DOCS="$2"; shift ;;
        --micro-batch) MICRO_BATCH="$2"; shift ;;
        --batch) BATCH="$2"; shift ;;
        --data) DATA="$2"; shift ;;
        --peak-flops) PEAK_FLOPS="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
if [[ "$DRY_RUN" == 1 ]]; then
    OUT="${OUT:-out/gpu-dry}" STEPS="${STEPS:-6}" WARMUP="${WARMUP:-2}" DOCS="${DOCS:-200}"
    MICRO_BATCH="${MICRO_BATCH:-4}" BATCH="${BATCH:-16}"
    PRESET=tiny VOCAB=2048 LOG_EVERY=1 BACKEND=eager PRECISION=float32
    export CUDA_VISIBLE_DEVICES=""  # the CPU even on a machine with GPUs
else
    OUT="${OUT:-out/gpu}" STEPS="${STEPS:-100}" WARMUP="${WARMUP:-20}" DOCS="${DOCS:-12000}"
    MICRO_BATCH="${MICRO_BATCH:-16}" BATCH="${BATCH:-32}"
    PRESET=gpt2-124m VOCAB=50257 LOG_EVERY=5 BACKEND=inductor PRECISION="bf16 autocast"
fi
if (( WARMUP >= STEPS )); then
    echo "gpu.sh: --warmup $WARMUP leaves no step of $STEPS to measure" >&2
    exit 2
fi
[[ "$OUT" = /* ]] || OUT="$ROOT/$OUT"
BIN="$(dirname "$PYTHON")"
[[ "$BIN" == . && "$PYTHON" != */* ]] && BIN="$(dirname "$(command -v "$PYTHON")")"
cd "$ROOT"
mkdir -p "$OUT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
export PYSPARK_PYTHON="$PYTHON" PYSPARK_DRIVER_PYTHON="$PYTHON"

# A failing command's log tail, so a failure on a rented machine is read at once.
run() {
    local log="$1"; shift
    echo "\$ $*"
    if ! "$@" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "gpu.sh: failed; full log: $log" >&2
        exit 1
    fi
}

if [[ "$DRY_RUN" != 1 ]] && ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu.sh: torch sees no CUDA device; --dry-run runs the same path on the CPU" >&2
    exit 1
fi

if [[ -n "${DATA:-}" ]]; then
    MANIFEST="$DATA"
else
    MANIFEST="$OUT/pipeline/tokenize/manifest.json"
    if [[ -f "$MANIFEST" ]]; then
        echo "== shards: reusing $MANIFEST"
    else
        if ! command -v java >/dev/null && [[ -z "${JAVA_HOME:-}" ]]; then
            echo "gpu.sh: the pipeline runs on Spark and needs a JVM (java on PATH or JAVA_HOME), or pass --data MANIFEST" >&2
            exit 1
        fi
        echo "== shards: $DOCS documents of the embedded corpus through the pipeline"
        run "$OUT/corpus.log" "$PYTHON" -m pipeline.default_corpus "$OUT/raw" --max-docs "$DOCS"
        run "$OUT/pipeline.log" "$BIN/spark-submit" --master "local[*]" --conf spark.ui.enabled=false \
            --conf spark.ui.showConsoleProgress=false --conf "spark.sql.shuffle.partitions=$(nproc)" jobs/pipeline.py --input "$OUT/raw" --output "$OUT/pipeline" \
            --set "tokenize.vocab_size=$VOCAB" --set tokenize.shard_bytes=16000000 --set tokenize.val_fraction=0.01
    fi
fi

for mode in eager compile; do
    compile=false
    [[ "$mode" == compile ]] && compile=true
    echo "== train $PRESET ($PRECISION), $mode: $STEPS steps of $BATCH windows"
    rm -rf "$OUT/train-$mode"
    run "$OUT/train-$mode.log" "$PYTHON" trainer/main.py --data "$MANIFEST" --out "$OUT/train-$mode" \
        --preset "$PRESET" --steps "$STEPS" --eval-every 0 --ckpt-every "$STEPS" \
        --set "data.batch_size=$BATCH" --set "data.micro_batch_size=$MICRO_BATCH" --set "log_every=$LOG_EVERY" \
        --set eval.shards=1 --set eval.generate_tokens=0 --set keep_checkpoints=1 \
        --set "compile=$compile" --set "compile_backend=$BACKEND"
done

"$PYTHON" - "$OUT" "$WARMUP" "$PRECISION" "${PEAK_FLOPS:-}" <<'EOF'
"""The table: per run, medians over the rows after the warm-up steps."""
import json
import statistics
import sys
from pathlib import Path

import torch

from trainer import config, flops

out, warmup, precision, peak = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
peak = float(peak) if peak else None
lines, rates = [], {}
for mode in ("eager", "compile"):
    run = out / f"train-{mode}"
    cfg = config.load(path=run / "config.yaml")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["step"] > warmup and "tokens_per_s" in r]
    rate = statistics.median(r["tokens_per_s"] for r in rows)
    if peak:
        mfu = flops.mfu(flops.flops_per_token(cfg.model), rate, peak)
    elif all("mfu" in r for r in rows):
        mfu = statistics.median(r["mfu"] for r in rows)
    else:
        mfu = None
    wait = statistics.median(r["data_wait"] for r in rows)
    rates[mode] = rate
    lines.append(f"| {mode} | {rate:,.0f} | {'n/a' if mfu is None else f'{mfu:.1%}'} | {wait:.2%} |")
tokens = cfg.data.batch_size * cfg.model.block_size
print(f"\n{device}, {precision}; model {cfg.model.n_layer} layers x {cfg.model.n_embd}, vocab {cfg.model.vocab_size}; "
      f"{tokens:,} tokens per step; medians of rows after step {warmup} of {cfg.steps}")
print("| run | tokens/s | MFU | data wait |")
print("|---|---|---|---|")
print("\n".join(lines))
print(f"compile / eager: {rates['compile'] / rates['eager']:.2f}x tokens/s")
EOF
