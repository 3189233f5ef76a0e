"""Signature throughput on one core: `pipeline.dedup.minhash` (a batch at a time) vs datasketch's
per-document `MinHash.update_batch`, on the same shared-corpus documents in one run.

Both count the same work: text -> shingles -> num_perm MinHash values. Ours also normalises the text;
datasketch gets `text.lower().split()` 5-grams (its usual use). CPU time of this process is reported,
and Arrow is limited to one thread so that the numbers are per core.

    .venv/bin/python benchmarks/dedup_speed.py [--docs 5000] [--batch 2000]
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import labelled_corpus  # noqa: E402
from pipeline.dedup import DedupeConfig, minhash  # noqa: E402


def load(corpus: Path, limit: int) -> list[str]:
    return [d["text"] for d in itertools.islice(labelled_corpus.documents(corpus), limit)]


def ours(texts: list[str], batch: int, cfg: DedupeConfig) -> float:
    bands, rows = cfg.lsh_params()
    spec = cfg.shingle_spec()
    start = time.process_time()
    for i in range(0, len(texts), batch):
        norm = minhash.normalize(pa.array(texts[i:i + batch], pa.large_string()))
        minhash.exact_hashes(norm)
        hashes, counts = minhash.shingles(norm, spec)
        minhash.band_hashes(minhash.signatures(hashes, counts, cfg.num_perm, cfg.seed), bands, rows)
    return time.process_time() - start


def datasketch(texts: list[str], num_perm: int) -> float:
    from datasketch import MinHash

    start = time.process_time()
    for text in texts:
        tokens = text.lower().split()
        m = MinHash(num_perm=num_perm)
        m.update_batch([" ".join(tokens[i:i + 5]).encode("utf-8") for i in range(max(len(tokens) - 4, 1))])
    return time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="/work/shared/corpus")
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    cfg = DedupeConfig()
    texts = load(Path(args.corpus), args.docs)
    words = sum(len(t.split()) for t in texts)
    ours(texts[:200], args.batch, cfg)  # warm-up: imports, regex compilation
    t_ours = ours(texts, args.batch, cfg)
    t_ds = datasketch(texts, cfg.num_perm)
    print(f"{len(texts)} documents, {words / len(texts):.0f} words on average, num_perm {cfg.num_perm}")
    print("| implementation | CPU s | docs/s per core |")
    print("|---|---|---|")
    print(f"| corpusforge minhash (batches of {args.batch}) | {t_ours:.2f} | {len(texts) / t_ours:,.0f} |")
    print(f"| datasketch MinHash per document | {t_ds:.2f} | {len(texts) / t_ds:,.0f} |")
    print(f"speed-up: {t_ds / t_ours:.1f}x")


if __name__ == "__main__":
    main()
