"""Dedup speed per core, side by side in one run on the same shared-corpus documents:

1. The signature step, one thread each: `pipeline.dedup.minhash` (a batch at a time: normalise, exact
   digest, shingles, MinHash, bands), datasketch's per-document `MinHash.update_batch`, and datatrove's
   `MinhashDedupSignature` (`get_shingles` + `get_signature`, in the benchmark venv: `make bench-env`).
   Same word 5-grams and num_perm where the definitions allow: datasketch gets `text.lower().split()`
   5-grams, datatrove its own `simplify_text` + spaCy word tokens, with num_buckets x hashes_per_bucket
   set to our bands x rows. CPU time of the process doing the work.
2. Inside Spark on `local[1]` (so wall time is per core): the signature step alone (`features_fn` in
   `mapInArrow`, written to Spark's noop sink), and the whole dedupe stage (`pipeline.stages.dedupe.run`:
   read, sign, exact groups, LSH edges, verification, connected components, write). Each runs once
   to warm the Python workers, then timed; session start-up is reported separately. Per core = documents
   per CPU second of the whole process tree (driver, JVM, Python workers), which other jobs on a
   shared machine do not inflate as they do wall time.

    .venv/bin/python benchmarks/dedup_speed.py [--docs 20000] [--batch 2000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import dedup_scaling, labelled_corpus  # noqa: E402
from benchmarks.datatrove_side import run_datatrove, write_jsonl  # noqa: E402
from pipeline.dedup import minhash  # noqa: E402
from pipeline.dedup.config import DedupeConfig  # noqa: E402
from pipeline.dedup.dedupe_spark import FEATURES, features_fn  # noqa: E402
from pipeline import spark_io  # noqa: E402


def ours(texts: list[str], batch: int, cfg: DedupeConfig) -> float:
    bands, rows = cfg.lsh_params()
    spec = cfg.shingle_spec()
    start = time.process_time()
    for i in range(0, len(texts), batch):
        tokens = minhash.normalized_tokens(pa.array(texts[i:i + batch], pa.large_string()))
        minhash.exact_hashes(minhash.join_tokens(tokens))
        hashes, counts = minhash.shingles(tokens, spec)
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


def spark_side(docs: list[dict], tmp: str) -> dict:
    """(wall s, CPU s) on local[1] of the signature step and the whole stage, first run and warm run;
    and the session start-up seconds."""
    labelled_corpus.write_input_stage(f"{tmp}/in", docs, len(docs) // dedup_scaling.DOCS_PER_PART)
    spark, startup = dedup_scaling.start_spark(1)
    cfg = DedupeConfig()

    def read() -> None:
        spark_io.read_stage(spark, f"{tmp}/in").select("id", "text").write.format("noop").mode("overwrite").save()

    def sign() -> None:
        (spark_io.read_stage(spark, f"{tmp}/in").select("id", "text")
         .mapInArrow(features_fn(cfg), FEATURES).write.format("noop").mode("overwrite").save())

    try:
        out = {"startup": startup}
        for run in ("first", "warm"):
            out[f"{run}_read"] = dedup_scaling.timed(read)[:2]
            out[f"{run}_sign"] = dedup_scaling.timed(sign)[:2]
        for run in ("first", "warm"):
            wall, cpu, stats = dedup_scaling.run_stage(spark, f"{tmp}/in", f"{tmp}/out-{run}")
            out[f"{run}_stage"] = wall, cpu
    finally:
        spark.stop()
    out["stats"] = stats
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(labelled_corpus.DEFAULT))
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    cfg = DedupeConfig()
    bands, rows = cfg.lsh_params()
    docs = dedup_scaling.read_docs(Path(args.corpus), args.docs)
    texts = [d["text"] for d in docs]
    n = len(texts)
    words = sum(len(t.split()) for t in texts)
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6

    ours(texts[:200], args.batch, cfg)  # warm-up: imports, regex compilation
    t_ours = ours(texts, args.batch, cfg)
    t_ds = datasketch(texts, cfg.num_perm)
    with tempfile.TemporaryDirectory() as tmp:
        write_jsonl(Path(tmp) / "docs.jsonl", docs)
        dt = run_datatrove("signatures", f"{tmp}/docs.jsonl", "--ngram", str(cfg.ngram),
                           "--bands", str(bands), "--rows", str(rows))

    print(f"\n{n} documents ({mb:.1f} MB, {words / n:.0f} words on average), num_perm {cfg.num_perm} "
          f"= {bands} bands x {rows} rows, word {cfg.ngram}-grams\n")
    print("| signature step, one core | CPU s | docs/s per core | ours / it |")
    print("|---|---|---|---|")
    for name, t in ((f"corpusforge minhash (batches of {args.batch})", t_ours),
                    ("datasketch MinHash.update_batch per document", t_ds),
                    (f"datatrove {dt['version']} MinhashDedupSignature per document", dt["cpu_seconds"])):
        print(f"| {name} | {t:.2f} | {n / t:,.0f} | {t / t_ours:.1f}x |")
    share = ", ".join(f"{k} {v:.0%}" for k, v in dt["phase_share"].items())
    print(f"\ndatatrove's time by phase: {share}\n", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        sp = spark_side(docs, tmp)
    print("| Spark local[1] | first run wall s | warm wall s | warm CPU s | warm docs/s per core (CPU) |")
    print("|---|---|---|---|---|")
    for name, key in (("read the input stage only (noop sink)", "read"),
                      ("read + signature step (features_fn in mapInArrow, noop sink)", "sign"),
                      ("whole dedupe stage", "stage")):
        (first, _), (wall, cpu) = sp[f"first_{key}"], sp[f"warm_{key}"]
        print(f"| {name} | {first:.1f} | {wall:.1f} | {cpu:.1f} | {n / cpu:,.0f} |")
    sign_only = sp["warm_sign"][1] - sp["warm_read"][1]
    print(f"| signature step alone (difference of the two rows above) | | | {sign_only:.1f} | {n / sign_only:,.0f} |")
    st = sp["stats"]
    print(f"\nSpark session start-up {sp['startup']:.1f} s (not counted). Stage: {st['exact_duplicates']} exact "
          f"and {st['near_duplicates']} near duplicates, {st['candidate_edges']} candidate edges, "
          f"{st['cc_rounds']} CC rounds.")
    sig_rate = min(n / t_ours, n / sign_only)
    print(f"\ntargets: signature >= 5,000 docs/s per core: {'met' if sig_rate >= 5000 else 'not met'} "
          f"({sig_rate:,.0f}, the lower of bare and in Spark); >= 4x datasketch: "
          f"{'met' if t_ds / t_ours >= 4 else 'not met'} ({t_ds / t_ours:.1f}x); >= 30x datatrove: "
          f"{'met' if dt['cpu_seconds'] / t_ours >= 30 else 'not met'} ({dt['cpu_seconds'] / t_ours:.1f}x)")


if __name__ == "__main__":
    main()
