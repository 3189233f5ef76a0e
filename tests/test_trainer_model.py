"""The decoders (gpt2 and llama): preset sizes, padded tied vocabulary, causality, FLOPs counted, and the
learning-rate schedule."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from pipeline.config import ConfigError
from trainer import flops
from trainer.config import load
from trainer.model import GPT, IGNORE_INDEX
from trainer.train import lr_multiplier


def test_gpt2_124m_preset_has_gpt2_small_parameter_count_with_a_padded_tied_vocabulary():
    cfg = load("gpt2-124m")
    model = GPT(dataclasses.replace(cfg.model, vocab_size=50257))
    assert model.vocab_size == 50304
    assert model.lm_head.weight is model.wte.weight
    assert model.num_params() == pytest.approx(124.5e6, rel=0.01)


def test_llama_124m_preset_has_124m_parameters_and_ties_or_unties_its_embedding():
    cfg = load("llama-124m")
    model = GPT(dataclasses.replace(cfg.model, vocab_size=50257))
    assert model.wpe is None and model.lm_head.weight is model.wte.weight
    assert model.num_params() == pytest.approx(124e6, rel=0.01)
    untied = GPT(dataclasses.replace(cfg.model, vocab_size=50257, tie_embeddings=False))
    assert untied.lm_head.weight is not untied.wte.weight
    assert untied.num_params() == model.num_params() + 50304 * 768


def test_gpt2_keeps_its_checkpoint_layout():
    """Checkpoints written before the llama decoder existed hold exactly these tensors."""
    model = GPT(dataclasses.replace(load("tiny").model, vocab_size=100))
    block = ["ln1.weight", "attn.qkv.weight", "attn.proj.weight", "ln2.weight", "mlp.fc.weight", "mlp.proj.weight"]
    assert list(model.state_dict()) == ["wte.weight", "wpe.weight", *(f"blocks.{i}.{k}" for i in range(2) for k in block),
                                        "ln_f.weight", "lm_head.weight"]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("tied", [True, False])
def test_flops_count_every_matmul_weight_but_the_input_embeddings(arch, tied):
    cfg = dataclasses.replace(load("tiny").model, arch=arch, vocab_size=100, tie_embeddings=tied)
    model = GPT(cfg)
    lookups = (0 if tied else model.wte.weight.numel()) + (model.wpe.weight.numel() if model.wpe is not None else 0)
    assert flops.matmul_params(cfg) == model.num_params() - lookups


def test_llama_rejects_biases_and_unknown_architectures():
    with pytest.raises(ConfigError, match="model.bias"):
        load("llama-tiny", overrides=["model.bias=true"])
    with pytest.raises(ConfigError, match="model.arch"):
        load("tiny", overrides=["model.arch=mamba"])


@pytest.mark.parametrize("preset", ["tiny", "llama-tiny"])
def test_logits_at_a_position_do_not_depend_on_later_tokens(preset):
    cfg = load(preset)
    torch.manual_seed(0)
    model = GPT(dataclasses.replace(cfg.model, vocab_size=100)).eval()
    a = torch.randint(0, 100, (1, 16))
    b = a.clone()
    b[0, 10:] = (b[0, 10:] + 1) % 100
    la, _, _ = model(a)
    lb, _, _ = model(b)
    torch.testing.assert_close(la[0, :10], lb[0, :10])
    assert not torch.allclose(la[0, 10:], lb[0, 10:])


def test_ignored_targets_are_not_counted():
    cfg = load("tiny")
    model = GPT(dataclasses.replace(cfg.model, vocab_size=100))
    x = torch.randint(0, 100, (2, 8))
    y = x.clone()
    y[1, 4:] = IGNORE_INDEX
    _, loss_sum, n = model(x, y)
    assert n.item() == 12
    _, part, _ = model(x[:1], y[:1])
    assert loss_sum.item() > part.item()


def test_schedule_warms_up_linearly_then_decays_to_min_lr():
    cfg = load("tiny", overrides=["steps=100", "optim.warmup_steps=10", "optim.lr=1e-3", "optim.min_lr=1e-4"])
    assert lr_multiplier(0, cfg) == pytest.approx(0.1)
    assert lr_multiplier(9, cfg) == pytest.approx(1.0)
    assert lr_multiplier(100, cfg) == pytest.approx(0.1)
    values = [lr_multiplier(s, cfg) for s in range(10, 101)]
    assert values == sorted(values, reverse=True)


def test_wsd_schedule_holds_the_peak_then_decays_linearly_over_the_last_fraction():
    cfg = load("tiny", overrides=["steps=100", "optim.warmup_steps=10", "optim.lr=1e-3", "optim.min_lr=1e-4",
                                  "optim.decay=wsd", "optim.decay_fraction=0.2"])
    assert lr_multiplier(4, cfg) == pytest.approx(0.5)
    assert all(lr_multiplier(s, cfg) == pytest.approx(1.0) for s in range(10, 81))
    assert lr_multiplier(90, cfg) == pytest.approx(0.55)
    assert lr_multiplier(100, cfg) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="optim.decay"):
        load("tiny", overrides=["optim.decay=linear"])


def test_config_rejects_unknown_keys_and_presets():
    with pytest.raises(ConfigError, match="model.n_layers"):
        load("tiny", overrides=["model.n_layers=3"])
    with pytest.raises(ConfigError, match="unknown preset"):
        load("huge")
