"""spark-submit jobs/train_quality.py --output DIR (--labelled URI | --positive URI --negative URI) [--set key=value ...]

Train a fastText quality classifier for `filter.quality.model` from labelled documents, in one of two forms:
  --labelled URI                     JSONL (plain, .gz, .zst) or Parquet records with a text and a label field
  --positive URI --negative URI      one source per class: a committed stage directory (its data/, or the
                                     sub-directory --positive-subdir / --negative-subdir names, e.g. dropped)
                                     or raw document files as `clean` reads them
Each label contributes at most max_per_label texts, chosen by a seeded hash of the text on the executors;
the same hash holds out holdout_fraction of them. Training uses one thread, so the same input, config and
seed give the same model. Writes DIR/model.bin (and model.ftz with quantize=true) and DIR/report.json
(examples per label, held-out precision / recall per label). Then run the filter with
--set filter.quality.model=DIR/model.bin --set filter.quality.label=__label__<positive label>.
"""
import argparse
import json
import os
import sys

# jobs/pipeline.py shares its name with the pipeline package: import the package, not that script.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from pipeline import config as config_lib  # noqa: E402
from pipeline import storage  # noqa: E402
from pipeline.cli import spark_session  # noqa: E402
from pipeline.filter import quality_train_spark  # noqa: E402
from pipeline.stagedir import StageError  # noqa: E402


def parser() -> argparse.ArgumentParser:
    doc = __doc__.split("\n\n", 1)[1]
    keys = "\n".join(f"  {k} = {json.dumps(v)}" for k, v in config_lib.to_dict(quality_train_spark.TrainConfig()).items())
    p = argparse.ArgumentParser(
        prog="spark-submit jobs/train_quality.py",
        description=doc,
        epilog=f"configuration keys (YAML or --set key=value; defaults shown):\n{keys}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--output", required=True, help="directory URI for model.bin, model.ftz and report.json")
    p.add_argument("--labelled", help="JSONL/Parquet file or directory of labelled records")
    p.add_argument("--text-field", default="text", help="text field of --labelled records (default: text)")
    p.add_argument("--label-field", default="label", help="label field of --labelled records (default: label)")
    p.add_argument("--positive", help="documents of the positive class (stage directory or raw files)")
    p.add_argument("--positive-subdir", default="data", help="stage sub-directory of --positive (default: data)")
    p.add_argument("--positive-label", default="keep", help="name of the positive label (default: keep)")
    p.add_argument("--negative", help="documents of the negative class (stage directory or raw files)")
    p.add_argument("--negative-subdir", default="data", help="stage sub-directory of --negative, e.g. dropped")
    p.add_argument("--negative-label", default="junk", help="name of the negative label (default: junk)")
    p.add_argument("--config", help="YAML file of training settings")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting (repeatable)")
    return p


def main(argv=None) -> dict:
    p = parser()
    args = p.parse_args(argv)
    sources = [args.positive, args.negative]
    if any(sources) if args.labelled else not all(sources):
        p.error("give either --labelled, or both --positive and --negative")
    try:
        cfg = config_lib.load(quality_train_spark.TrainConfig, args.config, args.set)
    except config_lib.ConfigError as e:
        sys.exit(f"config error: {e}")
    spark = spark_session("corpusforge-train-quality")
    try:
        if args.labelled:
            examples = quality_train_spark.labelled_table(spark, args.labelled, args.text_field, args.label_field)
        else:
            examples = quality_train_spark.documents_as(spark, args.positive, args.positive_label, args.positive_subdir)
            examples = examples.unionByName(
                quality_train_spark.documents_as(spark, args.negative, args.negative_label, args.negative_subdir)
            )
        report = quality_train_spark.train(quality_train_spark.sample(examples, cfg), args.output, cfg)
    except (StageError, storage.StorageError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")
    print(json.dumps({"labels": report["labels"], "holdout": report["holdout"]}, indent=2), flush=True)
    print(f"model: {storage.display(storage.join(args.output, 'model.bin'))}", flush=True)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
