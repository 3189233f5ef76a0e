"""CPU cost of `filter_batch` per MB of text, and where it goes, on the labelled shared corpus.

Reads the corpus as the clean stage leaves it (like benchmarks/filter_quality.py), runs the filter stage's
first pass over it (`adaptive.first_pass_bins`: language ID, line ends and the shares of each language's
commonest words, whose cost is also printed apart) and `filter_batch` with the default config and the
settings the stage learns from that pass (`adaptive.adapt`), in batches, `--rounds` times (the minimum is
kept: the machine is shared, so CPU time is measured, never wall time), then times the parts of
`filter_batch` separately on the same batches with the functions
`filter_batch` calls: PII replacement, language ID, the quality rules, jusText main-content extraction and
the re-check (language ID and rules) of the extracted texts. Each part is printed as CPU s per MB and as its
share of the whole `filter_batch` time measured in the same run.

    .venv/bin/python benchmarks/filter_speed.py [--corpus ../shared/corpus] [--batch 1000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import labelled_corpus  # noqa: E402
from pipeline import evaluate  # noqa: E402
from pipeline.config import load  # noqa: E402
from pipeline.filter import batch as fb  # noqa: E402
from pipeline.filter import adaptive, language_words, main_content, rules  # noqa: E402
from pipeline.filter.langid import identify  # noqa: E402
from pipeline.filter.pii import replace_pii_batch  # noqa: E402
from pipeline.stages.config import PipelineConfig  # noqa: E402

PARTS = ("PII replacement", "language ID", "quality rules", "main content extraction", "re-check of extracted text")


def cpu(fn, *args):
    """(result, CPU seconds) of one call."""
    start = time.process_time()
    result = fn(*args)
    return result, time.process_time() - start


def parts(batch: pa.RecordBatch, cfg, spent: dict[str, float]) -> None:
    """`filter_batch`'s steps one by one (as in pipeline/filter/batch.py), adding CPU seconds to `spent`."""
    texts = pc.fill_null(batch.column("text"), "")
    (texts, _, _), t = cpu(replace_pii_batch, texts)
    spent["PII replacement"] += t
    (langs, scores), t = cpu(identify, texts, cfg.langid_max_chars)
    spent["language ID"] += t

    def check_rules():
        reasons = rules.first_failure(fb.language_checks(texts, langs, scores, cfg), len(texts))
        alive = np.flatnonzero(reasons == None)  # noqa: E711
        reasons[alive] = fb.quality_reasons(texts.take(pa.array(alive)), [langs[i] for i in alive], cfg)
        return reasons

    reasons, t = cpu(check_rules)
    spent["quality rules"] += t
    idx = np.flatnonzero([r is not None and r not in fb.NOT_FIXED_BY_EXTRACTION for r in reasons])
    originals = texts.take(pa.array(idx, type=pa.int64())).to_pylist()
    extracted, t = cpu(main_content.extract, originals, [langs[i] for i in idx])
    spent["main content extraction"] += t
    changed = [new for new, old in zip(extracted, originals) if new.strip() and new != old]
    if changed:
        _, t = cpu(fb.identify_and_check, pa.array(changed, type=texts.type), cfg)
        spent["re-check of extracted text"] += t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=labelled_corpus.DEFAULT)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    docs = [{k: d[k] for k in ("id", "text")} for d in evaluate.documents(args.corpus, cleaned=True)]
    batches = [pa.RecordBatch.from_pylist(docs[i : i + args.batch]) for i in range(0, len(docs), args.batch)]
    mb = sum(pc.sum(pc.binary_length(b.column("text"))).as_py() or 0 for b in batches) / 1e6
    defaults = load(PipelineConfig).filter
    fb.filter_batch(batches[0].slice(0, 10), defaults)  # load the language-ID model outside the timing

    # The stage's first pass and the settings it learns from it, as the filter stage runs them.
    first_passes, share_times = [], []
    for _ in range(args.rounds):
        bins, t = cpu(lambda: [tuple(r.values()) for b in batches for r in adaptive.first_pass_bins(b, defaults).to_pylist()])
        first_passes.append(t)
        share_times.append(sum(cpu(language_words.shares, b.column("text"), identify(b.column("text"), defaults.langid_max_chars)[0],
                                   defaults.langid_max_chars)[1] for b in batches))
    cfg, _ = adaptive.adapt(defaults, adaptive.histograms(bins))

    totals = []
    for _ in range(args.rounds):
        totals.append(sum(cpu(fb.filter_batch, b, cfg)[1] for b in batches))
    total = min(totals)
    spent = dict.fromkeys(PARTS, 0.0)
    for b in batches:
        parts(b, cfg, spent)

    print(f"{len(docs)} documents, {mb:.1f} MB of text, batches of {args.batch}, default filter config with the "
          "settings the stage's first pass learns")
    print(f"filter_batch: {total / mb:.4f} CPU s per MB ({mb / total:.2f} MB per CPU-second; "
          f"min of {args.rounds} rounds: {', '.join(f'{t:.2f}' for t in totals)} s)")
    first = min(first_passes)
    print(f"first pass: {first / mb:.4f} CPU s per MB ({first / total:.1%} of filter_batch; min of {args.rounds} "
          f"rounds), of which the shares of the languages' commonest words {min(share_times) / mb:.4f} "
          f"({min(share_times) / total:.1%} of filter_batch, timed apart with the language ID they need excluded)")
    print(f"  {'part':28s} {'CPU s/MB':>9s} {'share':>6s}")
    for name in PARTS:
        print(f"  {name:28s} {spent[name] / mb:9.4f} {spent[name] / total:6.1%}")
    rest = total - sum(spent.values())
    print(f"  {'rest (columns, masks)':28s} {rest / mb:9.4f} {rest / total:6.1%}")


if __name__ == "__main__":
    main()
