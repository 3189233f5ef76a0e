"""Deterministic, resumable token windows from the shards a manifest lists.

Training order. A shard's samples are one token stream (documents continue across its samples), cut into
windows of block_size + 1 tokens that overlap by one token (inputs and shifted targets): window j of a
shard is stream[j*B : j*B + B + 1], so a shard of T tokens gives (T - 1) // B windows, a number known from
the manifest alone. Epoch e visits the shards in a permutation drawn from (seed, e) and each shard's
windows in a permutation drawn from (seed, e, shard), which is enough mixing because the pipeline already
assigns documents to shards by a seeded hash. The order is therefore a pure function of (seed, epoch),
whatever the world size or the number of threads.

Positions. The global order is an infinite sequence of windows; an epoch holds the largest multiple of
`batch_size` windows it has (the few left over are skipped), so an optimizer step never straddles two
epochs. Optimizer step s uses positions [s*G, (s+1)*G) with G = batch_size; micro-step m of rank r takes
the micro_batch_size windows starting at s*G + (m * world + r) * micro_batch_size. Every rank has the same
number of micro-batches by construction (no DDP hang), resuming needs only (epoch, position), and a run
resumed with another world size continues the same global order.

Reading. Each process fetches a shard's bytes once (pipeline.storage: local, file://, s3://, hdfs://),
checks its sha256 against the manifest (an error names the shard), decodes the tar once and keeps the
stream as one NumPy array; a batch is a single fancy-indexing gather. No DataLoader workers and no
per-sample IPC are involved, and the next shard is fetched by a background thread while this one is used.

Bad shards. A shard whose bytes fail the sha256 check or do not decode (truncated, wrong counts, a token
id outside the vocabulary) raises ShardError naming it. With `on_bad_shard="skip"` the store logs it and marks it skipped instead, and every
window the global order assigns to it becomes a filler window whose targets are all ignored. Positions,
batch shapes and the number of micro-batches per rank are unchanged, so ranks need not agree on anything
for DDP to stay in step: each rank decides alone, and since badness is a property of the file, every rank
that touches the shard decides the same. The order of all other windows stays the pure function above.
The trainer pools the ranks' skipped sets at log and checkpoint steps (for the `skipped_shards` count) and
saves them in checkpoints, so a resumed run skips the same shards even if a file was repaired meanwhile.
A step without a single target makes it pool them at once: when every shard is skipped the run stops,
naming why, instead of training to the end on filler.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np
import torch

from pipeline.tokenize.shards import Manifest, ShardError, ShardInfo, iter_shard, verify_shard
from trainer.config import BAD_SHARD_POLICIES
from trainer.model import IGNORE_INDEX

log = logging.getLogger(__name__)


def _default_read(uri: str) -> bytes:
    from pipeline import storage

    return storage.read_bytes(uri)


class ShardStore:
    """Fetch, verify and decode shards of one split; keep the most recent few streams in memory."""

    def __init__(self, manifest: Manifest, split: str, verify: bool = True, read: Callable[[str], bytes] = _default_read,
                 keep: int = 3, on_bad_shard: str = "fail"):
        if split not in manifest.splits:
            raise ShardError(f"{manifest.uri}: no split {split!r} (has {', '.join(manifest.splits)})")
        if on_bad_shard not in BAD_SHARD_POLICIES:
            raise ValueError(f"on_bad_shard must be one of {BAD_SHARD_POLICIES}, got {on_bad_shard!r}")
        self.on_bad_shard = on_bad_shard
        self.skipped: set[int] = set()  # indices of shards found bad under on_bad_shard="skip"
        self.errors: dict[int, str] = {}  # why this process skipped each of them
        self.manifest = manifest
        self.shards: list[ShardInfo] = manifest.splits[split].shards
        self.verify = verify
        self.read = read
        self.keep = keep
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-prefetch")

    def _load(self, i: int) -> np.ndarray:
        shard = self.shards[i]
        data = self.read(self.manifest.resolve(shard.url))
        if self.verify:
            verify_shard(data, shard.sha256, shard.url)
        pieces = [tokens for _, tokens, _ in iter_shard(data, shard.url)]
        stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=self.manifest.dtype)
        if len(stream) != shard.tokens or len(pieces) != shard.samples:
            raise ShardError(f"shard {shard.url}: holds {len(pieces)} samples / {len(stream)} tokens, "
                             f"the manifest says {shard.samples} / {shard.tokens}")
        # Without the sha256 check a damaged token is caught here, not as an IndexError inside the model.
        if len(stream) and (top := int(stream.max())) >= self.manifest.vocab_size:
            raise ShardError(f"shard {shard.url}: token id {top} is outside the vocabulary of "
                             f"{self.manifest.vocab_size}")
        return stream

    def prefetch(self, i: int) -> None:
        with self._lock:
            if i in self._cache or i in self._pending or i in self.skipped:
                return
            self._pending[i] = self._pool.submit(self._load, i)

    def stream(self, i: int) -> np.ndarray | None:
        """The shard's tokens as one array; None for a bad shard skipped under on_bad_shard="skip"."""
        with self._lock:
            if i in self.skipped:
                return None
            if i in self._cache:
                self._cache.move_to_end(i)
                return self._cache[i]
            future = self._pending.pop(i, None)
        try:
            stream = future.result() if future is not None else self._load(i)
        except ShardError as e:
            if self.on_bad_shard == "fail":
                raise
            log.warning("%s; skipping the shard (data.on_bad_shard=skip)", e)
            with self._lock:
                self.skipped.add(i)
                self.errors[i] = str(e)
            return None
        with self._lock:
            self._cache[i] = stream
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
        return stream

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class TrainWindows:
    """Windows of block_size + 1 tokens in the global order of docs above, addressed by global position."""

    def __init__(self, store: ShardStore, block_size: int, batch_size: int, seed: int):
        self.store = store
        self.block_size = block_size
        self.seed = seed
        self.per_shard = np.array([max(0, (s.tokens - 1) // block_size) for s in store.shards], dtype=np.int64)
        total = int(self.per_shard.sum())
        self.epoch_length = total // batch_size * batch_size
        if self.epoch_length == 0:
            raise ShardError(f"{store.manifest.uri}: {total} windows of {block_size + 1} tokens, fewer than one "
                             f"batch of {batch_size}")
        self._epoch_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._window_perm: dict[tuple[int, int], np.ndarray] = {}

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(shard order, cumulative window counts along it) for an epoch."""
        if epoch not in self._epoch_cache:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.per_shard))
            self._epoch_cache = {epoch: (order, np.cumsum(self.per_shard[order]))}
        return self._epoch_cache[epoch]

    def _perm(self, epoch: int, shard: int) -> np.ndarray:
        key = (epoch, shard)
        if key not in self._window_perm:
            if len(self._window_perm) > 8:
                self._window_perm.clear()
            self._window_perm[key] = np.random.default_rng([self.seed, epoch, shard]).permutation(self.per_shard[shard])
        return self._window_perm[key]

    def locate(self, position: int, count: int) -> list[tuple[int, np.ndarray]]:
        """[(shard, window indices)] for global positions [position, position + count), within one epoch."""
        epoch, offset = divmod(position, self.epoch_length)
        if offset + count > self.epoch_length:
            raise ValueError("a batch must not straddle two epochs (batch_size must be a multiple of micro batches)")
        order, cum = self._epoch(epoch)
        pos = np.arange(offset, offset + count)
        slot = np.searchsorted(cum, pos, side="right")
        out = []
        for s in np.unique(slot):
            shard = int(order[s])
            first = cum[s] - self.per_shard[shard]
            out.append((shard, self._perm(epoch, shard)[pos[slot == s] - first]))
        # Fetch the shard after the last one touched, so the next batches rarely wait for I/O.
        nxt = int(slot.max()) + 1
        if nxt < len(order):
            self.store.prefetch(int(order[nxt]))
        return out

    def batch(self, position: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (int64, shape [count, block_size]) for global positions [position, position+count).

        Windows of a skipped shard come back as EOS inputs with every target IGNORE_INDEX (module docs)."""
        B = self.block_size
        rows, skipped = [], []
        for shard, windows in self.locate(position, count):
            stream = self.store.stream(shard)
            if stream is None:
                rows.append(np.full((len(windows), B + 1), self.store.manifest.eos_id, dtype=self.store.manifest.dtype))
            else:
                rows.append(stream[(windows * B)[:, None] + np.arange(B + 1)])
            skipped.append(np.full(len(windows), stream is None))
        w = torch.from_numpy(np.concatenate(rows).astype(np.int64))
        x, y = w[:, :-1], w[:, 1:]  # views of one gather; the model accepts non-contiguous inputs
        filler = np.concatenate(skipped)
        if filler.any():
            y = y.clone()
            y[torch.from_numpy(filler)] = IGNORE_INDEX
        return x, y

    def state(self, position: int) -> dict[str, int]:
        epoch, offset = divmod(position, self.epoch_length)
        return {"epoch": epoch, "position": offset}

    def position(self, state: dict[str, int]) -> int:
        return state["epoch"] * self.epoch_length + state["position"]


def micro_positions(step_start: int, micro_step: int, rank: int, world: int, micro_batch: int) -> int:
    """First global position of a rank's micro-batch (see the module docstring)."""
    return step_start + (micro_step * world + rank) * micro_batch


def eval_batches(store: ShardStore, block_size: int, micro_batch: int, rank: int, world: int, shards: int = 0,
                 ignore_index: int = -1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every token of the first `shards` val shards (0 = all) as a target exactly once.

    Each shard's stream gets EOS prepended as the context of its first token (documents follow an EOS in
    training too) and is cut into consecutive blocks of block_size targets, each predicted from the tokens
    before it inside its block (plus the one token just before the block); the last block is padded with
    targets set to `ignore_index`. Counted targets are therefore all the shard's tokens, documents' EOS included, and their
    text is exactly the shard's `text_bytes`. Blocks are dealt round-robin to ranks."""
    eos = store.manifest.eos_id
    B = block_size
    chosen = range(len(store.shards) if shards <= 0 else min(shards, len(store.shards)))
    blocks = [(i, j) for i in chosen for j in range(-(-store.shards[i].tokens // B))]
    mine = blocks[rank::world]
    for k in range(0, len(mine), micro_batch):
        xs, ys = [], []
        for i, j in mine[k : k + micro_batch]:
            stream = store.stream(i)
            x = np.full(B, eos, dtype=np.int64)
            y = np.full(B, ignore_index, dtype=np.int64)
            lo = j * B
            piece = stream[max(lo - 1, 0) : lo + B].astype(np.int64)  # lo == 0: the EOS stands in
            if lo == 0:
                piece = np.concatenate([[eos], piece])
            n = len(piece) - 1
            x[:n], y[:n] = piece[:-1], piece[1:]
            xs.append(x)
            ys.append(y)
        yield torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def eval_text_bytes(store: ShardStore, shards: int = 0) -> int:
    chosen = store.shards if shards <= 0 else store.shards[:shards]
    return sum(s.text_bytes for s in chosen)
