"""What verification costs: the whole dedupe stage with `dedupe.verify` on and off, side by side.

Verification (checking every LSH candidate edge against the true shingle-set Jaccard) is worth being the
default only if it costs at most 30% more time. Both settings run on the same input in one Spark session:
the first `--docs` documents of the shared corpus and `--copies - 1` copies of them with new ids and words
(`dedup_scaling.perturbed_copy`: same duplicate structure, no shared shingles), so the share of the
stage's fixed per-job cost can be seen shrinking with size. The settings alternate (on, off, on, off,
...) after an untimed warm-up, and each keeps its smallest CPU time of the whole process tree (driver,
JVM, Python workers), the run least disturbed by other work. Also printed: what verification buys
(candidate edges rejected, near duplicates).

    .venv/bin/python benchmarks/dedup_verify_cost.py [--docs 20000] [--copies 1] [--cores 2] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import labelled_corpus  # noqa: E402
from benchmarks.dedup_scaling import DOCS_PER_PART, perturbed_copy, read_docs, start_spark, timed  # noqa: E402
from pipeline import config as config_lib  # noqa: E402
from pipeline.stages import dedupe as dedupe_stage  # noqa: E402
from pipeline.stages.config import PipelineConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(labelled_corpus.DEFAULT))
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--copies", type=int, default=1, help="input = this many copies of the --docs documents")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    base = read_docs(Path(args.corpus), args.docs)
    docs = base + [d for k in range(1, args.copies) for d in perturbed_copy(base, k)]
    configs = {v: config_lib.load(PipelineConfig, overrides=[f"dedupe.verify={str(v).lower()}"]) for v in (True, False)}
    best: dict[bool, tuple[float, float, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        labelled_corpus.write_input_stage(f"{tmp}/in", docs, max(1, len(docs) // DOCS_PER_PART))
        spark, _ = start_spark(args.cores)
        try:
            dedupe_stage.run(spark, f"{tmp}/in", f"{tmp}/warm", configs[True])
            for r in range(args.repeat):
                for verify, cfg in configs.items():
                    wall, cpu, stats = timed(dedupe_stage.run, spark, f"{tmp}/in", f"{tmp}/out-{verify}-{r}", cfg)
                    print(f"verify={verify}: {wall:.1f} s ({cpu:.1f} CPU s)", flush=True)
                    if verify not in best or cpu < best[verify][1]:
                        best[verify] = (wall, cpu, stats)
        finally:
            spark.stop()

    print(f"\n{len(docs):,} documents, local[{args.cores}], smallest CPU of {args.repeat} runs each\n")
    print("| dedupe.verify | wall s | CPU s | candidate edges | verified edges | near duplicates | exact duplicates |")
    print("|---|---|---|---|---|---|---|")
    for verify in (False, True):
        wall, cpu, st = best[verify]
        verified = f"{st['verified_edges']:,}" if verify else "-"
        print(f"| {str(verify).lower()} | {wall:.1f} | {cpu:.1f} | {st['candidate_edges']:,} | {verified} "
              f"| {st['near_duplicates']:,} | {st['exact_duplicates']:,} |")
    extra = best[True][1] / best[False][1] - 1
    print(f"\nverification costs {extra:+.1%} CPU (target <= +30% to be on by default: "
          f"{'met' if extra <= 0.30 else 'not met'})")


if __name__ == "__main__":
    main()
