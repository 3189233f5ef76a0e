"""The training loop: DDP from torchrun's environment, gradient accumulation, evaluation, checkpoints, metrics.

Losses are sums of token cross-entropies divided by the number of targets in the whole optimizer step, so
the gradient of a step is the same whatever the world size and the number of micro-steps (up to float
rounding). Under data.on_bad_shard="skip" some windows may carry no targets (trainer/data.py); the gradient
is then rescaled to the mean over the targets the step really had.

Each step's loss sum, target count and time spent waiting for the loader travel in one all-reduce, so the
logged `train_loss` and `data_wait` (the ranks' mean fraction of step time spent fetching batches) cost no
extra communication.
"""
from __future__ import annotations

import collections
import contextlib
import math
import os
import pickle
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from pipeline import config as cfglib
from pipeline.tokenize.shards import Manifest, ShardError, read_manifest
from trainer import checkpoint, flops
from trainer.metrics import MetricsLog
from trainer.config import TrainConfig
from trainer.data import ShardStore, TrainWindows, eval_batches, eval_text_bytes, micro_positions
from trainer.model import GPT


class RunError(RuntimeError):
    """A mistake or a data problem every process meets alike; trainer/main.py reports it once, in one line."""


def read_data(data: str) -> Manifest:
    """The manifest --data names, or a RunError saying what to pass instead. Its tokenizer path is checked
    here, as its shard paths are on reading, so no bad path surfaces only after training."""
    from pipeline import storage

    what = "pass the manifest.json the tokenize stage wrote (OUTPUT/tokenize/manifest.json)"
    if storage.is_dir(data):
        inside = storage.join(data, "manifest.json")
        raise RunError(f"--data {data} is a directory; " + (f"pass {inside}" if storage.exists(inside) else what))
    if not storage.exists(data):
        raise RunError(f"--data {data}: not found; {what}")
    try:
        manifest = read_manifest(data)
    except ValueError as e:  # ShardError, or bytes that are no JSON
        raise RunError(f"--data {data}: not a usable manifest ({e}); {what}") from None
    try:
        manifest.resolve(manifest.tokenizer["path"])
    except ShardError as e:
        raise RunError(f"{e} (tokenizer.path)") from None
    return manifest


def lr_multiplier(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to optim.lr, then cosine decay to optim.min_lr at `steps`, or for WSD a constant lr and
    a linear decay to optim.min_lr over the last `decay_fraction` of the steps (as a factor of optim.lr)."""
    o = cfg.optim
    if step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    floor = o.min_lr / o.lr
    if o.decay == "wsd":
        decay_start = cfg.steps - max(1, round(o.decay_fraction * cfg.steps))
        progress = min(1.0, max(0, step - decay_start) / max(1, cfg.steps - decay_start))
        return 1.0 - (1.0 - floor) * progress
    progress = min(1.0, (step - o.warmup_steps) / max(1, cfg.steps - o.warmup_steps))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Dist:
    """Rank, world size and device taken from torchrun's environment (a plain `python` run is world 1)."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available()
        self.device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1:
            # torchrun (--max-restarts) restarts workers against its own store, where gloo would find the dead
            # workers' addresses of the previous attempt and hang or fail connecting (pytorch/pytorch#135712):
            # key each attempt apart. The restart count is per agent, so a multi-node job that must survive
            # restarts is launched with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 (a fresh store per attempt).
            store, _, _ = next(dist.rendezvous("env://"))
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            dist.init_process_group(backend="nccl" if cuda else "gloo", rank=self.rank, world_size=self.world,
                                    store=dist.PrefixStore(f"attempt-{attempt}", store))
        self.master = self.rank == 0
        # Tensors of the latest collectives. Once DDP has wrapped a model, gloo's process group outlives
        # destroy_process_group and its worker threads run until the interpreter exits; a worker that drops the
        # last reference to a Python-owned tensor then needs the GIL, and during interpreter shutdown the process
        # aborts ("terminate called without an active exception"). `close` waits until gloo has let go of these
        # before Python does, so the last reference is always Python's.
        self._in_flight: collections.deque[list[torch.Tensor]] = collections.deque(maxlen=8)

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            self._in_flight.append([t])
        return t

    def _all_gather(self, t: torch.Tensor) -> list[torch.Tensor]:
        out = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(out, t)
        self._in_flight.append([t, *out])
        return out

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's picklable `obj` (all_gather_object's protocol, with tensors this class keeps alive)."""
        if self.world == 1:
            return [obj]
        data = torch.frombuffer(bytearray(pickle.dumps(obj)), dtype=torch.uint8)
        sizes = [int(n) for n in self._all_gather(torch.tensor([data.numel()], device=self.device))]
        padded = torch.zeros(max(sizes), dtype=torch.uint8)
        padded[: data.numel()] = data
        parts = self._all_gather(padded.to(self.device))
        return [pickle.loads(part[:n].cpu().numpy().tobytes()) for part, n in zip(parts, sizes)]

    def close(self, timeout: float = 10.0) -> None:
        if self.world > 1:
            # A tensor's use count is 1 once only its Python object holds it: gloo's worker is done with it.
            deadline = time.monotonic() + timeout
            held = [t for tensors in self._in_flight for t in tensors]
            while any(t._use_count() > 1 for t in held) and time.monotonic() < deadline:
                time.sleep(0.001)
            self._in_flight.clear()
            dist.destroy_process_group()


def _format_eta(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@torch.no_grad()
def evaluate(model: GPT, store: ShardStore, cfg: TrainConfig, d: Dist) -> dict[str, float]:
    """Validation loss over whole val shards; bits per byte from their text_bytes (see data.eval_batches)."""
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=d.device)
    for x, y in eval_batches(store, cfg.model.block_size, cfg.data.micro_batch_size, d.rank, d.world, cfg.eval.shards):
        with _autocast(d.device):
            _, loss_sum, n = model(x.to(d.device), y.to(d.device))
        totals[0] += loss_sum.double()
        totals[1] += n
    d.sum_(totals)
    model.train()
    nats, count = totals.tolist()
    text_bytes = eval_text_bytes(store, cfg.eval.shards)
    return {
        "val_loss": nats / count,
        "val_ppl": math.exp(nats / count),
        "val_bpb": nats / math.log(2) / text_bytes,
        "val_tokens": int(count),
    }


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _generate(model: GPT, manifest: Manifest, tokens: int, d: Dist, seed: int) -> str | None:
    """Sample a short text from EOS when the manifest's tokenizer can be read."""
    from pipeline import storage
    from tokenizers import Tokenizer

    uri = manifest.resolve(manifest.tokenizer["path"])
    if not storage.exists(uri):
        return None
    tok = Tokenizer.from_str(storage.read_bytes(uri).decode("utf-8"))
    model.eval()
    g = torch.Generator(device=d.device).manual_seed(seed)
    idx = torch.full((1, 1), manifest.eos_id, dtype=torch.long, device=d.device)
    out = model.generate(idx, tokens, generator=g)[0, 1:].tolist()
    model.train()
    return tok.decode(out)


def _check_usable(store: ShardStore, d: Dist) -> None:
    """Fail, saying why, once every training shard has been skipped: the run would train on nothing."""
    store.skipped.update(*d.gather(store.skipped))
    if len(store.skipped) < len(store.shards):
        return
    errors = {i: e for errors in d.gather(store.errors) for i, e in errors.items()}
    why = errors[min(errors)] if errors else "skipped by the run this one resumes"
    raise RunError(f"no training shard was usable: all {len(store.shards)} were skipped (data.on_bad_shard=skip); "
                   f"{why}")


def train(cfg: TrainConfig, data: str, out: Path) -> GPT:
    """Train (or resume the run in `out`) and return this process's model."""
    d = Dist()
    try:
        return _train(cfg, data, out, d)
    finally:
        d.close()


def _train(cfg: TrainConfig, data: str, out: Path, d: Dist) -> GPT:
    manifest = read_data(data)
    if cfg.model.vocab_size <= 0:
        cfg = replace(cfg, model=replace(cfg.model, vocab_size=manifest.vocab_size))
    elif cfg.model.vocab_size < manifest.vocab_size:  # its ids would index past the embedding
        raise cfglib.ConfigError(f"model.vocab_size {cfg.model.vocab_size} is smaller than the tokenizer's "
                                 f"{manifest.vocab_size} ids; set 0 to take the manifest's")
    per_micro = cfg.data.micro_batch_size * d.world
    if cfg.data.batch_size % per_micro:
        raise cfglib.ConfigError(f"data.batch_size {cfg.data.batch_size} is not a multiple of "
                                 f"micro_batch_size {cfg.data.micro_batch_size} x world size {d.world}")
    accum = cfg.data.batch_size // per_micro
    ckpt_dir = out / "checkpoints"
    skip_bad = cfg.data.on_bad_shard == "skip"

    torch.manual_seed(cfg.seed)
    raw = GPT(cfg.model).to(d.device)
    optimizer = raw.configure_optimizer(cfg.optim.weight_decay, cfg.optim.lr, (cfg.optim.beta1, cfg.optim.beta2),
                                        fused=d.device.type == "cuda")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, cfg))
    windows = TrainWindows(ShardStore(manifest, "train", cfg.data.verify_sha256, on_bad_shard=cfg.data.on_bad_shard),
                           cfg.model.block_size, cfg.data.batch_size, cfg.data.seed)
    shard_index = {s.url: i for i, s in enumerate(windows.store.shards)}
    has_val = "val" in manifest.splits and manifest.splits["val"].shards
    val = ShardStore(manifest, "val", cfg.data.verify_sha256) if has_val else None

    start, position = 0, 0
    resume = checkpoint.latest(ckpt_dir)
    if resume is not None:
        state = checkpoint.load(resume)
        raw.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, position = state["step"], windows.position(state["loader"])
        # A shard found bad stays skipped for the rest of the run, so a resumed run decides as the first did.
        windows.store.skipped.update(shard_index[url] for url in state.get("skipped_shards", []))
        rng = state["rng"]
        if len(rng) == d.world:
            torch.set_rng_state(rng[d.rank])
        else:  # a new world size: a fresh but reproducible stream per rank (only dropout draws from it)
            torch.manual_seed(cfg.seed + 1000003 * start + d.rank)
    metrics: MetricsLog | None = None
    if d.master:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(cfglib.dump_yaml(cfg))
        metrics = MetricsLog(out, start)
        print(f"model {raw.num_params() / 1e6:.2f}M params | world {d.world} | micro {cfg.data.micro_batch_size} "
              f"x accum {accum} = {cfg.data.batch_size} windows/step | "
              + (f"resumed from {resume.name}" if resume else "from scratch"), flush=True)

    model: torch.nn.Module = torch.compile(raw) if cfg.compile else raw
    if d.world > 1:
        model = DDP(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    tokens_per_step = cfg.data.batch_size * cfg.model.block_size
    peak = flops.peak_flops(torch.cuda.get_device_name(d.device)) if d.device.type == "cuda" else None
    flops_token = flops.flops_per_token(cfg.model)
    last_time, last_step = time.perf_counter(), start
    t_begin, step_begin = last_time, start
    wait_time = step_time = 0.0  # since the last log row: mean seconds ranks waited for data, master's step seconds

    for step in range(start, cfg.steps):
        step_start = time.perf_counter()
        wait = 0.0
        stats = torch.zeros(3, dtype=torch.float64, device=d.device)  # loss sum, targets, seconds waiting for data
        for m in range(accum):
            fetch = time.perf_counter()
            x, y = windows.batch(micro_positions(position, m, d.rank, d.world, cfg.data.micro_batch_size),
                                 cfg.data.micro_batch_size)
            x, y = x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
            wait += time.perf_counter() - fetch
            sync = m == accum - 1 or d.world == 1
            with (contextlib.nullcontext() if sync else model.no_sync()), _autocast(d.device):
                _, loss_sum, n = model(x, y)
                (loss_sum / (tokens_per_step / d.world)).backward()
            stats[0] += loss_sum.detach().double()
            stats[1] += n
        stats[2] = wait
        d.sum_(stats)
        if skip_bad and not stats[1]:  # a step without targets, on every rank alike: is any shard left?
            _check_usable(windows.store, d)
        if skip_bad:  # rescale to the mean over the step's real targets (x 1.0 when no window was skipped)
            scale = tokens_per_step / stats[1].clamp(min=1)
            for p in raw.parameters():
                if p.grad is not None:
                    p.grad.mul_(scale)
        if cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.optim.grad_clip)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        position += cfg.data.batch_size
        done = step + 1
        loss_sum_total, targets, waited = stats.tolist()
        train_loss = loss_sum_total / targets if targets else None  # None: every window skipped
        wait_time += waited / d.world
        step_time += time.perf_counter() - step_start

        log_due = done % cfg.log_every == 0 or done == cfg.steps
        eval_due = val is not None and ((cfg.eval.every and done % cfg.eval.every == 0) or done == cfg.steps)
        ckpt_due = done % cfg.ckpt_every == 0 or done == cfg.steps
        if skip_bad and (log_due or eval_due or ckpt_due):  # the same steps on every rank, so safe to gather
            windows.store.skipped.update(*d.gather(windows.store.skipped))
        row: dict[str, Any] | None = None
        if log_due:
            now = time.perf_counter()
            row = {"step": done, "tokens": done * tokens_per_step, "train_loss": train_loss, "lr": lr,
                   "tokens_per_s": (done - last_step) * tokens_per_step / max(now - last_time, 1e-9),
                   "data_wait": wait_time / max(step_time, 1e-9)}
            if peak is not None:
                row["mfu"] = flops.mfu(flops_token, row["tokens_per_s"] / d.world, peak)
            last_time, last_step = now, done
            wait_time = step_time = 0.0
        if eval_due:
            row = (row or {"step": done, "tokens": done * tokens_per_step, "train_loss": train_loss, "lr": lr})
            row.update(evaluate(raw, val, cfg, d))
        if row is not None and skip_bad:
            row["skipped_shards"] = len(windows.store.skipped)
        if ckpt_due:
            rng = d.gather(torch.get_rng_state())
            if d.master:
                checkpoint.save(ckpt_dir, done, {
                    "model": raw.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "step": done, "loader": windows.state(position),
                    "skipped_shards": sorted(windows.store.shards[i].url for i in windows.store.skipped),
                    "rng": rng, "world_size": d.world, "config": cfglib.to_dict(cfg),
                }, cfg.keep_checkpoints)
        if metrics is not None and row is not None:
            metrics.write(row)
            rate = (done - step_begin) / max(time.perf_counter() - t_begin, 1e-9)
            extra = f" | data wait {row['data_wait']:.1%}" if "data_wait" in row else ""
            extra += f" | mfu {row['mfu']:.1%}" if "mfu" in row else ""
            extra += f" | skipped shards {row['skipped_shards']}" if row.get("skipped_shards") else ""
            extra += f" | val {row['val_loss']:.4f} bpb {row['val_bpb']:.3f}" if "val_loss" in row else ""
            loss = "-" if train_loss is None else f"{train_loss:.4f}"
            print(f"step {done}/{cfg.steps} | loss {loss} | lr {lr:.2e} | "
                  f"{row.get('tokens_per_s', 0) / 1e3:.1f}k tok/s | eta {_format_eta((cfg.steps - done) / rate)}{extra}",
                  flush=True)

    if metrics is not None:
        metrics.close()
    windows.store.close()
    if val is not None:
        val.close()
    if d.master and cfg.eval.generate_tokens > 0:
        text = _generate(raw, manifest, cfg.eval.generate_tokens, d, cfg.seed)
        if text is not None:
            (out / "sample.txt").write_text(text + "\n", encoding="utf-8")
            print(f"sample: {text!r}", file=sys.stdout, flush=True)
    return raw
