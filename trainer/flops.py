"""Model FLOPs utilisation (MFU): the share of a device's peak throughput that the model's own math uses.

Convention (PaLM, appendix B; as nanoGPT counts it): training costs 6N + 12*L*H*Q*T FLOPs per token, where
- N counts the weights that take part in a matmul: every block weight (and norm weights, a rounding
  error) plus the output projection, counted once whether or not it is tied to the token embedding,
  because an embedding lookup costs no FLOPs; the position embedding is left out for the same reason, and
  llama's rotary embeddings are elementwise work;
- 12*L*H*Q*T is attention's QK^T and AV products (forward + backward) over the full context T = block_size,
  with L layers, H heads of size Q, not halved for the causal mask;
- recomputation, optimizer and elementwise work are not counted, so MFU compares across implementations.
"""
from __future__ import annotations

import re

from trainer.config import ModelConfig
from trainer.model import padded_vocab, swiglu_hidden

# Dense bf16 tensor-core peaks from the vendors' datasheets (FLOP/s, without sparsity). A device matches the
# first row whose words all appear in its name; unknown devices get no MFU rather than a wrong one.
PEAK_BF16: list[tuple[tuple[str, ...], float]] = [
    (("H200",), 989e12),
    (("H100", "PCIe"), 756e12),
    (("H100", "NVL"), 835e12),
    (("H100",), 989e12),  # SXM5 (reported as "NVIDIA H100 80GB HBM3")
    (("A100",), 312e12),  # SXM4 and PCIe
    (("L40S",), 362e12),
    (("L4",), 121e12),
]


def matmul_params(cfg: ModelConfig) -> int:
    """N of the convention above, from the config (the vocabulary padded as the model pads it)."""
    if cfg.vocab_size <= 0:
        raise ValueError("model.vocab_size must be set to count FLOPs")
    c = cfg.n_embd
    bias = 1 if cfg.bias else 0
    attn = c * 3 * c + bias * 3 * c + c * c + bias * c
    if cfg.arch == "llama":  # SwiGLU: gate and up projections, then down; RMSNorm has no bias
        mlp = 3 * c * swiglu_hidden(c)
    else:
        mlp = c * 4 * c + bias * 4 * c + 4 * c * c + bias * c
    norms = 2 * (c + bias * c)
    return cfg.n_layer * (attn + mlp + norms) + (c + bias * c) + padded_vocab(cfg.vocab_size) * c


def flops_per_token(cfg: ModelConfig) -> int:
    """Training FLOPs (forward + backward) per token: 6N + 12*L*H*Q*T."""
    head = cfg.n_embd // cfg.n_head
    return 6 * matmul_params(cfg) + 12 * cfg.n_layer * cfg.n_head * head * cfg.block_size


def peak_flops(device_name: str) -> float | None:
    """Dense bf16 peak of a device named as torch.cuda.get_device_name() names it, or None when unknown."""
    words = {w.lower() for w in re.split(r"[\s\-_]+", device_name) if w}
    for required, peak in PEAK_BF16:
        if all(r.lower() in words for r in required):
            return peak
    return None


def mfu(flops_token: int, tokens_per_s_per_device: float, peak: float) -> float:
    """Achieved model FLOP/s of one device over its peak."""
    return flops_token * tokens_per_s_per_device / peak
