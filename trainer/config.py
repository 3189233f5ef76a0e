"""Typed trainer configuration: defaults here, then a preset, a YAML file and `--set key=value` on top.

Batch sizes are global so that a run means the same thing on any number of processes: every optimizer step
consumes `data.batch_size` windows of the global order, split into `data.micro_batch_size` windows per
process per forward pass, with gradient accumulation making up the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from pipeline import config as cfglib


ARCHS = ("gpt2", "llama")


@dataclass
class ModelConfig:
    # "gpt2": learned positions, LayerNorm, GELU MLP; "llama": rotary positions, RMSNorm, SwiGLU, no biases
    arch: str = "gpt2"
    block_size: int = 1024  # tokens of context (a training window is block_size + 1 tokens)
    n_layer: int = 12  # transformer blocks
    n_head: int = 12  # attention heads per block; n_embd must divide by it
    n_embd: int = 768  # width of the residual stream (gpt2-124m: 12 layers, 12 heads, 768)
    dropout: float = 0.0  # on attention weights, residual branches and embeddings; 0 for pre-training, as nanoGPT
    bias: bool = False  # biases in linear layers and LayerNorms (gpt2 only)
    tie_embeddings: bool = True  # the output projection shares the token embedding's weights
    rope_theta: float = 10000.0  # rotary embeddings' base (llama only)
    vocab_size: int = 0  # 0 = the manifest's tokenizer vocab_size (padded up to a multiple of 64 by the model)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise cfglib.ConfigError(f"model.arch: expected one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.arch == "llama" and self.bias:
            raise cfglib.ConfigError("model.bias: the llama decoder has no biases; set model.bias=false")
        if self.arch == "llama" and (self.n_embd // max(self.n_head, 1)) % 2:
            raise cfglib.ConfigError(f"model.n_embd / model.n_head must be even for rotary embeddings, "
                                     f"got {self.n_embd} / {self.n_head}")


DECAYS = ("cosine", "wsd")


@dataclass
class OptimConfig:
    lr: float = 6e-4  # peak learning rate, reached at the end of warmup (GPT-3's for 125M parameters)
    min_lr: float = 6e-5  # the learning rate reached at `train.steps`
    warmup_steps: int = 700  # optimizer steps of linear warmup from 0 to lr
    # After warmup: "cosine" decays all the way to min_lr; "wsd" (warmup-stable-decay) holds lr, then decays
    # linearly to min_lr over the last `decay_fraction` of the steps, so a run can be extended from the
    # stable phase.
    decay: str = "cosine"
    decay_fraction: float = 0.2  # "wsd" only: the share of all steps spent decaying to min_lr
    weight_decay: float = 0.1  # AdamW's decoupled weight decay, on matrices and embeddings only (not biases or norms)
    beta1: float = 0.9  # AdamW's first-moment decay
    beta2: float = 0.95  # AdamW's second-moment decay (0.95 as GPT-3 and llama, steadier than 0.999 at scale)
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping

    def __post_init__(self):
        if self.decay not in DECAYS:
            raise cfglib.ConfigError(f"optim.decay: expected one of {', '.join(DECAYS)}, got {self.decay!r}")


BAD_SHARD_POLICIES = ("fail", "skip")


@dataclass
class SourceConfig:
    name: str = ""  # the source's key in tokens_by_source and val_bpb_by_source; "" = named after its manifest's directory
    manifest: str = ""  # its manifest.json (path, file://, s3:// or hdfs://)
    weight: float = 0.0  # its share of training windows relative to the other sources; 0 everywhere = by train tokens


@dataclass
class DataConfig:
    batch_size: int = 480  # windows (of block_size + 1 tokens) per optimizer step, over all processes
    micro_batch_size: int = 12  # windows per process per forward pass
    seed: int = 1234  # the global sample order is a function of (seed, epoch) only
    verify_sha256: bool = True  # check every fetched shard against the manifest's sha256 before decoding it
    # A training shard that fails its sha256 or does not decode: "fail" stops with an error naming it; "skip"
    # logs it, trains on nothing from it and counts it as `skipped_shards` (rules in trainer/data.py).
    # Validation shards always fail: skipping one would silently change what val_loss measures.
    on_bad_shard: str = "fail"
    # A mixture of manifests sharing one tokenizer, each taking its weight's share of every step's windows
    # (rules in trainer/data.py). `--data` given once or more stands for sources named after their directories.
    sources: list[SourceConfig] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)  # the sources' weights in order (overrides theirs); empty = theirs
    # A directory through which the processes of one node share fetched shards, so each leaves storage once
    # per node (trainer/node_cache.py): "auto" = one under the system temp dir named after the manifests, when
    # a manifest is remote (s3://, hdfs://, ...) and torchrun starts several processes per node; a path = that
    # directory, always; "none" or "" = off, every process fetches its own.
    node_cache: str = "auto"
    # Bytes of shards the node cache keeps; beyond them the least recently used are deleted (and fetched
    # again when needed). Where the temp dir is a tmpfs, this bounds the memory the cache takes.
    node_cache_bytes: int = 4 << 30

    def __post_init__(self):
        if self.on_bad_shard not in BAD_SHARD_POLICIES:
            raise cfglib.ConfigError(f"data.on_bad_shard: expected one of {', '.join(BAD_SHARD_POLICIES)}, "
                                     f"got {self.on_bad_shard!r}")
        for i, w in enumerate(self.weights):
            if not 0 < w < float("inf"):
                raise cfglib.ConfigError(f"data.weights[{i}] must be above 0, not {w}")
        for i, source in enumerate(self.sources):
            if not 0 <= source.weight < float("inf"):
                raise cfglib.ConfigError(f"data.sources[{i}].weight must be at least 0, not {source.weight}")


@dataclass
class EvalConfig:
    every: int = 500  # steps between evaluations; 0 = only at the end
    shards: int = 0  # val shards to evaluate (whole shards, so bits per byte stay exact); 0 = all
    generate_tokens: int = 64  # tokens sampled at the end when the manifest lists a tokenizer; 0 = none


# The values each numeric setting can take (pipeline.config.check_ranges), checked whenever a config is
# loaded, so a mistyped number fails before a single process starts training.
RANGES = {
    "model.block_size": "[1, inf)",
    "model.n_layer": "[1, inf)",
    "model.n_head": "[1, inf)",
    "model.n_embd": "[1, inf)",
    "model.dropout": "[0, 1)",
    "model.vocab_size": "[0, inf)",
    "model.rope_theta": "(0, inf)",
    "optim.lr": "(0, inf)",
    "optim.min_lr": "[0, inf)",
    "optim.warmup_steps": "[0, inf)",
    "optim.decay_fraction": "(0, 1]",
    "optim.weight_decay": "[0, inf)",
    "optim.beta1": "[0, 1)",
    "optim.beta2": "[0, 1)",
    "optim.grad_clip": "[0, inf)",
    "data.batch_size": "[1, inf)",
    "data.micro_batch_size": "[1, inf)",
    "data.seed": "[0, inf)",  # NumPy's generators take no negative seed
    "data.node_cache_bytes": "[0, inf)",
    "eval.every": "[0, inf)",
    "eval.shards": "[0, inf)",
    "eval.generate_tokens": "[0, inf)",
    "steps": "[1, inf)",
    "log_every": "[1, inf)",
    "ckpt_every": "[1, inf)",
    "keep_checkpoints": "[0, inf)",
}


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    steps: int = 20000  # optimizer steps in the whole run (the learning-rate schedule's length)
    log_every: int = 10  # steps between training rows in metrics.jsonl (and the console line)
    ckpt_every: int = 1000  # steps between checkpoints (one is always written at the end)
    keep_checkpoints: int = 3  # newest checkpoints kept, older ones deleted; 0 = keep all
    compile: bool = False  # torch.compile the model
    # torch.compile's backend: "inductor" generates fused kernels; "eager" only captures the graphs, a check of
    # the compiled path in seconds where generating kernels would take minutes (a CPU dry run)
    compile_backend: str = "inductor"
    seed: int = 1337  # model init and dropout

    def __post_init__(self):
        cfglib.check_ranges(self, RANGES)


PRESETS: dict[str, dict[str, Any]] = {
    # A few-second CPU run for tests and smoke checks.
    "tiny": {
        "model": {"block_size": 64, "n_layer": 2, "n_head": 2, "n_embd": 64},
        "optim": {"lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 5, "weight_decay": 0.0},
        "data": {"batch_size": 16, "micro_batch_size": 4},
        "eval": {"every": 10, "generate_tokens": 16},
        "steps": 30,
        "log_every": 1,
        "ckpt_every": 10,
    },
    # The tiny preset's shape as a llama decoder (SwiGLU width 192 instead of the GELU MLP's 256).
    "llama-tiny": {
        "model": {"arch": "llama", "block_size": 64, "n_layer": 2, "n_head": 2, "n_embd": 64},
        "optim": {"lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 5, "weight_decay": 0.0},
        "data": {"batch_size": 16, "micro_batch_size": 4},
        "eval": {"every": 10, "generate_tokens": 16},
        "steps": 30,
        "log_every": 1,
        "ckpt_every": 10,
    },
    "gpt2-124m": {
        "model": {"block_size": 1024, "n_layer": 12, "n_head": 12, "n_embd": 768},
        "optim": {"lr": 6e-4, "min_lr": 6e-5},
    },
    # GPT-2 small's shape as a llama decoder: 124M parameters with GPT-2's 50257-token vocabulary.
    "llama-124m": {
        "model": {"arch": "llama", "block_size": 1024, "n_layer": 12, "n_head": 12, "n_embd": 768},
        "optim": {"lr": 6e-4, "min_lr": 6e-5},
    },
    "gpt2-350m": {
        "model": {"block_size": 1024, "n_layer": 24, "n_head": 16, "n_embd": 1024},
        "optim": {"lr": 3e-4, "min_lr": 3e-5},
    },
}


def load(preset: str | None = None, path: str | Path | None = None, overrides: Iterable[str] = ()) -> TrainConfig:
    """Defaults, then the preset, then the YAML file, then `--set` overrides."""
    base = TrainConfig()
    if preset:
        if preset not in PRESETS:
            raise cfglib.ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        base = cfglib.merge(base, PRESETS[preset])
    return cfglib.load(TrainConfig, path, overrides, base=base)
