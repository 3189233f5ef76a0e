"""Stage ablation: does each pipeline stage make a better model? One command answers it on your corpus.

    spark-submit jobs/ablate.py --input RAW_URI --output OUT_URI [--config FILE.yaml] [--set key=value ...]

1. Clean every raw document once (`OUT/stages/clean`), then hold out a fixed fraction of them by a seeded
   hash of their id (`holdout`). The held-out documents are filtered and deduplicated among themselves and
   become the evaluation set every variant is scored on (`OUT/stages/heldout/`); they never reach a
   training variant.
2. Decontaminate: training documents that are exact or near duplicates of a held-out document are
   dropped from every variant (the dedupe index of the held-out set, built by its dedupe stage). Otherwise
   a variant that keeps more copies would be scored partly on text it has seen, which rewards *not*
   deduplicating. Turn it off with `holdout.decontaminate=false` to measure that leakage.
3. Build the variants: `raw` (clean only), `dedupe` (+ exact and near duplicate removal), `filter` (+
   language and quality filters: the full pipeline, whose filter runs before dedupe), and each configured
   variant (a base plus stage overrides). Stages run in-process in one Spark session, and a stage whose
   input and settings another variant already used is shared, not re-run (`OUT/stages/train/`,
   `OUT/stages/variants/NAME/`).
4. Tokenize every variant with one BPE, trained once on the `raw` variant's documents (the superset of
   every variant), and the held-out set with the same BPE (`OUT/tokens/`). `OUT/tokens/NAME.json` is a
   manifest whose train split is the variant's shards and whose val split is the held-out shards.
5. Train the same model (`preset`, same seeds) on each variant for the same number of optimizer steps, so
   the same number of tokens (steps x batch_size x block_size); a variant with fewer tokens repeats epochs.
   Every `train.eval.every` steps the model is evaluated on all held-out shards.
6. Write `OUT/ablation.json`, `OUT/ablation.md` (the table) and `OUT/ablation.png` (validation bits per byte
   and loss against tokens trained, one line per variant).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from pipeline import config as cfglib
from pipeline import storage
from pipeline import spark_io, stages
from pipeline.stagedir import Route
from pipeline.stages.stage import Output, Stage, document_routes
from pipeline.stages.config import PipelineConfig
from pipeline.tokenize.tokenizer import TokenizeConfig
from trainer import config as trainer_config
from trainer.config import TrainConfig

BASES = ("raw", "dedupe", "filter")
# Stage sections a variant may override; the tokenizer and shard layout are shared by construction.
VARIANT_SECTIONS = ("clean", "dedupe", "filter")
# Applied on top of the preset: a run long enough to separate the variants, evaluated along the way,
# with one checkpoint at the end and no sampling. Sized so that the whole ablation of ../shared/corpus
# fits in 20 minutes on 2 CPU cores (docs/ablation.md).
TRAIN_DEFAULTS = {
    "steps": 1000,
    "log_every": 100,
    "ckpt_every": 1000,
    "keep_checkpoints": 1,
    "eval": {"every": 250, "generate_tokens": 0},
}
# The tiny preset runs in one process here: one forward pass per step is much faster on a CPU than four.
PRESET_DEFAULTS = {"tiny": {"data": {"micro_batch_size": 16}}}
HELD_OUT_REASON = "held_out"
TRAINING_REASON = "training_document"
EXACT_REASON = "exact_duplicate_of_heldout"
NEAR_REASON = "near_duplicate_of_heldout"


@dataclass
class HoldoutConfig:
    # Fraction of cleaned documents held out for evaluation, chosen by xxhash64(seed, id).
    fraction: float = 0.01
    seed: int = 20_251_123
    # Drop training documents that duplicate a held-out one (exact or MinHash near duplicate).
    decontaminate: bool = True


@dataclass
class VariantConfig:
    name: str = ""
    # The chain it starts from: raw (clean only), dedupe or filter (the full pipeline).
    base: str = "filter"
    # Stage settings of this variant only, e.g. ["filter.min_lang_score=0.9"] (clean, filter, dedupe).
    set: list[str] = field(default_factory=list)


@dataclass
class AblationConfig(PipelineConfig):
    """The pipeline's sections (clean, filter, dedupe, tokenize, audit: the base of every variant) and the
    ablation's own settings. `train` starts from `preset` plus TRAIN_DEFAULTS (see `load_config`)."""

    # A vocabulary a tiny model can afford; 4 MB shards so a variant spans a few of them.
    tokenize: TokenizeConfig = field(default_factory=lambda: TokenizeConfig(vocab_size=8192, shard_bytes=4_000_000))
    holdout: HoldoutConfig = field(default_factory=HoldoutConfig)
    variants: list[VariantConfig] = field(default_factory=list)
    preset: str = "tiny"
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        super().__post_init__()
        cfglib.check_ranges(self, {"holdout.fraction": "(0, 1)"})  # no held-out set, or nothing left to train on

    def pipeline(self) -> PipelineConfig:
        return PipelineConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(PipelineConfig)})


def load_config(path: str | None = None, overrides: list[str] = ()) -> AblationConfig:
    """Defaults, then the YAML file, then `--set`; `train` is based on the preset chosen by either."""
    chosen = {**(cfglib.read_yaml(path) if path else {}), **cfglib.parse_overrides(overrides)}
    preset = chosen.get("preset", AblationConfig.preset)
    train = cfglib.merge(cfglib.merge(trainer_config.load(preset), TRAIN_DEFAULTS), PRESET_DEFAULTS.get(preset, {}))
    base = AblationConfig(preset=preset, train=train)
    cfg = cfglib.load(AblationConfig, path, overrides, base=base)
    if cfg.decontaminate.benchmarks:
        raise cfglib.ConfigError("decontaminate.benchmarks: the ablation decontaminates against its own held-out "
                                 "set (holdout.decontaminate); run benchmark decontamination on the corpus first")
    names = set()
    for v in cfg.variants:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", v.name) or v.name in BASES or v.name in names:
            raise cfglib.ConfigError(f"variant name {v.name!r}: needs letters, digits, _ . -, unique, not {BASES}")
        if v.base not in BASES:
            raise cfglib.ConfigError(f"variant {v.name}: base {v.base!r} is not one of {', '.join(BASES)}")
        sections = {key.split(".", 1)[0] for key in cfglib.parse_overrides(v.set)}
        if sections - set(VARIANT_SECTIONS):
            raise cfglib.ConfigError(f"variant {v.name}: may set only {', '.join(VARIANT_SECTIONS)} keys "
                                     f"(the tokenizer, shards and model are shared), not {sorted(sections)}")
        cfglib.merge(cfg.pipeline(), cfglib.parse_overrides(v.set), prefix=f"variants.{v.name}.")  # checks keys
        names.add(v.name)
    return cfg


# ---------------------------------------------------------------------------------------------- stages


class HoldOut(Stage):
    """One side ('train' or 'heldout') of the hold-out split of a committed stage, committed as a stage:
    the other side's documents count as dropped, so its stats reconcile like any stage's."""

    name = "holdout"

    def __init__(self, spark, input_uri: str, output_uri: str, cfg: HoldoutConfig, side: str):
        super().__init__(spark, input_uri, output_uri, cfg)
        self.side = side

    def write(self) -> Output:
        from pyspark.sql import functions as F

        cfg, docs = self.cfg, spark_io.read_stage(self.spark, self.input_uri)
        held = F.pmod(F.xxhash64(F.lit(cfg.seed), "id"), F.lit(1_000_000)) < F.lit(int(round(cfg.fraction * 1_000_000)))
        keep = held if self.side == "heldout" else ~held
        marked = docs.select(
            *docs.columns,
            F.when(keep, "kept").otherwise("dropped").alias("_status"),
            F.when(keep, F.lit(None)).otherwise(TRAINING_REASON if self.side == "heldout" else HELD_OUT_REASON)
            .alias("_reason"),
        )
        return Output(spark_io.write_parts(marked, self.output_uri, {"kept": Route("data", docs.columns)}, self.attempt))

    def finish(self, output: Output) -> dict:
        return {"fraction": self.cfg.fraction, "seed": self.cfg.seed}


class AgainstHeldOut(Stage):
    """Drop documents that are exact or near duplicates of a document of the dedupe index at `index_uri`
    (the held-out set), by the index's own rules (`index_spark.history_drops`): same normalised-text digest,
    or a shared LSH bucket and a signature Jaccard estimate >= dedupe.threshold. Documents are not compared
    with each other."""

    name = "decontaminate"

    def __init__(self, spark, input_uri: str, output_uri: str, cfg: PipelineConfig, index_uri: str):
        super().__init__(spark, input_uri, output_uri, cfg)
        self.index_uri = index_uri

    def write(self) -> Output:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        from pipeline.dedup import index_spark
        from pipeline.dedup.dedupe_spark import SIGNED_FEATURES, features_fn, signing_columns

        cfg = self.cfg
        docs = spark_io.read_stage(self.spark, self.input_uri)
        self.history = index_spark.read_history(self.spark, index_spark.open_index(self.index_uri, cfg.dedupe))
        features = signing_columns(docs).mapInArrow(features_fn(cfg.dedupe, signature=True), SIGNED_FEATURES)
        features = features.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            if self.history is None:
                drops = self.spark.createDataFrame([], "id string, _reason string")
            else:
                past = self.history.select(F.col("id").alias("history_id"), "exact", "bands", "signature",
                                           F.lit(None).cast("boolean").alias("in_batch"),
                                           F.lit(None).cast("string").alias("history_key"))
                drops, _ = index_spark.history_drops(features, features, past, cfg.dedupe,
                                                     reasons=(EXACT_REASON, NEAR_REASON))
            marked = (docs.join(drops, "id", "left")
                      .select(*docs.columns, F.when(F.col("_reason").isNull(), "kept").otherwise("dropped")
                              .alias("_status"), "_reason")
                      .repartition(docs.rdd.getNumPartitions(), "id").sortWithinPartitions("id"))
            return Output(spark_io.write_parts(marked, self.output_uri, document_routes(docs.columns, cfg), self.attempt))
        finally:
            features.unpersist()

    def finish(self, output: Output) -> dict:
        return {"index_documents": 0 if self.history is None else self.history.count()}


def _step(stage: str, cfg: PipelineConfig) -> tuple[str, str]:
    """A stage and the settings it runs with (the split and decontamination use the shared ones)."""
    section = getattr(cfg, stage, None)
    return stage, json.dumps(dataclasses.asdict(section), sort_keys=True) if section is not None else ""


@dataclass
class Variant:
    name: str
    base: str
    set: list[str]
    config: PipelineConfig
    stages: dict[str, dict] = field(default_factory=dict)  # stage -> stats, in chain order
    stage_uris: dict[str, str] = field(default_factory=dict)

    @property
    def documents(self) -> str:
        """URI of the stage whose documents this variant trains on."""
        return list(self.stage_uris.values())[-1]


class Builder:
    """Runs each variant's chain of stages, sharing a stage's output between variants whose chains agree up
    to it (same stages, same settings), so `raw`, `dedupe` and `filter` build on one another."""

    def __init__(self, spark, cfg: AblationConfig, input_uri: str, output_uri: str):

        self.spark, self.cfg, self.input, self.root = spark, cfg, input_uri, storage.join(output_uri, "stages")
        self.index = storage.join(self.root, "heldout", "index")
        self.built: dict[tuple, tuple[str, dict]] = {}
        self.runners: dict[str, Callable[[str, str, PipelineConfig], dict]] = {
            "clean": lambda inp, out, c: stages.run("clean", spark, self.input, out, c),
            "holdout": lambda inp, out, c: HoldOut(spark, inp, out, cfg.holdout, "train").run(),
            "decontaminate": lambda inp, out, c: AgainstHeldOut(spark, inp, out, cfg.pipeline(), self.index).run(),
            "dedupe": lambda inp, out, c: stages.run("dedupe", spark, inp, out, c),
            "filter": lambda inp, out, c: stages.run("filter", spark, inp, out, c),
        }

    def chain(self, base: str) -> list[str]:
        """The stages of a base; `filter`'s are the pipeline's own between clean and tokenize, in its order."""
        steps = ["clean", "holdout"] + (["decontaminate"] if self.cfg.holdout.decontaminate else [])
        between = [e.name for e in stages.enabled(self.cfg.pipeline())][1:-1]
        return steps + {"raw": [], "dedupe": ["dedupe"], "filter": between}[base]

    def heldout(self) -> dict[str, dict]:
        """The evaluation set: the held-out side of the split, filtered, then deduplicated among itself
        into a fresh dedupe index (which decontaminates the training side)."""

        base, root = self.cfg.pipeline(), storage.join(self.root, "heldout")
        clean_uri, _ = self.stage("clean", (_step("clean", base),), base, storage.join(self.root, "clean"))
        stats = {"holdout": HoldOut(self.spark, clean_uri, storage.join(root, "holdout"), self.cfg.holdout, "heldout").run()}
        stats["filter"] = stages.run("filter", self.spark, storage.join(root, "holdout"), storage.join(root, "filter"), base)
        storage.delete(self.index)
        indexed = replace(base, dedupe=replace(base.dedupe, index=self.index))
        stats["dedupe"] = stages.run("dedupe", self.spark, storage.join(root, "filter"), storage.join(root, "dedupe"), indexed)
        return stats

    def stage(self, stage: str, key: tuple, cfg: PipelineConfig, out: str, inp: str = "") -> tuple[str, dict]:
        if key not in self.built:
            print(f"[ablate] {stage}: {storage.display(inp or self.input)} -> {storage.display(out)}", flush=True)
            self.built[key] = (out, self.runners[stage](inp, out, cfg))
        return self.built[key]

    def variant(self, name: str, base: str, overrides: list[str]) -> Variant:
        default = self.cfg.pipeline()
        cfg = cfglib.merge(default, cfglib.parse_overrides(overrides))
        variant = Variant(name, base, list(overrides), cfg)
        key, inp, shared, data_stages = (), "", True, []
        for stage in self.chain(base):
            shared = shared and _step(stage, cfg) == _step(stage, default)
            key += (_step(stage, cfg),)
            if stage in ("dedupe", "filter"):
                data_stages.append(stage)
            if stage == "clean" and shared:
                out = storage.join(self.root, "clean")
            else:
                # train/dedupe (dedupe of the raw documents) and train/filter-dedupe (of the filtered) differ
                where = "-".join(data_stages) if stage in data_stages else stage
                out = storage.join(self.root, *(("train",) if shared else ("variants", name)), where)
            inp, stats = self.stage(stage, key, cfg, out, inp)
            variant.stages[stage], variant.stage_uris[stage] = stats, inp
        return variant


# ---------------------------------------------------------------------------------------------- tokens


def tokenize_all(spark, builder: Builder, variants: list[Variant], heldout_uri: str, output_uri: str) -> dict:
    """Tokenize every variant (train split only) and the held-out set (val only) with one BPE, trained on
    the first variant's documents (`raw`); write OUT/tokens/NAME.json manifests joining the two. Returns
    {name: manifest URI}."""

    root = storage.join(output_uri, "tokens")
    base = builder.cfg.pipeline()
    first = variants[0]
    print(f"[ablate] tokenize {first.name} (training the shared tokenizer)", flush=True)
    first.stages["tokenize"] = stages.run("tokenize", spark, first.documents, storage.join(root, first.name),
                                            replace(base, tokenize=replace(base.tokenize, val_fraction=0.0)))
    shared = replace(base.tokenize, tokenizer=storage.join(root, first.name, "tokenizer.json"))
    stages.run("tokenize", spark, heldout_uri, storage.join(root, "heldout"), replace(base, tokenize=replace(shared, val_fraction=1.0)))
    for v in variants[1:]:
        print(f"[ablate] tokenize {v.name}", flush=True)
        v.stages["tokenize"] = stages.run("tokenize", spark, v.documents, storage.join(root, v.name),
                                            replace(base, tokenize=replace(shared, val_fraction=0.0)))
    return {v.name: write_manifest(root, v.name, first.name) for v in variants}


def write_manifest(root: str, name: str, tokenizer_of: str) -> str:
    """OUT/tokens/NAME.json: the variant's train shards and the held-out val shards, paths relative to it."""
    from pipeline.tokenize.shards import build_manifest

    train, val = (json.loads(storage.read_bytes(storage.join(root, d, "manifest.json"))) for d in (name, "heldout"))
    if train["tokenizer"]["sha256"] != val["tokenizer"]["sha256"]:
        raise RuntimeError(f"{name}: its shards and the held-out shards use different tokenizers")
    manifest = build_manifest(
        tokenizer={**train["tokenizer"], "path": f"{tokenizer_of}/tokenizer.json"},
        dtype=train["dtype"],
        sample_tokens=train["sample_tokens"],
        seed=train["seed"],
        splits={split: [{**s, "url": f"{d}/{s['url']}"} for s in m["splits"][split]["shards"]]
                for split, d, m in (("train", name, train), ("val", "heldout", val))},
        config=train["config"],
    )
    uri = storage.join(root, f"{name}.json")
    storage.write_bytes(uri, json.dumps(manifest, indent=1).encode())
    return uri


# ---------------------------------------------------------------------------------------------- training


def train_variant(cfg: TrainConfig, manifest_uri: str, run_dir: Path) -> list[dict]:
    """A fresh run (never a resume of an earlier ablation's) through the trainer's public entry point."""
    from trainer.plot import read_metrics
    from trainer.train import train

    shutil.rmtree(run_dir, ignore_errors=True)
    train(cfg, manifest_uri, run_dir)
    return read_metrics(run_dir / "metrics.jsonl")


def _local_dir(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(storage.resolve(uri)[1]) if parsed.scheme in ("", "file") or len(parsed.scheme) == 1 else None


# ---------------------------------------------------------------------------------------------- results


def summarize(variant: Variant, manifest_uri: str, metrics: list[dict], cfg: TrainConfig) -> dict:
    from pipeline.tokenize.shards import read_manifest

    manifest = read_manifest(manifest_uri)
    evals = [{k: r[k] for k in ("step", "tokens", "val_loss", "val_bpb")} for r in metrics if "val_loss" in r]
    available = manifest.splits["train"].tokens
    trained = metrics[-1]["tokens"]
    return {
        "name": variant.name,
        "base": variant.base,
        "set": variant.set,
        "stages": {s: {"input": st["input"], "kept": st["kept"],
                       "dropped": sum(st["dropped"].values()) + sum(st["rejected"].values()),
                       "reasons": {**st["dropped"], **st["rejected"]}}
                   for s, st in variant.stages.items()},
        "train_documents": manifest.splits["train"].documents,
        "train_tokens_available": available,
        "tokens_trained": trained,
        "tokens_per_step": cfg.data.batch_size * cfg.model.block_size,
        "epochs": trained / available,
        "final_val_loss": evals[-1]["val_loss"],
        "final_val_bpb": evals[-1]["val_bpb"],
        "evaluations": evals,
        "manifest": manifest_uri,
    }


TABLE_STAGES = ("clean", "holdout", "decontaminate", "filter", "dedupe")


def markdown(result: dict) -> str:
    rows = result["variants"]
    stages = [s for s in TABLE_STAGES if any(s in r["stages"] for r in rows)]
    header = (["variant"] + [f"{s} kept / dropped" for s in stages]
              + ["train tokens available", "tokens trained", "epochs", "final val loss", "val bits per byte"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["name"] + (f" ({r['base']} + {', '.join(r['set'])})" if r["set"] else "")]
        cells += [f"{r['stages'][s]['kept']:,} / {r['stages'][s]['dropped']:,}" if s in r["stages"] else "-" for s in stages]
        cells += [f"{r['train_tokens_available']:,}", f"{r['tokens_trained']:,}", f"{r['epochs']:.2f}",
                  f"{r['final_val_loss']:.4f}", f"{r['final_val_bpb']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    h = result["heldout"]
    return "\n".join([
        "# Stage ablation",
        "",
        f"Input `{result['input']}`; {result['train']['preset']} preset, {result['train']['steps']} steps of "
        f"{result['train']['tokens_per_step']:,} tokens, seeds {result['train']['seeds']}.",
        f"Evaluation set: {h['documents']:,} held-out documents ({h['fraction']:.1%} by id hash, then filtered "
        f"and deduplicated), {h['tokens']:,} tokens, {h['text_bytes']:,} bytes of text.",
        "",
        *lines,
        "",
        "kept / dropped: documents out of each stage and removed by it (rejected input counts as dropped). "
        "A variant with fewer tokens than it trains on repeats epochs.",
        "",
    ])


def plot(result: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((axes[0], "val_bpb", "validation bits per byte"), (axes[1], "val_loss", "validation loss (nats/token)")):
        for r in result["variants"]:
            ax.plot([e["tokens"] for e in r["evaluations"]], [e[key] for e in r["evaluations"]], marker="o",
                    markersize=3, label=r["name"])
        ax.set_xlabel("tokens trained")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    fig.suptitle("Stage ablation: the same model trained on each variant of the data")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- driver


def run(spark, input_uri: str, output_uri: str, cfg: AblationConfig) -> dict:
    start = time.time()
    builder = Builder(spark, cfg, input_uri, output_uri)
    heldout = builder.heldout()
    variants = [builder.variant(name, name, []) for name in BASES]
    variants += [builder.variant(v.name, v.base, v.set) for v in cfg.variants]
    heldout_docs = storage.join(builder.root, "heldout", "dedupe")
    manifests = tokenize_all(spark, builder, variants, heldout_docs, output_uri)
    pipeline_seconds = time.time() - start

    local = _local_dir(output_uri)
    runs = local / "runs" if local else Path(tempfile.mkdtemp(prefix="corpusforge-ablate-"))
    summaries = []
    try:
        for v in variants:
            print(f"[ablate] train {v.name} on {storage.display(manifests[v.name])}", flush=True)
            metrics = train_variant(cfg.train, manifests[v.name], runs / v.name)
            summaries.append(summarize(v, manifests[v.name], metrics, cfg.train))
    finally:
        if not local:
            shutil.rmtree(runs, ignore_errors=True)

    val = json.loads(storage.read_bytes(storage.join(output_uri, "tokens", "heldout", "manifest.json")))["splits"]["val"]
    result = {
        "input": storage.display(input_uri),
        "heldout": {"fraction": cfg.holdout.fraction, "documents": val["documents"], "tokens": val["tokens"],
                    "text_bytes": val["text_bytes"], "stages": heldout},
        "train": {"preset": cfg.preset, "steps": cfg.train.steps,
                  "tokens_per_step": cfg.train.data.batch_size * cfg.train.model.block_size,
                  "seeds": {"model": cfg.train.seed, "data": cfg.train.data.seed}},
        "variants": summaries,
        "seconds": {"pipeline": round(pipeline_seconds, 1), "total": round(time.time() - start, 1)},
        "config": cfglib.to_dict(cfg),
    }
    storage.write_bytes(storage.join(output_uri, "ablation.json"), json.dumps(result, indent=1).encode())
    storage.write_bytes(storage.join(output_uri, "ablation.md"), markdown(result).encode())
    storage.write_bytes(storage.join(output_uri, "ablation.png"), plot(result))
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        prog="spark-submit jobs/ablate.py",
        description=__doc__.split("\n\n", 1)[0] + " Builds variants of the corpus (raw, +dedupe, +filter, and "
        "configured ones), trains the same model on each for the same number of tokens, and scores all on "
        "one held-out set: OUTPUT/ablation.{json,md,png}.",
        epilog="settings: the pipeline's sections (clean:, dedupe:, filter:, tokenize:, audit:; see "
        "`spark-submit jobs/pipeline.py --help`) as the base of every variant, plus holdout.fraction, "
        "holdout.seed, holdout.decontaminate, preset, train.* (trainer/config.py keys, on top of the preset) "
        "and variants: [{name, base: raw|dedupe|filter, set: [section.key=value, ...]}]. Spark runs "
        "as spark-submit sets it (--master); training uses one process, through the trainer's own entry point.",
    )
    p.add_argument("--input", required=True, help="raw input URI (directory or file; local, file://, s3://, hdfs://)")
    p.add_argument("--output", required=True, help="output URI: stages/, tokens/, runs/ and ablation.{json,md,png}")
    p.add_argument("--config", help="YAML file (see configs/ablation.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set train.steps=400 (repeatable)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config, args.set)
    except cfglib.ConfigError as e:
        sys.exit(f"config error: {e}")
    from pipeline.cli import spark_session

    result = run(spark_session("corpusforge-ablate"), args.input, args.output, cfg)
    print(markdown(result), flush=True)
    print(f"[ablate] {storage.display(storage.join(args.output, 'ablation.md'))} "
          f"({result['seconds']['total'] / 60:.1f} min)", flush=True)
    return result
