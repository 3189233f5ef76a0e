"""Trainer step time beside a bare PyTorch loop: same model, batch, optimizer and tokens, one process, in one run.

    .venv/bin/python benchmarks/trainer_step.py [--corpus ../shared/corpus] [--steps 12] [--rounds 3]

Shards: the first --docs documents of the corpus's raw/docs-00.jsonl.gz, tokenised with a byte-level BPE
trained on them (pipeline.tokenize.tokenizer.train_bpe) and written with pipeline.tokenize.shards, as the
tokenize stage lays them out, into a temporary directory (train split only).

Trainer: trainer.train.train in this process (world 1, so no DDP wrapper), logging every step to
metrics.jsonl, TensorBoard and the console (captured), checkpointing only after the last step.
Bare loop: the same GPT, AdamW, learning-rate schedule, gradient clipping and accumulation on the same
batches, gathered from the same shards before timing starts, with nothing else in the loop.

Two measures, both as bare / trainer (1.0 = no overhead):
- wall clock: the trainer's step time from its rows' tokens_per_s (the whole loop body: loader,
  forward/backward, optimizer, the step's statistics and logging) against the bare loop's timed steps,
  medians after dropping the first --warmup steps of each run;
- CPU time of the process (all its threads), which other jobs on a shared machine do not inflate: the bare
  loop's steps after the warmup against the difference between a --steps run and a --warmup-step run of the
  trainer (set-up, shard loading and the final checkpoint cancel out).
The two sides alternate for --rounds rounds, bare first in even rounds and trainer first in odd ones; the
result of each measure is the median of the rounds' ratios, with their range.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.tokenize.shards import build_manifest, pack_documents, read_manifest, token_dtype, write_shard  # noqa: E402
from pipeline.tokenize.tokenizer import eos_id, train_bpe  # noqa: E402
from trainer.config import TrainConfig, load  # noqa: E402
from trainer.data import ShardStore, TrainWindows, micro_positions  # noqa: E402
from trainer.model import GPT  # noqa: E402
from trainer.train import lr_multiplier, train  # noqa: E402

# Bigger than the tiny preset so that a step is compute, not Python overhead: ~2.6M parameters, 2,048 tokens
# per step in two micro-batches of 4 windows of 256 tokens.
MODEL = ["model.block_size=256", "model.n_layer=4", "model.n_head=4", "model.n_embd=192"]
BATCH = ["data.batch_size=8", "data.micro_batch_size=4"]


def corpus_texts(corpus: Path, limit: int) -> list[str]:
    texts = []
    with gzip.open(corpus / "raw" / "docs-00.jsonl.gz", "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                text = json.loads(line).get("text")
            except (json.JSONDecodeError, AttributeError):
                continue  # the corpus holds injected malformed lines
            if isinstance(text, str) and text.strip():
                texts.append(text)
            if len(texts) == limit:
                break
    return texts


def build_shards(root: Path, texts: list[str], vocab_size: int, shards: int, sample_tokens: int = 2048) -> Path:
    tok = train_bpe(texts, vocab_size)
    root.mkdir(parents=True, exist_ok=True)
    (root / "tokenizer.json").write_text(tok.to_str())
    eos, dtype = eos_id(tok), token_dtype(tok.get_vocab_size())
    encoded = [np.array(e.ids + [eos]) for e in tok.encode_batch(texts)]
    records = []
    for index in range(shards):
        docs = [(f"doc-{i}", encoded[i]) for i in range(index, len(encoded), shards)]
        url = f"shards/train/shard-{index:06d}.tar"
        (root / url).parent.mkdir(parents=True, exist_ok=True)
        with open(root / url, "wb") as f:
            info = write_shard(f, pack_documents(docs, sample_tokens), index, dtype)
        records.append({**info, "url": url, "documents": len(docs),
                        "text_bytes": sum(len(texts[i].encode("utf-8")) for i in range(index, len(texts), shards))})
    manifest = build_manifest(
        tokenizer={"path": "tokenizer.json", "sha256": hashlib.sha256((root / "tokenizer.json").read_bytes()).hexdigest(),
                   "vocab_size": tok.get_vocab_size(), "eos_id": eos},
        dtype=dtype, sample_tokens=sample_tokens, seed=0, splits={"train": records})
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root / "manifest.json"


def trainer_run(cfg: TrainConfig, steps: int, manifest: str, out: Path) -> tuple[float, list[float], list[float]]:
    """(process CPU seconds, step wall seconds, data-wait fractions) of one trainer run of `steps` steps."""
    cfg = replace(cfg, steps=steps, ckpt_every=steps)
    cpu = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        train(cfg, manifest, out)
    cpu = time.process_time() - cpu
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    tokens_per_step = cfg.data.batch_size * cfg.model.block_size
    return cpu, [tokens_per_step / r["tokens_per_s"] for r in rows], [r["data_wait"] for r in rows]


def bare_steps(cfg: TrainConfig, batches: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> tuple[list[float], list[float]]:
    """(wall seconds, process CPU seconds) of every step of a plain loop over pre-gathered micro-batches."""
    torch.manual_seed(cfg.seed)
    model = GPT(cfg.model)
    optimizer = model.configure_optimizer(cfg.optim.weight_decay, cfg.optim.lr, (cfg.optim.beta1, cfg.optim.beta2),
                                        fused=False)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, cfg))
    tokens_per_step = cfg.data.batch_size * cfg.model.block_size
    wall, cpu = [], []
    for micro_batches in batches:
        t0, c0 = time.perf_counter(), time.process_time()
        for x, y in micro_batches:
            _, loss_sum, _ = model(x, y)
            (loss_sum / tokens_per_step).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus")
    p.add_argument("--docs", type=int, default=3000, help="documents taken from the corpus")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    p.add_argument("--warmup", type=int, default=2, help="steps dropped at the start of every run")
    p.add_argument("--rounds", type=int, default=3, help="alternating bare / trainer rounds")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = str(build_shards(root / "data", corpus_texts(args.corpus, args.docs), args.vocab_size, shards=4))
        cfg = load(None, overrides=[*MODEL, *BATCH, f"steps={args.steps}", "log_every=1", f"ckpt_every={args.steps}",
                                    "eval.every=0", "eval.generate_tokens=0"])
        cfg = replace(cfg, model=replace(cfg.model, vocab_size=read_manifest(manifest).vocab_size))
        windows = TrainWindows(ShardStore(read_manifest(manifest), "train"), cfg.model.block_size, cfg.data.batch_size,
                               cfg.data.seed)
        micro, accum = cfg.data.micro_batch_size, cfg.data.batch_size // cfg.data.micro_batch_size
        batches = [[windows.batch(micro_positions(s * cfg.data.batch_size, m, 0, 1, micro), micro) for m in range(accum)]
                   for s in range(args.steps)]
        windows.store.close()

        trainer_run(cfg, args.warmup, manifest, root / "import-warmup")  # first-use imports are not timed
        timed = args.steps - args.warmup
        wall_ratios, cpu_ratios, waits = [], [], []

        def trainer_side(r: int) -> tuple[float, list[float]]:
            """(CPU seconds per step, step wall seconds) of the trainer, after the warmup steps."""
            cpu_long, wall, wait = trainer_run(cfg, args.steps, manifest, root / f"run-{r}")
            cpu_short, _, _ = trainer_run(cfg, args.warmup, manifest, root / f"short-{r}")
            waits.extend(wait[args.warmup:])
            return (cpu_long - cpu_short) / timed, wall[args.warmup:]

        for r in range(args.rounds):
            if r % 2:
                t_cpu, t_wall = trainer_side(r)
                b_wall, b_cpu = (v[args.warmup:] for v in bare_steps(cfg, batches))
            else:
                b_wall, b_cpu = (v[args.warmup:] for v in bare_steps(cfg, batches))
                t_cpu, t_wall = trainer_side(r)
            wall_ratios.append(statistics.median(b_wall) / statistics.median(t_wall))
            cpu_ratios.append(statistics.mean(b_cpu) / t_cpu)
            print(f"round {r + 1}: wall ms/step bare {statistics.median(b_wall) * 1e3:.0f}, trainer "
                  f"{statistics.median(t_wall) * 1e3:.0f} (ratio {wall_ratios[-1]:.3f}); CPU ms/step bare "
                  f"{statistics.mean(b_cpu) * 1e3:.0f}, trainer {t_cpu * 1e3:.0f} (ratio {cpu_ratios[-1]:.3f})", flush=True)

    params = GPT(cfg.model).num_params()
    print(f"model: {params / 1e6:.2f}M parameters, {cfg.data.batch_size} x {cfg.model.block_size} tokens per step "
          f"({accum} micro-batches of {micro}), {torch.get_num_threads()} torch threads, {args.rounds} rounds of "
          f"{args.steps} steps ({args.warmup} warmup)")
    for name, ratios in (("wall clock", wall_ratios), ("CPU time", cpu_ratios)):
        print(f"ratio bare / trainer, {name + ':':11} {statistics.median(ratios):.3f} (range {min(ratios):.3f}-"
              f"{max(ratios):.3f}; target >= 0.95)")
    print(f"trainer data-wait fraction: {statistics.mean(waits):.2%} of step time")


if __name__ == "__main__":
    main()
