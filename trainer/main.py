"""Train a GPT on corpusforge token shards.

    torchrun --standalone --nproc_per_node=N trainer/main.py --data OUT/tokenize/manifest.json --out runs/x \
        --preset tiny [--config FILE] [--set optim.lr=1e-3] [--steps N] [--ckpt-every N] [--eval-every N]

A mixture repeats --data (sources named after their directories) and may weigh them, e.g.
`--data A/tokenize/manifest.json --data B/tokenize/manifest.json --set data.weights=3,1`.

Run as a script (torchrun does), so the repository root is put on sys.path before importing the package.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import config as cfglib  # noqa: E402
from pipeline.config import ConfigError  # noqa: E402
from pipeline.tokenize.shards import ShardError  # noqa: E402
from trainer.config import PRESETS, TrainConfig, load  # noqa: E402
from trainer.train import RunError, train  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train a GPT on the token shards listed in a corpusforge manifest.json. Start it with "
        "torchrun for several processes (DDP: NCCL on GPUs, gloo on CPU); a plain `python` run uses one. "
        "Configuration is applied in order: defaults, --preset, --config, --set, then the flags below.",
        epilog="configuration keys (YAML or --set key=value; defaults before --preset):\n"
        + "\n".join(cfglib.describe_keys(TrainConfig())),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", action="append", default=[], metavar="MANIFEST",
                   help="manifest.json of the tokenize stage (path, file://, s3:// or hdfs://); repeat it to train on "
                   "a mixture (weights: --set data.weights=w1,w2,...; default in proportion to train tokens), or "
                   "list the sources in data.sources instead")
    p.add_argument("--out", required=True, type=Path,
                   help="run directory: config.yaml, metrics.jsonl, checkpoints/ (a run there is resumed)")
    p.add_argument("--config", help="YAML file with keys of trainer/config.py:TrainConfig")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set optim.lr=3e-4 (repeatable)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="model size and schedule preset applied before --config")
    p.add_argument("--steps", type=int, help="total optimizer steps of the run (the schedule's length); sets steps")
    p.add_argument("--ckpt-every", type=int, help="steps between checkpoints; sets ckpt_every")
    p.add_argument("--eval-every", type=int, help="steps between evaluations (0 = only at the end); sets eval.every")
    return p.parse_args(argv)


def main(argv: list[str] | None = None):
    args = parse_args(argv)
    flags = [f"{k}={v}" for k, v in (("steps", args.steps), ("ckpt_every", args.ckpt_every),
                                      ("eval.every", args.eval_every)) if v is not None]
    rank = os.environ.get("RANK", "0")
    try:
        cfg = load(args.preset, args.config, [*args.set, *flags])
        return train(cfg, args.data, args.out)
    except (ConfigError, RunError) as e:
        # Every process meets these alike, so rank 0 alone says so: one line, not one traceback per rank.
        sys.exit(f"trainer: error: {e}" if rank == "0" else 1)
    except ShardError as e:
        # Only the processes that read a bad shard meet it, so each of them says so.
        sys.exit(f"trainer: error: {e}")


if __name__ == "__main__":
    main()
