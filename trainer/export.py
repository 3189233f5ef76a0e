"""Export a run's checkpoint as a stock Hugging Face model directory with a model card.

`python -m trainer.export --run OUT [--step N] --out DIR` writes config.json (GPT2LMHeadModel for
model.arch=gpt2, LlamaForCausalLM for llama), model.safetensors, the manifest's tokenizer as a
PreTrainedTokenizerFast, generation_config.json and README.md, into DIR/../.DIR.tmp-PID, renamed to DIR
once complete, so `AutoModelForCausalLM.from_pretrained(DIR)` loads it with no code from this project.

The embedding keeps the model's padded vocabulary (a multiple of 64), so logits over the tokenizer's ids
and the loss over them are exactly ours; generation_config.json suppresses the padding ids, which no
tokenizer id maps to. The card's figures come from what the run and its data recorded: the checkpoint's
config, metrics.jsonl, the manifest, and the stats.json of the filter and dedupe stages that sit beside the
manifest's tokenize stage (OUT/tokenize next to OUT/filter and OUT/dedupe), where they exist.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from pipeline import config as cfglib
from pipeline import storage
from pipeline.tokenize.shards import Manifest, read_manifest
from trainer import checkpoint
from trainer.config import ModelConfig, TrainConfig
from trainer.model import GPT, NORM_EPS, padded_vocab, swiglu_hidden

HF_ARCH = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}


class ExportError(RuntimeError):
    """A run that cannot be exported as asked; main() reports it in one line."""


def find_checkpoint(run: Path, step: int | None) -> Path:
    directory = run / "checkpoints"
    if step is None:
        found = checkpoint.latest(directory)
        if found is None:
            raise ExportError(f"{directory}: no checkpoint to export")
        return found
    path = checkpoint.path_for(directory, step)
    if not path.exists():
        steps = [int(p.stem.split("-")[1]) for p in checkpoint.list_checkpoints(directory)]
        raise ExportError(f"{path}: no checkpoint of step {step}; the run has steps {steps or 'none'}")
    return path


def run_config(state: dict[str, Any]) -> TrainConfig:
    """The run's TrainConfig as its checkpoint recorded it (keys this version does not know are refused)."""
    return cfglib.from_dict(TrainConfig, state["config"])


def manifest_uris(cfg: TrainConfig, data: list[str]) -> list[str]:
    """The manifests the run trained on: --data when given, else the sources its config recorded."""
    uris = data or [s.manifest for s in getattr(cfg.data, "sources", []) if s.manifest]
    if not uris:
        raise ExportError("the run's config names no manifest; pass --data MANIFEST (the one it trained on)")
    return uris


def source_label(uri: str) -> str:
    """A manifest's directory, or the one above when that is the stage's own tokenize/ (OUT/tokenize -> OUT)."""
    parts = [p for p in uri.split("://", 1)[-1].split("/")[:-1] if p and p != "."]
    if len(parts) > 1 and parts[-1] == "tokenize":
        parts = parts[:-1]
    return parts[-1] if parts else "data"


# -- weights ---------------------------------------------------------------------------------------------

def hf_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """Our weights under Hugging Face's names and layouts (GPT-2's Conv1D stores weights as in x out).
    A tied output projection is left out: transformers ties it to the embedding when it loads."""
    cfg = model.cfg
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    C = cfg.n_embd
    out: dict[str, torch.Tensor] = {}
    if cfg.arch == "gpt2":
        def linear(dst: str, src: str, width: int) -> None:
            out[f"{dst}.weight"] = sd[f"{src}.weight"].t().contiguous()
            out[f"{dst}.bias"] = sd.get(f"{src}.bias", torch.zeros(width))

        def layernorm(dst: str, src: str) -> None:
            out[f"{dst}.weight"] = sd[f"{src}.weight"]
            out[f"{dst}.bias"] = sd.get(f"{src}.bias", torch.zeros(C))

        out["transformer.wte.weight"] = sd["wte.weight"]
        out["transformer.wpe.weight"] = sd["wpe.weight"]
        for i in range(cfg.n_layer):
            h, b = f"transformer.h.{i}", f"blocks.{i}"
            layernorm(f"{h}.ln_1", f"{b}.ln1")
            linear(f"{h}.attn.c_attn", f"{b}.attn.qkv", 3 * C)
            linear(f"{h}.attn.c_proj", f"{b}.attn.proj", C)
            layernorm(f"{h}.ln_2", f"{b}.ln2")
            linear(f"{h}.mlp.c_fc", f"{b}.mlp.fc", 4 * C)
            linear(f"{h}.mlp.c_proj", f"{b}.mlp.proj", C)
        layernorm("transformer.ln_f", "ln_f")
    else:
        out["model.embed_tokens.weight"] = sd["wte.weight"]
        for i in range(cfg.n_layer):
            h, b = f"model.layers.{i}", f"blocks.{i}"
            out[f"{h}.input_layernorm.weight"] = sd[f"{b}.ln1.weight"]
            q, k, v = sd[f"{b}.attn.qkv.weight"].split(C, dim=0)
            out[f"{h}.self_attn.q_proj.weight"] = q.contiguous()
            out[f"{h}.self_attn.k_proj.weight"] = k.contiguous()
            out[f"{h}.self_attn.v_proj.weight"] = v.contiguous()
            out[f"{h}.self_attn.o_proj.weight"] = sd[f"{b}.attn.proj.weight"]
            out[f"{h}.post_attention_layernorm.weight"] = sd[f"{b}.ln2.weight"]
            out[f"{h}.mlp.gate_proj.weight"] = sd[f"{b}.mlp.gate.weight"]
            out[f"{h}.mlp.up_proj.weight"] = sd[f"{b}.mlp.up.weight"]
            out[f"{h}.mlp.down_proj.weight"] = sd[f"{b}.mlp.proj.weight"]
        out["model.norm.weight"] = sd["ln_f.weight"]
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = sd["lm_head.weight"]
    return out


def hf_config(cfg: ModelConfig, vocab_size: int, eos_id: int):
    """The stock transformers config that computes what our model computes."""
    common = dict(vocab_size=vocab_size, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
                  tie_word_embeddings=cfg.tie_embeddings, architectures=[HF_ARCH[cfg.arch]], dtype="float32")
    if cfg.arch == "gpt2":
        from transformers import GPT2Config

        return GPT2Config(n_positions=cfg.block_size, n_embd=cfg.n_embd, n_layer=cfg.n_layer, n_head=cfg.n_head,
                          activation_function="gelu_new", layer_norm_epsilon=NORM_EPS, resid_pdrop=cfg.dropout,
                          embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout, scale_attn_weights=True, **common)
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=cfg.n_embd, intermediate_size=swiglu_hidden(cfg.n_embd),
                       num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head,
                       num_key_value_heads=cfg.n_head, head_dim=cfg.n_embd // cfg.n_head, hidden_act="silu",
                       max_position_embeddings=cfg.block_size, rms_norm_eps=NORM_EPS,
                       rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
                       attention_bias=False, mlp_bias=False, attention_dropout=cfg.dropout, **common)


def hf_tokenizer(tokenizer_json: str, eos_id: int, block_size: int):
    """The manifest's tokenizer as a PreTrainedTokenizerFast: EOS doubles as BOS and padding (documents are
    separated by EOS only), and every other special token of tokenizer.json stays special."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_str(tokenizer_json)
    eos = tok.id_to_token(eos_id)
    extra = [t["content"] for t in json.loads(tokenizer_json).get("added_tokens", [])
             if t.get("special") and t["content"] != eos]
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, bos_token=eos, pad_token=eos,
                                   extra_special_tokens=extra, model_max_length=block_size)


def hf_generation_config(cfg: TrainConfig, eos_id: int):
    """Sampling as the trainer's own sample (top-k 50, temperature 1), never a padding id."""
    from transformers import GenerationConfig

    return GenerationConfig(bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id, do_sample=True,
                            top_k=50, temperature=1.0, max_length=cfg.model.block_size,
                            suppress_tokens=list(range(cfg.model.vocab_size, padded_vocab(cfg.model.vocab_size))))


# -- model card ------------------------------------------------------------------------------------------

def read_metrics(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stage_stats(manifest_uri: str) -> dict[str, dict[str, Any]]:
    """stats.json of the stages beside the manifest's tokenize stage (OUT/<stage>/stats.json), by stage."""
    tokenize_dir = manifest_uri.rsplit("/", 1)[0] if "/" in manifest_uri else "."
    root = tokenize_dir.rsplit("/", 1)[0] if "/" in tokenize_dir else "."
    found = {}
    for stage in ("clean", "filter", "dedupe", "tokenize"):
        uri = storage.join(root, stage, "stats.json")
        if storage.exists(uri):
            found[stage] = json.loads(storage.read_bytes(uri))
    return found


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    def cell(v: Any) -> str:
        return f"{v:.6f}" if isinstance(v, float) else str(v)

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows), ""]


def model_card(name: str, model: GPT, cfg: TrainConfig, step: int, metrics: list[dict[str, Any]],
               sources: list[tuple[str, str, bytes]]) -> str:
    """README.md in Hugging Face's model-card format. `sources`: (name, manifest uri, manifest bytes)."""
    import yaml

    m = cfg.model
    rows = [r for r in metrics if r.get("step", 0) <= step]
    last = rows[-1] if rows else {}
    evals = [r for r in rows if "val_loss" in r]
    ev = evals[-1] if evals else None
    tokens = last.get("tokens", step * cfg.data.batch_size * m.block_size)

    front: dict[str, Any] = {"library_name": "transformers", "pipeline_tag": "text-generation",
                             "tags": ["corpusforge", "causal-lm", m.arch, "text-generation"]}
    if ev is not None:
        front["model-index"] = [{"name": name, "results": [{
            "task": {"type": "text-generation", "name": "Causal language modeling"},
            "dataset": {"type": "corpusforge", "name": ", ".join(s for s, _, _ in sources), "split": "val"},
            "metrics": [{"type": "loss", "name": "validation loss (nats per token)", "value": ev["val_loss"]},
                        {"type": "bits_per_byte", "name": "validation bits per byte", "value": ev["val_bpb"]}]}]}]

    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "", f"# {name}", "",
             f"A {m.arch} decoder trained with corpusforge on token shards its pipeline wrote, exported as "
             f"`{HF_ARCH[m.arch]}` (stock `transformers`, no custom code).", "", "## Model", ""]
    lines += _table(("figure", "value"), [
        ("architecture", m.arch), ("transformers class", HF_ARCH[m.arch]), ("parameters", model.num_params()),
        ("layers", m.n_layer), ("heads", m.n_head), ("width", m.n_embd), ("context", m.block_size),
        ("tokenizer vocabulary", m.vocab_size), ("embedding rows (padded)", model.vocab_size),
        ("tied embeddings", str(m.tie_embeddings).lower())])
    lines += ["## Training", ""]
    lines += _table(("figure", "value"), [
        ("steps", step), ("tokens trained", tokens), ("batch (windows of context + 1 tokens)", cfg.data.batch_size),
        ("peak learning rate", cfg.optim.lr), ("schedule", cfg.optim.decay)])
    if isinstance(last.get("tokens_by_source"), dict) and len(sources) > 1:
        lines += ["Tokens trained by source:", ""]
        lines += _table(("source", "tokens"), sorted(last["tokens_by_source"].items()))

    lines += ["## Data", ""]
    for source, uri, raw in sources:
        data = json.loads(raw)
        lines += [f"### Source `{source}`", ""]
        lines += _table(("figure", "value"), [
            ("manifest", f"`{uri}`"), ("manifest sha256", hashlib.sha256(raw).hexdigest()),
            ("pipeline version", data.get("pipeline_version", "")),
            ("tokenizer sha256", data["tokenizer"]["sha256"])])
        splits = data["splits"]
        lines += _table(("split", "documents", "tokens", "text bytes"),
                        [(split, s["documents"], s["tokens"], s["text_bytes"]) for split, s in sorted(splits.items())])
        by_source = [(split, name, v) for split, s in sorted(splits.items())
                     for name, v in sorted((s.get("sources") or {}).items())]
        if by_source:
            lines += _table(("split", "source", "documents", "tokens"),
                            [(split, name, v.get("documents", ""), v.get("tokens", "")) for split, name, v in by_source])
        by_lang = [(split, lang, v) for split, s in sorted(splits.items())
                   for lang, v in sorted((s.get("languages") or {}).items())]
        if by_lang:
            lines += _table(("split", "language", "documents", "tokens"),
                            [(split, lang, v.get("documents", "") if isinstance(v, dict) else v,
                              v.get("tokens", "") if isinstance(v, dict) else "") for split, lang, v in by_lang])
        stats = stage_stats(uri)
        for stage in ("clean", "filter", "dedupe"):
            if stage not in stats:
                continue
            st = stats[stage]
            lines += [f"Stage `{stage}`: {st['input']} documents in, {st['kept']} kept.", ""]
            reasons = [("dropped", r, n) for r, n in sorted(st.get("dropped", {}).items())]
            reasons += [("rejected", r, n) for r, n in sorted(st.get("rejected", {}).items())]
            if reasons:
                lines += _table(("stage", "outcome", "reason", "documents"), [(stage, *r) for r in reasons])
            if stage == "filter" and isinstance(st.get("languages"), dict):
                kept = {lang: (v.get("kept") if isinstance(v, dict) else v) for lang, v in st["languages"].items()}
                lines += _table(("filter", "language", "kept documents"),
                                [("filter", lang, n) for lang, n in sorted(kept.items()) if n is not None])

    lines += ["## Evaluation", ""]
    if ev is None:
        lines += ["The run logged no validation loss up to this step.", ""]
    else:
        lines += [f"On the validation split at step {ev['step']}, over {ev.get('val_tokens', '')} target tokens "
                  "(bits per byte divide the summed loss by the documents' UTF-8 bytes):", ""]
        lines += _table(("figure", "value"), [("validation loss (nats per token)", ev["val_loss"]),
                                              ("validation perplexity", ev.get("val_ppl", "")),
                                              ("validation bits per byte", ev["val_bpb"])])
        for key, what in (("val_bpb_by_source", "source"), ("val_bpb_by_lang", "language")):
            if isinstance(ev.get(key), dict) and ev[key]:
                lines += _table((what, "validation bits per byte"), sorted(ev[key].items()))
    lines += ["## Use", "", "```python", "from transformers import pipeline",
              f'generate = pipeline("text-generation", model="{name}")',
              'print(generate("The", max_new_tokens=32)[0]["generated_text"])', "```", ""]
    return "\n".join(lines)


# -- the export ------------------------------------------------------------------------------------------

def export(run: Path, out: Path, step: int | None = None, data: list[str] | None = None) -> Path:
    """Write the export of `run` (its checkpoint of `step`, else the newest) to `out`, atomically."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise ExportError("the export needs transformers and safetensors: pip install -e '.[export]'") from None
    path = find_checkpoint(run, step)
    state = checkpoint.load(path)
    cfg = run_config(state)
    model = GPT(cfg.model)
    model.load_state_dict(state["model"])
    model.eval()
    uris = manifest_uris(cfg, list(data or []))
    names = [s.name for s in getattr(cfg.data, "sources", [])] if not data else []
    names = names if len(names) == len(uris) and all(names) else [source_label(u) for u in uris]
    raws = [storage.read_bytes(u) for u in uris]
    manifest: Manifest = read_manifest(uris[0])
    tokenizer_json = storage.read_bytes(manifest.resolve(manifest.tokenizer["path"])).decode("utf-8")
    if manifest.vocab_size > cfg.model.vocab_size:
        raise ExportError(f"{uris[0]}: its tokenizer has {manifest.vocab_size} ids, the model {cfg.model.vocab_size}; "
                          "pass the manifest the run trained on with --data")

    out = out.resolve()
    if out.exists() and not (out / "config.json").exists():
        raise ExportError(f"{out} exists and holds no export; choose another --out or remove it")
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_file(hf_state_dict(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        hf_config(cfg.model, model.vocab_size, manifest.eos_id).save_pretrained(tmp)
        hf_generation_config(cfg, manifest.eos_id).save_pretrained(tmp)
        hf_tokenizer(tokenizer_json, manifest.eos_id, cfg.model.block_size).save_pretrained(tmp)
        # The class name transformers 4 and 5 both resolve (5 alone knows the name it writes, TokenizersBackend).
        tok_config = json.loads((tmp / "tokenizer_config.json").read_text())
        tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
        (tmp / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
        card = model_card(out.name, model, cfg, state["step"], read_metrics(run), list(zip(names, uris, raws)))
        (tmp / "README.md").write_text(card, encoding="utf-8")
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main(argv: list[str] | None = None) -> Path | None:
    p = argparse.ArgumentParser(prog="python -m trainer.export", description=(
        "Export a training run as a Hugging Face model directory (config.json, model.safetensors, tokenizer, "
        "generation_config.json, README.md model card) that stock transformers, vLLM and TGI load."))
    p.add_argument("--run", required=True, type=Path, help="the run's --out directory (holds checkpoints/)")
    p.add_argument("--step", type=int, help="the checkpoint's step (default: the newest)")
    p.add_argument("--out", required=True, type=Path, help="the export directory (replaced if it holds an export)")
    p.add_argument("--data", action="append", default=[],
                   help="the manifest.json the run trained on (repeatable; default: the sources its config records)")
    args = p.parse_args(argv)
    try:
        out = export(args.run, args.out, args.step, args.data)
    except (ExportError, cfglib.ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"exported {args.run} to {out}", flush=True)
    return out


if __name__ == "__main__":
    main()
