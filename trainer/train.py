"""The training loop: DDP from torchrun's environment, gradient accumulation, evaluation, checkpoints, metrics.

Losses are sums of token cross-entropies divided by the number of targets in the whole optimizer step, so
the gradient of a step is the same whatever the world size and the number of micro-steps (up to float
rounding). Under data.on_bad_shard="skip" some windows may carry no targets (trainer/data.py); the gradient
is then rescaled to the mean over the targets the step really had.

Each step's loss sum, target count and time spent waiting for the loader travel in one all-reduce, so the
logged `train_loss` and `data_wait` (the ranks' mean fraction of step time spent fetching batches) cost no
extra communication. `tokens_by_source` and `epochs_by_source` follow from the step alone (the mixture's
allocation, trainer/data.py), so they cost none either. `bytes_fetched` (the shard bytes rank 0's node has
read from storage since this process started, trainer/node_cache.py) takes one small all-reduce of a vector
by node per logged row, after the row's evaluation, so it counts what that evaluation read too.

Evaluation runs over each source's val shards and sums every target's loss into its source and its
document's language; dividing by the text bytes of the same documents gives `val_bpb_by_source` and
`val_bpb_by_lang`, exact like `val_bpb`.
"""
from __future__ import annotations

import collections
import contextlib
import math
import os
import pickle
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from pipeline import config as cfglib
from pipeline.tokenize.shards import Manifest, ShardError, read_manifest
from trainer import checkpoint, flops
from trainer.metrics import MetricsLog
from trainer.config import SourceConfig, TrainConfig
from trainer.data import Mixture, ShardStore, eval_batches, eval_text_bytes, micro_positions
from trainer.model import GPT, IGNORE_INDEX
from trainer.node_cache import NodeCache, cache_directory


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


@dataclass
class Source:
    name: str
    uri: str
    manifest: Manifest
    weight: float


def source_name(uri: str) -> str:
    """A source's default name: the directory of its manifest, or the one above it when that is the stage's
    own `tokenize/` (OUT/tokenize/manifest.json is named OUT)."""
    parts = [p for p in uri.split("://", 1)[-1].split("/") if p and p != "."]
    parts = parts[:-1] if parts and parts[-1].endswith(".json") else parts
    if len(parts) > 1 and parts[-1] == "tokenize":
        parts = parts[:-1]
    return parts[-1] if parts else "data"


def read_sources(cfg: TrainConfig, data: Sequence[str]) -> list[Source]:
    """The run's sources from --data (each may be repeated) or data.sources, with their weights, checked to
    share one tokenizer; a RunError or ConfigError says what is wrong."""
    if data and cfg.data.sources:
        raise cfglib.ConfigError("give the sources either with --data or in data.sources, not both")
    given = cfg.data.sources or [SourceConfig(manifest=uri) for uri in data]
    if not given:
        raise cfglib.ConfigError("no data: pass --data MANIFEST (repeatable) or set data.sources")
    if cfg.data.weights and len(cfg.data.weights) != len(given):
        raise cfglib.ConfigError(f"data.weights has {len(cfg.data.weights)} weights for {len(given)} sources")
    weights = list(cfg.data.weights) or [s.weight for s in given]
    if any(weights) and not all(weights):
        raise cfglib.ConfigError("weigh every source or none (none: in proportion to their train tokens)")
    names = [s.name or source_name(s.manifest) for s in given]
    if len(set(names)) < len(names):
        raise cfglib.ConfigError(f"sources need distinct names, got {', '.join(names)}; name them in data.sources")
    sources = [Source(name, s.manifest, read_data(s.manifest), w) for name, s, w in zip(names, given, weights)]
    for s in sources:
        if "train" not in s.manifest.splits:
            raise RunError(f"source {s.name} ({s.uri}) has no train split")
        if not all(weights):
            s.weight = s.manifest.splits["train"].tokens
    first = sources[0]
    for s in sources[1:]:
        mine, theirs = first.manifest.tokenizer, s.manifest.tokenizer
        if (mine["sha256"], mine["vocab_size"], mine["eos_id"]) != (theirs["sha256"], theirs["vocab_size"], theirs["eos_id"]):
            raise RunError(f"sources {first.name} and {s.name} do not share one tokenizer ({first.name}: sha256 "
                           f"{mine['sha256'][:12]}, vocab {mine['vocab_size']}; {s.name}: sha256 {theirs['sha256'][:12]}, "
                           f"vocab {theirs['vocab_size']}); tokenize them with the same tokenizer.json (tokenize.tokenizer)")
    return sources


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
        # torchrun's node layout: the processes of one node share its cache of shards.
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        self.nodes = max(1, self.world // self.local_world)
        self.node = int(os.environ.get("GROUP_RANK", self.rank // self.local_world))
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
def evaluate(model: GPT, stores: dict[str, ShardStore], cfg: TrainConfig, d: Dist) -> dict[str, Any]:
    """Validation loss over whole val shards of every source; bits per byte in all, by source and by language
    of the documents, from their UTF-8 bytes (see data.eval_batches)."""
    model.eval()
    by_source: dict[str, list[float]] = {}  # name -> [nats, targets]
    by_lang: dict[str, list[float]] = {}  # language -> [nats, text bytes]
    for name, store in stores.items():
        nats = torch.zeros((), dtype=torch.float64, device=d.device)
        count = 0
        lang_nats = torch.zeros(0, dtype=torch.float64, device=d.device)
        lang_bytes = torch.zeros(0, dtype=torch.float64, device=d.device)
        for x, y, lang, text_bytes in eval_batches(store, cfg.model.block_size, cfg.data.micro_batch_size, d.rank,
                                                   d.world, cfg.eval.shards, IGNORE_INDEX, languages=True):
            with _autocast(d.device):
                logits, _, _ = model(x.to(d.device))
            y, lang = y.to(d.device).reshape(-1), lang.to(d.device).reshape(-1)
            losses = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y, ignore_index=IGNORE_INDEX,
                                     reduction="none").double()
            counted = y != IGNORE_INDEX
            nats += losses.sum()
            count += int(counted.sum())
            n = len(store.lang_names)
            if len(lang_nats) < n:
                lang_nats = torch.cat([lang_nats, lang_nats.new_zeros(n - len(lang_nats))])
                lang_bytes = torch.cat([lang_bytes, lang_bytes.new_zeros(n - len(lang_bytes))])
            lang_nats += torch.bincount(lang[counted], weights=losses[counted], minlength=n)
            lang_bytes += torch.bincount(lang[counted], weights=text_bytes.to(d.device).reshape(-1)[counted].double(),
                                         minlength=n)
        by_source[name] = [float(nats), count]
        for code, (ln, lb) in enumerate(zip(lang_nats.tolist(), lang_bytes.tolist())):
            total = by_lang.setdefault(store.lang_names[code], [0.0, 0.0])
            total[0] += ln
            total[1] += lb
    model.train()
    # Each rank saw its own blocks (and so maybe its own languages): sum the ranks' figures, in rank order.
    source_totals: dict[str, list[float]] = {}
    lang_totals: dict[str, list[float]] = {}
    for ranks_sources, ranks_langs in d.gather((by_source, by_lang)):
        for totals, mine in ((source_totals, ranks_sources), (lang_totals, ranks_langs)):
            for key, values in mine.items():
                acc = totals.setdefault(key, [0.0, 0.0])
                acc[0] += values[0]
                acc[1] += values[1]
    text_bytes = {name: eval_text_bytes(store, cfg.eval.shards) for name, store in stores.items()}
    nats = sum(v[0] for v in source_totals.values())
    count = sum(v[1] for v in source_totals.values())
    return {
        "val_loss": nats / count,
        "val_ppl": math.exp(nats / count),
        "val_bpb": nats / math.log(2) / sum(text_bytes.values()),
        "val_tokens": int(count),
        "val_bpb_by_source": {name: source_totals[name][0] / math.log(2) / text_bytes[name] for name in stores},
        "val_bpb_by_lang": {lang: v[0] / math.log(2) / v[1] for lang, v in sorted(lang_totals.items()) if v[1]},
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


def _check_usable(stores: dict[str, ShardStore], d: Dist, pooled: bool = False) -> None:
    """Fail, saying why, once every training shard of a source has been skipped: the run would train on
    nothing, or on the other sources alone. `pooled`: the ranks' skipped sets were just pooled."""
    for name, store in stores.items():
        if not pooled:
            store.skipped.update(*d.gather(store.skipped))
        if len(store.skipped) < len(store.shards):
            continue
        errors = {i: e for errors in d.gather(store.errors) for i, e in errors.items()}
        why = errors[min(errors)] if errors else "skipped by the run this one resumes"
        which = f" of source {name}" if len(stores) > 1 else ""
        raise RunError(f"no training shard{which} was usable: all {len(store.shards)} were skipped "
                       f"(data.on_bad_shard=skip); {why}")


def _skipped_urls(stores: dict[str, ShardStore]) -> list[str] | dict[str, list[str]]:
    """The skipped shards a checkpoint keeps: their urls, by source in a mixture."""
    urls = {name: sorted(store.shards[i].url for i in store.skipped) for name, store in stores.items()}
    return next(iter(urls.values())) if len(urls) == 1 else urls


def train(cfg: TrainConfig, data: str | Sequence[str], out: Path) -> GPT:
    """Train (or resume the run in `out`) on the manifests `data` (or cfg.data.sources) and return this
    process's model."""
    d = Dist()
    try:
        return _train(cfg, data, out, d)
    finally:
        d.close()


def _train(cfg: TrainConfig, data: str | Sequence[str], out: Path, d: Dist) -> GPT:
    from pipeline import storage

    sources = read_sources(cfg, [data] if isinstance(data, str) else list(data))
    # config.yaml records the mixture as run: its sources by name, manifest and weight.
    cfg = replace(cfg, data=replace(cfg.data, weights=[], sources=[
        SourceConfig(s.name, s.uri, float(s.weight)) for s in sources]))
    manifest = sources[0].manifest
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
    # Every shard through one reader: the node's processes share what it fetches, and it counts bytes_fetched.
    shards = {s.manifest.resolve(shard.url): shard.sha256 for s in sources for split in s.manifest.splits.values()
              for shard in split.shards}
    directory = cache_directory(cfg.data.node_cache, [s.uri for s in sources], d.local_world)
    try:
        node_cache = NodeCache(storage.read_bytes, directory, shards, cfg.data.node_cache_bytes)
    except OSError as e:
        raise RunError(f"data.node_cache {directory}: {e.strerror or e}; pass a writable directory, or none") from None
    stores = {s.name: ShardStore(s.manifest, "train", cfg.data.verify_sha256, read=node_cache,
                                 on_bad_shard=cfg.data.on_bad_shard) for s in sources}
    try:
        windows = Mixture(list(stores), list(stores.values()), [s.weight for s in sources], cfg.model.block_size,
                          cfg.data.batch_size, cfg.data.seed)
    except ShardError:
        raise
    except ValueError as e:  # weights that leave a source less than a window per step
        raise cfglib.ConfigError(str(e)) from None
    val = {s.name: ShardStore(s.manifest, "val", cfg.data.verify_sha256, read=node_cache, languages=True)
           for s in sources if "val" in s.manifest.splits and s.manifest.splits["val"].shards}

    start, position = 0, 0
    resume = checkpoint.latest(ckpt_dir)
    if resume is not None:
        state = checkpoint.load(resume)
        raw.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        try:
            start, position = state["step"], windows.position(state["loader"])
        except ValueError as e:
            raise RunError(f"{resume}: {e}") from None
        # A shard found bad stays skipped for the rest of the run, so a resumed run decides as the first did.
        skipped = state.get("skipped_shards", [])
        for name, store in stores.items():
            index = {s.url: i for i, s in enumerate(store.shards)}
            store.skipped.update(index[url] for url in (skipped.get(name, []) if isinstance(skipped, dict) else skipped))
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

    try:
        model: torch.nn.Module = torch.compile(raw, backend=cfg.compile_backend) if cfg.compile else raw
    except RuntimeError as e:  # an unknown backend
        raise cfglib.ConfigError(f"compile_backend: {e}") from None
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
            _check_usable(stores, d)
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
        eval_due = bool(val) and ((cfg.eval.every and done % cfg.eval.every == 0) or done == cfg.steps)
        ckpt_due = done % cfg.ckpt_every == 0 or done == cfg.steps
        if skip_bad and (log_due or eval_due or ckpt_due):  # the same steps on every rank, so safe to gather
            for store in stores.values():
                store.skipped.update(*d.gather(store.skipped))
            _check_usable(stores, d, pooled=True)
        row: dict[str, Any] | None = None
        if log_due:
            now = time.perf_counter()
            row = {"step": done, "tokens": done * tokens_per_step, "train_loss": train_loss, "lr": lr,
                   "tokens_per_s": (done - last_step) * tokens_per_step / max(now - last_time, 1e-9),
                   "data_wait": wait_time / max(step_time, 1e-9),
                   "tokens_by_source": dict(zip(stores, (c * cfg.model.block_size for c in windows.counts(done)))),
                   "epochs_by_source": dict(zip(stores, windows.epochs(done)))}
            if peak is not None:
                row["mfu"] = flops.mfu(flops_token, row["tokens_per_s"] / d.world, peak)
            last_time, last_step = now, done
            wait_time = step_time = 0.0
        if eval_due:
            row = (row or {"step": done, "tokens": done * tokens_per_step, "train_loss": train_loss, "lr": lr})
            row.update(evaluate(raw, val, cfg, d))
        if row is not None:  # every rank alike, so the sum over nodes is safe here
            by_node = torch.zeros(d.nodes, dtype=torch.float64, device=d.device)
            by_node[d.node] = node_cache.fetched
            fetched = [int(b) for b in d.sum_(by_node).tolist()]
            row["bytes_fetched"] = fetched[d.node]
            if d.nodes > 1:
                row["bytes_fetched_by_node"] = {str(n): b for n, b in enumerate(fetched)}
        if row is not None and skip_bad:
            row["skipped_shards"] = sum(len(store.skipped) for store in stores.values())
        if ckpt_due:
            rng = d.gather(torch.get_rng_state())
            if d.master:
                checkpoint.save(ckpt_dir, done, {
                    "model": raw.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "step": done, "loader": windows.state(position),
                    "skipped_shards": _skipped_urls(stores),
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
    for store in [*stores.values(), *val.values()]:
        store.close()
    if d.master and cfg.eval.generate_tokens > 0:
        text = _generate(raw, manifest, cfg.eval.generate_tokens, d, cfg.seed)
        if text is not None:
            (out / "sample.txt").write_text(text + "\n", encoding="utf-8")
            print(f"sample: {text!r}", file=sys.stdout, flush=True)
    return raw
