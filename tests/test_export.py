"""The export is the same model in stock transformers: a tiny run of each architecture, exported and loaded
with AutoModelForCausalLM / AutoTokenizer on CPU, gives our logits, our greedy tokens and the run's own
validation loss; and its model card states what the run's metrics and the pipeline's stats.json say."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from pipeline.tokenize.shards import iter_shard
from synthetic import REPO, make_dataset, write_corpus
from trainer.config import load
from trainer.export import export
from trainer.train import train

transformers = pytest.importorskip("transformers")

PRESETS = {"gpt2": "tiny", "llama": "llama-tiny"}
STEPS = 30  # evaluations at 10, 20, 30


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("export-data") / "data")


@pytest.fixture(scope="module", params=sorted(PRESETS))
def exported(request, dataset, tmp_path_factory):
    """(arch, our trained model, the export directory, the run directory)."""
    root = tmp_path_factory.mktemp(f"export-{request.param}")
    cfg = load(PRESETS[request.param], overrides=[f"steps={STEPS}", "eval.generate_tokens=0"])
    model = train(cfg, str(dataset), root / "run").eval()
    out = export(root / "run", root / "hf", data=[str(dataset)])
    return request.param, model, out, root / "run"


def _hf(out: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out)


def test_export_is_a_stock_architecture_with_no_custom_code(exported, dataset):
    arch, model, out, _ = exported
    hf, tok = _hf(out)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == [{"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}[arch]]
    assert type(hf).__name__ == config["architectures"][0] and "auto_map" not in config
    assert not list(out.glob("*.py")) and not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    assert isinstance(tok, transformers.PreTrainedTokenizerFast)
    eos = json.loads(dataset.read_text())["tokenizer"]["eos_id"]
    assert tok.eos_token_id == eos and hf.config.eos_token_id == eos
    assert config["vocab_size"] == model.vocab_size and len(tok) == model.cfg.vocab_size
    # GPT2LMHeadModel always has biases: ours are off (model.bias=false), so theirs are exported as zeros.
    biases = [p for n, p in hf.named_parameters() if n.endswith(".bias")]
    assert all(not p.any() for p in biases)
    assert hf.num_parameters() - sum(p.numel() for p in biases) == model.num_params()


def test_transformers_logits_equal_ours_in_fp32(exported):
    _, model, out, _ = exported
    hf, _ = _hf(out)
    x = torch.randint(0, model.cfg.vocab_size, (3, model.cfg.block_size), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, _, _ = model(x)
        theirs = hf(input_ids=x).logits
    V = model.cfg.vocab_size
    assert (ours[..., :V] - theirs[..., :V]).abs().max().item() < 1e-4


def _greedy(model, idx: torch.Tensor, n: int) -> torch.Tensor:
    with torch.no_grad():
        for _ in range(n):
            logits, _, _ = model(idx)
            idx = torch.cat([idx, logits[:, -1, : model.cfg.vocab_size].argmax(-1, keepdim=True)], dim=1)
    return idx


def test_greedy_generation_of_32_tokens_is_identical(exported):
    _, model, out, _ = exported
    hf, tok = _hf(out)
    prompt = torch.tensor([[tok.eos_token_id] + tok("The function returns").input_ids])
    ours = _greedy(model, prompt, 32)
    # EOS may be the likeliest token: generation must then go on past it as ours does.
    theirs = hf.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=32,
                         eos_token_id=-1, pad_token_id=tok.eos_token_id)
    assert theirs.shape == (1, prompt.size(1) + 32)
    assert theirs.tolist() == ours.tolist()


def test_validation_loss_computed_by_transformers_equals_the_runs(exported, dataset):
    """The shard's stream after an EOS, cut into blocks of block_size targets (the trainer's evaluation),
    scored by the exported model alone."""
    _, model, out, run = exported
    hf, tok = _hf(out)
    manifest = json.loads(dataset.read_text())
    B = model.cfg.block_size
    nats, count = 0.0, 0
    for shard in manifest["splits"]["val"]["shards"]:
        data = (dataset.parent / shard["url"]).read_bytes()
        stream = np.concatenate([[tok.eos_token_id], *(t for _, t, _ in iter_shard(data))]).astype(np.int64)
        for lo in range(0, len(stream) - 1, B):
            piece = torch.from_numpy(stream[lo : lo + B + 1])[None]
            with torch.no_grad():
                logits = hf(input_ids=piece[:, :-1]).logits
            nats += F.cross_entropy(logits[0].double(), piece[0, 1:], reduction="sum").item()
            count += piece.size(1) - 1
    final = [r for r in _metrics(run) if "val_loss" in r][-1]
    assert final["step"] == STEPS and count == final["val_tokens"] == manifest["splits"]["val"]["tokens"]
    assert nats / count == pytest.approx(final["val_loss"], rel=1e-5)


def test_text_generation_pipeline_runs_on_the_export(exported):
    _, _, out, _ = exported
    generate = transformers.pipeline("text-generation", model=str(out), device="cpu")
    text = generate("The function", max_new_tokens=16, do_sample=False)[0]["generated_text"]
    assert text.startswith("The function") and len(text) > len("The function")


# The model card, from a run on shards the whole pipeline (clean, filter, dedupe, tokenize) wrote.

PIPELINE_SETTINGS = ["tokenize.vocab_size=512", "tokenize.sample_tokens=256", "tokenize.shard_bytes=20000",
                     "tokenize.val_fraction=0.1", "tokenize.min_frequency=1"]


@pytest.fixture(scope="module")
def carded(spark, tmp_path_factory):
    """The pipeline's output root, the run and its export through the command line."""
    from pipeline import cli

    root = tmp_path_factory.mktemp("export-card")
    write_corpus(root / "raw")
    cli.pipeline_main(["--input", str(root / "raw"), "--output", str(root / "out"),
                       *(a for s in PIPELINE_SETTINGS for a in ("--set", s))])
    manifest = root / "out" / "tokenize" / "manifest.json"
    train(load("llama-tiny", overrides=[f"steps={STEPS}", "eval.generate_tokens=0"]), str(manifest), root / "run")
    proc = subprocess.run([sys.executable, "-m", "trainer.export", "--run", str(root / "run"), "--out",
                           str(root / "hf"), "--data", str(manifest)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "out", root / "run", root / "hf"


def _card(path: Path) -> tuple[dict, list[list[str]], str]:
    """The card's YAML front matter, its table rows (cells stripped, separator rows left out) and its text."""
    text = path.read_text(encoding="utf-8")
    _, front, body = text.split("---\n", 2)
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in body.splitlines()
            if line.startswith("|") and not line.startswith("|---")]
    return yaml.safe_load(front), rows, body


def test_model_card_states_the_runs_metrics(carded):
    _, run, out = carded
    front, rows, _ = _card(out / "README.md")
    assert front["library_name"] == "transformers" and "llama" in front["tags"]
    metrics = _metrics(run)
    final = [r for r in metrics if "val_loss" in r][-1]
    reported = {m["type"]: m["value"] for m in front["model-index"][0]["results"][0]["metrics"]}
    assert reported == {"loss": pytest.approx(final["val_loss"], rel=1e-9),
                        "bits_per_byte": pytest.approx(final["val_bpb"], rel=1e-9)}
    table = {r[0]: r[1] for r in rows if len(r) == 2}
    assert float(table["validation loss (nats per token)"]) == pytest.approx(final["val_loss"], abs=1e-6)
    assert float(table["validation bits per byte"]) == pytest.approx(final["val_bpb"], abs=1e-6)
    assert int(table["tokens trained"]) == metrics[-1]["tokens"]
    assert int(table["steps"]) == STEPS and table["transformers class"] == "LlamaForCausalLM"
    assert not math.isnan(float(table["validation perplexity"]))


def test_model_card_states_the_data_and_the_stages_drops(carded):
    pipeline_out, _, out = carded
    _, rows, body = _card(out / "README.md")
    raw = (pipeline_out / "tokenize" / "manifest.json").read_bytes()
    manifest = json.loads(raw)
    table = {r[0]: r[1] for r in rows if len(r) == 2}
    import hashlib

    assert table["manifest sha256"] == hashlib.sha256(raw).hexdigest()
    assert table["pipeline version"] == manifest["pipeline_version"]
    splits = {r[0]: r[1:] for r in rows if len(r) == 4 and r[0] in manifest["splits"]}
    assert splits == {name: [str(s["documents"]), str(s["tokens"]), str(s["text_bytes"])]
                      for name, s in manifest["splits"].items()}
    for stage in ("filter", "dedupe"):
        stats = json.loads((pipeline_out / stage / "stats.json").read_text())
        assert f"Stage `{stage}`: {stats['input']} documents in, {stats['kept']} kept." in body
        stated = {(r[1], r[2]): int(r[3]) for r in rows if len(r) == 4 and r[0] == stage}
        expected = {("dropped", k): v for k, v in stats["dropped"].items()}
        expected.update({("rejected", k): v for k, v in stats["rejected"].items()})
        assert stated == expected
    dedupe = json.loads((pipeline_out / "dedupe" / "stats.json").read_text())
    assert dedupe["dropped"]  # the corpus holds exact and near duplicates, so the check above compared numbers
