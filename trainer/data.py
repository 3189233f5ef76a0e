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

Mixtures. Several sources (manifests sharing one tokenizer) each keep the order above as their own
stream of source positions, with their own epochs (a small source repeats; `epochs_by_source`), drawn from
(seed, source index, epoch) and with epochs of all their windows. Source k of weight w_k gets, after s
optimizer steps, C_k(s) windows: the largest-remainder rounding of its quota s*G*w_k/W (W = sum of the
weights; ties go to the lower index), computed exactly in rationals. So |C_k(s) - s*G*w_k/W| < 1 at every
step, the counts add up to s*G, and, since every source is given at least one window per step by its
weight (checked at start), C_k never decreases. Step s takes C_k(s+1) - C_k(s) windows from each source:
the next ones of its stream, spread over the step's G positions by the keys (j + 1/2) / n_k of its j-th of
n_k windows (ties to the lower index), so every rank's micro-batches hold a mix. The global order is thus a
pure function of (seed, sources, weights), positions and micro-steps are dealt to ranks as below, and
resuming needs only the global position. With one source, C_0(s) = s*G and the windows sit in order: the
order is exactly that of a single manifest, whose epochs keep the largest multiple of G windows (so an old
checkpoint resumes unchanged).

Reading. Each process fetches a shard's bytes once (pipeline.storage: local, file://, s3://, hdfs://),
checks its sha256 against the manifest (an error names the shard), decodes the tar once and keeps the
stream as one NumPy array; a batch is a single fancy-indexing gather. No DataLoader workers and no
per-sample IPC are involved, and the next shard is fetched by a background thread while this one is used.
The processes of one node share what they fetch (trainer/node_cache.py, `data.node_cache`; on by default when
a manifest is remote and torchrun starts several processes per node): the first of them to need a shard
fetches it under a per-shard file lock, checks it and writes it to a local file named by its sha256, the
others wait on the lock and read that file, so each shard leaves storage once per node. The store sees only
the `read` callable it is given, so windows, order and losses are the same with the cache or without it;
`bytes_fetched` in metrics.jsonl is what rank 0's node read from storage.

Bad shards. A shard whose bytes fail the sha256 check or do not decode (truncated, wrong counts, a token
id outside the vocabulary) raises ShardError naming it. With `on_bad_shard="skip"` the store logs it and marks it skipped instead, and every
window the global order assigns to it becomes a filler window whose targets are all ignored. Positions,
batch shapes and the number of micro-batches per rank are unchanged, so ranks need not agree on anything
for DDP to stay in step: each rank decides alone, and since badness is a property of the file, every rank
that touches the shard decides the same. The order of all other windows stays the pure function above.
The trainer pools the ranks' skipped sets at log and checkpoint steps (for the `skipped_shards` count) and
saves them in checkpoints, so a resumed run skips the same shards even if a file was repaired meanwhile.
In a mixture the run also stops when every shard of one source is skipped, naming the source.
A step without a single target makes it pool them at once: when every shard is skipped the run stops,
naming why, instead of training to the end on filler.

Languages. A val store opened with `languages=True` also keeps, per token, its document's language and, on
a document's first token, the UTF-8 bytes of its text (pipeline.tokenize.shards, sample schema v2; a shard
of version 1 samples is all "unknown", its text_bytes on its first token). eval_batches then hands out both
for every target, so bits per byte by language are exact sums over whole documents.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from pipeline.tokenize.shards import UNKNOWN_LANG, Manifest, ShardError, ShardInfo, iter_shard, piece_languages, verify_shard
from trainer.config import BAD_SHARD_POLICIES
from trainer.model import IGNORE_INDEX

log = logging.getLogger(__name__)


def _default_read(uri: str) -> bytes:
    from pipeline import storage

    return storage.read_bytes(uri)


class ShardStore:
    """Fetch, verify and decode shards of one split; keep the most recent few streams in memory."""

    def __init__(self, manifest: Manifest, split: str, verify: bool = True, read: Callable[[str], bytes] = _default_read,
                 keep: int = 3, on_bad_shard: str = "fail", languages: bool = False):
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
        self.languages = languages  # also keep each token's language and text bytes (module docs)
        self.lang_names: list[str] = []  # language codes of `token_languages`, in the order first met
        self._lang_codes: dict[str, int] = {}
        self._token_langs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-prefetch")

    def _load(self, i: int) -> np.ndarray:
        shard = self.shards[i]
        data = self.read(self.manifest.resolve(shard.url))
        if self.verify:
            verify_shard(data, shard.sha256, shard.url)
        samples = list(iter_shard(data, shard.url))
        pieces = [tokens for _, tokens, _ in samples]
        stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=self.manifest.dtype)
        if len(stream) != shard.tokens or len(pieces) != shard.samples:
            raise ShardError(f"shard {shard.url}: holds {len(pieces)} samples / {len(stream)} tokens, "
                             f"the manifest says {shard.samples} / {shard.tokens}")
        # Without the sha256 check a damaged token is caught here, not as an IndexError inside the model.
        if len(stream) and (top := int(stream.max())) >= self.manifest.vocab_size:
            raise ShardError(f"shard {shard.url}: token id {top} is outside the vocabulary of "
                             f"{self.manifest.vocab_size}")
        if self.languages:
            langs = self._languages_of(shard, samples, len(stream))
            with self._lock:
                self._token_langs[i] = langs
        return stream

    def _languages_of(self, shard: ShardInfo, samples: list, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        """(language code, text bytes) per token of a shard; the bytes sit on each document's first token."""
        codes = np.zeros(n_tokens, dtype=np.int32)
        text_bytes = np.zeros(n_tokens, dtype=np.int64)
        offset, versioned = 0, False
        for _, tokens, meta in samples:
            versioned |= "langs" in meta
            for lang, start, end, n in piece_languages(meta):
                with self._lock:
                    code = self._lang_codes.setdefault(lang, len(self.lang_names))
                    if code == len(self.lang_names):
                        self.lang_names.append(lang)
                codes[offset + start : offset + end] = code
                text_bytes[offset + start] += n
            offset += len(tokens)
        if not versioned and n_tokens:  # version 1 samples: all "unknown", the shard's bytes on its first token
            with self._lock:
                code = self._lang_codes.setdefault(UNKNOWN_LANG, len(self.lang_names))
                if code == len(self.lang_names):
                    self.lang_names.append(UNKNOWN_LANG)
            codes[:] = code
            text_bytes[0] = shard.text_bytes
        if int(text_bytes.sum()) != shard.text_bytes:
            raise ShardError(f"shard {shard.url}: its samples hold {int(text_bytes.sum())} text bytes, the manifest "
                             f"says {shard.text_bytes}")
        return codes, text_bytes

    def token_languages(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(code into lang_names, text bytes) for every token of shard i (a store opened with languages=True);
        they are loaded and evicted together with the shard's stream."""
        self.stream(i)
        return self._token_langs[i]

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
                self._token_langs.pop(self._cache.popitem(last=False)[0], None)
        return stream

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class TrainWindows:
    """Windows of block_size + 1 tokens in the global order of docs above, addressed by global position.

    Epochs hold the largest multiple of `batch_size` windows (1 for a source of a mixture, whose steps may
    straddle its epochs); `stream` keys the permutations apart (a mixture passes its source index)."""

    def __init__(self, store: ShardStore, block_size: int, batch_size: int, seed: int, stream: Sequence[int] = ()):
        self.store = store
        self.block_size = block_size
        self.seed = seed
        self.key = [seed, *stream]
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
            order = np.random.default_rng([*self.key, epoch]).permutation(len(self.per_shard))
            self._epoch_cache = {epoch: (order, np.cumsum(self.per_shard[order]))}
        return self._epoch_cache[epoch]

    def _perm(self, epoch: int, shard: int) -> np.ndarray:
        key = (epoch, shard)
        if key not in self._window_perm:
            if len(self._window_perm) > 8:
                self._window_perm.clear()
            self._window_perm[key] = np.random.default_rng([*self.key, epoch, shard]).permutation(self.per_shard[shard])
        return self._window_perm[key]

    def locate(self, position: int, count: int) -> list[tuple[int, np.ndarray]]:
        """[(shard, window indices)] for global positions [position, position + count), within one epoch."""
        epoch, offset = divmod(position, self.epoch_length)
        if offset + count > self.epoch_length:
            raise ValueError("a batch must not straddle two epochs (batch_size must be a multiple of micro batches)")
        return self._locate(epoch, np.arange(offset, offset + count))

    def _locate(self, epoch: int, offsets: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """[(shard, window indices)] for increasing offsets inside one epoch, in their order."""
        order, cum = self._epoch(epoch)
        slot = np.searchsorted(cum, offsets, side="right")
        out = []
        for s in np.unique(slot):
            shard = int(order[s])
            first = cum[s] - self.per_shard[shard]
            out.append((shard, self._perm(epoch, shard)[offsets[slot == s] - first]))
        # Fetch the shard after the last one touched, so the next batches rarely wait for I/O.
        nxt = int(slot.max()) + 1
        if nxt < len(order):
            self.store.prefetch(int(order[nxt]))
        return out

    def rows(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The windows (shape [n, block_size + 1]) at increasing global positions, and which are filler.

        Windows of a skipped shard come back as EOS tokens, flagged as filler (module docs)."""
        B = self.block_size
        rows, skipped = [], []
        epochs = positions // self.epoch_length
        for epoch in np.unique(epochs):
            for shard, windows in self._locate(int(epoch), positions[epochs == epoch] - epoch * self.epoch_length):
                stream = self.store.stream(shard)
                if stream is None:
                    rows.append(np.full((len(windows), B + 1), self.store.manifest.eos_id, dtype=self.store.manifest.dtype))
                else:
                    rows.append(stream[(windows * B)[:, None] + np.arange(B + 1)])
                skipped.append(np.full(len(windows), stream is None))
        return np.concatenate(rows), np.concatenate(skipped)

    def batch(self, position: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (int64, shape [count, block_size]) for global positions [position, position+count).

        Windows of a skipped shard come back as EOS inputs with every target IGNORE_INDEX (module docs)."""
        if position % self.epoch_length + count > self.epoch_length:
            raise ValueError("a batch must not straddle two epochs (batch_size must be a multiple of micro batches)")
        return _tensors(*self.rows(np.arange(position, position + count)))

    def state(self, position: int) -> dict[str, int]:
        epoch, offset = divmod(position, self.epoch_length)
        return {"epoch": epoch, "position": offset}

    def position(self, state: dict[str, int]) -> int:
        return state["epoch"] * self.epoch_length + state["position"]


def _tensors(rows: np.ndarray, filler: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.from_numpy(rows.astype(np.int64))
    x, y = w[:, :-1], w[:, 1:]  # views of one gather; the model accepts non-contiguous inputs
    if filler.any():
        y = y.clone()
        y[torch.from_numpy(filler)] = IGNORE_INDEX
    return x, y


def allocate(step: int, batch_size: int, weights: Sequence[Fraction]) -> list[int]:
    """Windows each source has given after `step` optimizer steps: the largest-remainder rounding of the
    quotas step * batch_size * w_k / W, ties to the lower index (module docs)."""
    total = step * batch_size
    quotas = [total * w / sum(weights) for w in weights]
    counts = [q.numerator // q.denominator for q in quotas]
    by_remainder = sorted(range(len(weights)), key=lambda k: (-(quotas[k] - counts[k]), k))
    for k in by_remainder[: total - sum(counts)]:
        counts[k] += 1
    return counts


def step_layout(before: Sequence[int], after: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(source, source position) of each of a step's positions, from the sources' counts before and after it:
    source k's j-th of n_k windows sits at key (j + 1/2) / n_k, ties to the lower index (module docs)."""
    n = np.array(after, dtype=np.int64) - np.array(before, dtype=np.int64)
    source = np.repeat(np.arange(len(n)), n)
    j = np.arange(len(source)) - np.repeat(np.cumsum(n) - n, n)
    order = np.lexsort((source, (2 * j + 1) / (2 * n[source])))
    return source[order], (np.array(before, dtype=np.int64)[source] + j)[order]


class Mixture:
    """The global order over several sources' windows in the proportions of their weights (module docs).

    One source is its TrainWindows, positions unchanged, so a run of one manifest keeps its order."""

    def __init__(self, names: list[str], stores: list[ShardStore], weights: Sequence[float | int], block_size: int,
                 batch_size: int, seed: int):
        if len(names) != len(stores) or len(weights) != len(stores) or not stores:
            raise ValueError("a mixture needs as many names and weights as sources, and at least one")
        if any(w <= 0 for w in weights):
            raise ValueError(f"source weights must be positive, got {list(weights)}")
        self.names = names
        self.batch_size = batch_size
        self.raw_weights = list(weights)
        self.weights = [Fraction(w) for w in weights]  # exact, so the rounding never depends on float error
        one = len(stores) == 1
        self.sources = [TrainWindows(store, block_size, batch_size if one else 1, seed, () if one else (k,))
                        for k, store in enumerate(stores)]
        for name, w in zip(names, self.weights):
            per_step = batch_size * w / sum(self.weights)
            if per_step < 1:
                raise ValueError(f"source {name} gets {float(per_step):.3g} windows per step of {batch_size}: "
                                 "raise its weight or data.batch_size so that every source gets at least one")
        self._layout: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def counts(self, step: int) -> list[int]:
        """Windows each source has given after `step` optimizer steps."""
        if len(self.sources) == 1:
            return [step * self.batch_size]
        return allocate(step, self.batch_size, self.weights)

    def layout(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(source, source position) of each position of optimizer step `step`."""
        if step not in self._layout:
            self._layout = {step: step_layout(self.counts(step), self.counts(step + 1))}
        return self._layout[step]

    def batch(self, position: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (int64, shape [count, block_size]) for global positions [position, position+count),
        which lie inside one optimizer step."""
        if len(self.sources) == 1:
            return self.sources[0].batch(position, count)
        step, offset = divmod(position, self.batch_size)
        if offset + count > self.batch_size:
            raise ValueError("a micro-batch must not straddle two optimizer steps")
        source, at = (a[offset : offset + count] for a in self.layout(step))
        rows = np.empty((count, self.sources[0].block_size + 1), dtype=self.sources[0].store.manifest.dtype)
        filler = np.zeros(count, dtype=bool)
        for k in np.unique(source):
            mine = source == k
            rows[mine], filler[mine] = self.sources[k].rows(at[mine])
        return _tensors(rows, filler)

    def epochs(self, step: int) -> list[float]:
        """Epochs each source has run through after `step` optimizer steps."""
        return [c / s.epoch_length for c, s in zip(self.counts(step), self.sources)]

    def state(self, position: int) -> dict[str, Any]:
        """What a checkpoint keeps: one source's (epoch, position) as ever; for a mixture the global position
        and the mixture it belongs to, so a resume with other sources or weights is refused."""
        if len(self.sources) == 1:
            return self.sources[0].state(position)
        return {"position": position, "mixture": self.describe()}

    def describe(self) -> list[list[str]]:
        return [[name, repr(float(w))] for name, w in zip(self.names, self.raw_weights)]

    def position(self, state: dict[str, Any]) -> int:
        mixture = state.get("mixture")
        mine = None if len(self.sources) == 1 else self.describe()
        if mixture != mine:
            said = lambda m: ", ".join(f"{n} (weight {w})" for n, w in m) if m else "one source"  # noqa: E731
            raise ValueError(f"the checkpoint was written by a run over {said(mixture)}, this run has {said(mine)}; "
                             "resume with the same sources and weights, or start a new run directory")
        return self.sources[0].position(state) if mine is None else int(state["position"])


def micro_positions(step_start: int, micro_step: int, rank: int, world: int, micro_batch: int) -> int:
    """First global position of a rank's micro-batch (see the module docstring)."""
    return step_start + (micro_step * world + rank) * micro_batch


def eval_batches(store: ShardStore, block_size: int, micro_batch: int, rank: int, world: int, shards: int = 0,
                 ignore_index: int = -1, languages: bool = False) -> Iterator[tuple[torch.Tensor, ...]]:
    """Every token of the first `shards` val shards (0 = all) as a target exactly once.

    Each shard's stream gets EOS prepended as the context of its first token (documents follow an EOS in
    training too) and is cut into consecutive blocks of block_size targets, each predicted from the tokens
    before it inside its block (plus the one token just before the block); the last block is padded with
    targets set to `ignore_index`. Counted targets are therefore all the shard's tokens, documents' EOS included, and their
    text is exactly the shard's `text_bytes`. Blocks are dealt round-robin to ranks.

    With `languages` (a store opened with languages=True) each batch also carries, per target, its
    document's language code (into store.lang_names; -1 on padding) and text bytes (module docs)."""
    eos = store.manifest.eos_id
    B = block_size
    chosen = range(len(store.shards) if shards <= 0 else min(shards, len(store.shards)))
    blocks = [(i, j) for i in chosen for j in range(-(-store.shards[i].tokens // B))]
    mine = blocks[rank::world]
    for k in range(0, len(mine), micro_batch):
        xs, ys, codes, text_bytes = [], [], [], []
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
            if languages:
                lang, nbytes = store.token_languages(i)
                code, tb = np.full(B, -1, dtype=np.int64), np.zeros(B, dtype=np.int64)
                code[:n], tb[:n] = lang[lo : lo + n], nbytes[lo : lo + n]
                codes.append(code)
                text_bytes.append(tb)
        batch = [torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))]
        if languages:
            batch += [torch.from_numpy(np.stack(codes)), torch.from_numpy(np.stack(text_bytes))]
        yield tuple(batch)


def eval_text_bytes(store: ShardStore, shards: int = 0) -> int:
    chosen = store.shards if shards <= 0 else store.shards[:shards]
    return sum(s.text_bytes for s in chosen)
