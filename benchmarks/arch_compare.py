"""Validation bits per byte of the two decoders (model.arch gpt2 and llama) trained on the same shards.

    spark-submit jobs/pipeline.py --input ../shared/corpus/raw --output out/shared   # the shards, once
    .venv/bin/python benchmarks/arch_compare.py --data out/shared/tokenize/manifest.json [--steps 300]

Both runs take the CPU-sized presets (`tiny`: GELU MLP of width 256; `llama-tiny`: SwiGLU of width 192, so
within 0.2% of the same parameters), the same data order (data.seed), init seed, learning-rate schedule and
token budget (--steps x 16 windows of 64 tokens), and are evaluated on every val shard at the end.
Bits per byte divide the summed loss by the val documents' UTF-8 bytes, so they compare across tokenizers.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.config import load  # noqa: E402
from trainer.train import train  # noqa: E402

PRESETS = {"gpt2": "tiny", "llama": "llama-tiny"}


def run(arch: str, data: str, steps: int, out: Path) -> dict:
    cfg = load(PRESETS[arch], overrides=[f"steps={steps}", "eval.every=0", "eval.generate_tokens=0",
                                         f"log_every={steps}", f"ckpt_every={steps}"])
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        model = train(cfg, data, out)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    final = rows[-1]
    return {"arch": arch, "params": model.num_params(), "tokens": final["tokens"], "val_loss": final["val_loss"],
            "val_bpb": final["val_bpb"], "seconds": time.perf_counter() - start}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="manifest.json of the tokenize stage")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per run (16 x 64 tokens each)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(arch, args.data, args.steps, Path(tmp) / arch) for arch in PRESETS]
    print(f"{'arch':<8}{'params':>10}{'tokens':>10}{'val loss':>10}{'val bpb':>10}{'seconds':>9}")
    for r in results:
        print(f"{r['arch']:<8}{r['params']:>10,}{r['tokens']:>10,}{r['val_loss']:>10.4f}{r['val_bpb']:>10.4f}"
              f"{r['seconds']:>9.1f}")
    gpt2, llama = results
    print(f"llama - gpt2: {llama['val_bpb'] - gpt2['val_bpb']:+.4f} bits per byte")


if __name__ == "__main__":
    main()
