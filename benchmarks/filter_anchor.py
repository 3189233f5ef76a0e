"""Our filter beside datatrove's Gopher quality, Gopher repetition, C4 quality and FineWeb quality filters
on the same English documents of the labelled shared corpus, in one run.

Documents: the corpus as the clean stage leaves it; English = labelled English originals and copies, plus
the junk documents fastText's lid.176 calls English (datatrove's chain runs after a language filter). The
first `--docs` of them in corpus order. datatrove runs in the benchmark venv (`make bench-env`) on the
same texts, written once to a JSONL file.

- Ours: `filter_batch` (language ID, PII, then the rules), one thread, with FineWeb's English chain at
  datatrove's default thresholds (`RuleSet()`; the default config applies FineWeb-2's rules to English) and
  without the main-content second chance, so both sides run the same chain and nothing more.
- datatrove: the chain as FineWeb ran it (Gopher repetition -> Gopher quality -> C4 without the
  terminal-punctuation line filter -> FineWeb quality, default thresholds), one thread.

Printed: junk recall and false drops of originals side by side; per-rule agreement, each rule decided
alone on every document on both sides (ours: every check's mask before "first failure" is taken;
datatrove: a filter instance with only that rule on); throughput in docs/s per core; and our language
ID against bare fastText `predict` on the same texts.

    .venv/bin/python benchmarks/filter_anchor.py [--docs 6000] [--batch 1000]
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import labelled_corpus  # noqa: E402
from pipeline import evaluate  # noqa: E402
from benchmarks.datatrove_side import run_datatrove, write_jsonl  # noqa: E402
from pipeline.filter import FilterConfig, RuleSet, filter_batch, rules  # noqa: E402
from pipeline.filter.batch import rule_checks, substring_counts  # noqa: E402
from pipeline.filter.langid import get_model, identify  # noqa: E402
from pipeline.filter.text import batch_stats  # noqa: E402

# Our check -> datatrove's reason for the same rule. Both of our symbol checks share datatrove's one
# max_symbol_word_ratio rule (hashes or ellipses per word).
RULE_MAP = {
    "gopher_rep_dup_para_frac": "dup_para_frac",
    "gopher_rep_dup_para_char_frac": "dup_para_char_frac",
    "gopher_rep_dup_line_frac": "dup_line_frac",
    "gopher_rep_dup_line_char_frac": "dup_line_char_frac",
    **{f"gopher_rep_top_{n}_gram": f"top_{n}_gram" for n in (2, 3, 4)},
    **{f"gopher_rep_dup_{n}_gram": f"duplicated_{n}_n_grams" for n in range(5, 11)},
    "gopher_min_words": "gopher_short_doc",
    "gopher_max_words": "gopher_long_doc",
    "gopher_min_avg_word_length": "gopher_below_avg_threshold",
    "gopher_max_avg_word_length": "gopher_above_avg_threshold",
    "gopher_hash_ratio+gopher_ellipsis_ratio": "gopher_too_many_hashes/ellipsis",
    "gopher_bullet_lines": "gopher_too_many_bullets",
    "gopher_ellipsis_lines": "gopher_too_many_end_ellipsis",
    "gopher_alpha_words": "gopher_below_alpha_threshold",
    "gopher_stop_words": "gopher_enough_stop_words",
    "c4_lorem_ipsum": "lorem_ipsum",
    "c4_curly_bracket": "curly_bracket",
    "c4_too_few_sentences": "too_few_sentences",
    "fineweb_line_punct_ratio": "line_punct_ratio",
    "fineweb_short_line_ratio": "short_line_ratio",
    "fineweb_char_dup_ratio": "char_dup_ratio",
    "fineweb_list_ratio": "list_ratio",
}


def english_documents(corpus: Path, limit: int) -> tuple[list[dict], dict[str, dict]]:
    labels = evaluate.labels(corpus)
    docs = [{"id": d["id"], "text": d["text"], "source": d["source"]}
            for d in evaluate.documents(corpus, cleaned=True)]
    junk = [i for i, d in enumerate(docs) if labels[d["id"]]["kind"] == "junk"]
    junk_langs, _ = identify(pa.array([docs[i]["text"] for i in junk]), FilterConfig().langid_max_chars)
    english_junk = {i for i, lang in zip(junk, junk_langs) if lang == "en"}
    english = [d for i, d in enumerate(docs) if labels[d["id"]]["lang"] == "en" or i in english_junk]
    return english[:limit] if limit else english, labels


def our_rule_masks(texts: list[str], cfg: FilterConfig) -> dict[str, np.ndarray]:
    """Every English check's drop mask over all documents (not only the first failing one)."""
    rs = cfg.rules_for("en")
    dup = [getattr(rs.gopher_repetition, f"dup_{n}_gram_frac") for n in range(5, 11)]
    floor = min(t for t in dup if t is not None)
    stats = rules.Stats(batch_stats(texts, ["en"] * len(texts), rs.c4, rs.fineweb.short_line_length, floor)._asdict())
    masks = {name: np.asarray(mask, dtype=bool)
             for name, mask in rule_checks(stats, rs, substring_counts(pa.array(texts)), ["en"] * len(texts)) if mask is not None}
    masks["gopher_hash_ratio+gopher_ellipsis_ratio"] = masks.pop("gopher_hash_ratio") | masks.pop("gopher_ellipsis_ratio")
    return masks


def ours_timed(docs: list[dict], cfg: FilterConfig, batch: int) -> tuple[list[dict], float]:
    batches = [pa.RecordBatch.from_pylist([{"id": d["id"], "text": d["text"]} for d in docs[i:i + batch]])
               for i in range(0, len(docs), batch)]
    filter_batch(batches[0].slice(0, 10), cfg)  # loads the fastText model outside the timing
    start = time.process_time()
    results = [filter_batch(b, cfg) for b in batches]
    cpu = time.process_time() - start
    return [row for r in results for row in r.select(["_status", "_reason"]).to_pylist()], cpu


def langid_timed(texts: list[str], max_chars: int) -> dict[str, float]:
    """CPU seconds: our `identify`, and bare `predict` on the same prefixes and on whole texts (their
    newline-free inputs prepared outside the timing)."""
    model = get_model()
    arr = pa.array(texts)
    prefixes = [t[:max_chars].replace("\n", " ").replace("\r", " ") for t in texts]
    whole = [t.replace("\n", " ").replace("\r", " ") for t in texts]
    identify(arr[:10], max_chars)
    out = {}
    for name, fn in (("ours", lambda: identify(arr, max_chars)),
                     ("bare_prefix", lambda: model.predict(prefixes, k=1)),
                     ("bare_whole", lambda: model.predict(whole, k=1))):
        start = time.process_time()
        fn()
        out[name] = time.process_time() - start
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=labelled_corpus.DEFAULT)
    ap.add_argument("--docs", type=int, default=6000, help="English documents to use (0: all)")
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    cfg = FilterConfig(english=RuleSet(), main_content=False)  # datatrove's chain, as FineWeb ran it

    docs, labels = english_documents(args.corpus, args.docs)
    texts = [d["text"] for d in docs]
    kinds = np.array([labels[d["id"]]["kind"] for d in docs])
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6

    ours, t_ours = ours_timed(docs, cfg, args.batch)
    masks = our_rule_masks(texts, cfg)
    lid = langid_timed(texts, cfg.langid_max_chars)
    with tempfile.TemporaryDirectory() as tmp:
        write_jsonl(Path(tmp) / "docs.jsonl", docs)
        dt = run_datatrove("filters", f"{tmp}/docs.jsonl", f"{tmp}/decisions.jsonl")
        with open(f"{tmp}/decisions.jsonl", encoding="utf-8") as f:
            theirs = [json.loads(line) for line in f]
    assert [t["id"] for t in theirs] == [d["id"] for d in docs]

    n = len(docs)
    print(f"\n{n} English documents ({mb:.1f} MB): {(kinds == 'original').sum()} originals, "
          f"{np.isin(kinds, ['near_dup', 'exact_dup']).sum()} copies, {(kinds == 'junk').sum()} junk; "
          f"datatrove {dt['version']}\n")

    our_drop = np.array([r["_status"] == "dropped" for r in ours])
    their_drop = np.array([t["chain"] is not None for t in theirs])
    c4_default_drop = np.array([t["c4_class_default"] is not None for t in theirs])
    original, junk = kinds == "original", kinds == "junk"
    sources = np.array([d["source"] for d in docs])
    print("| measure | corpusforge filter_batch | datatrove chain |")
    print("|---|---|---|")
    print(f"| junk recall | {our_drop[junk].mean():.3f} | {their_drop[junk].mean():.3f} |")
    print(f"| false drops of originals | {our_drop[original].mean():.1%} | {their_drop[original].mean():.1%} |")
    for source in sorted(set(sources[original])):
        sel = original & (sources == source)
        print(f"| false drops, {source} originals ({sel.sum()}) | {our_drop[sel].mean():.1%} "
              f"| {their_drop[sel].mean():.1%} |")
    print(f"| CPU s | {t_ours:.2f} | {dt['cpu_seconds']:.2f} |")
    print(f"| docs/s per core | {n / t_ours:,.0f} | {n / dt['cpu_seconds']:,.0f} |")
    print(f"| MB/s per core | {mb / t_ours:.2f} | {mb / dt['cpu_seconds']:.2f} |")
    print(f"\nthroughput ratio {dt['cpu_seconds'] / t_ours:.1f}x (target >= 20x). datatrove's C4 with its class "
          f"default filter_no_terminal_punct=True alone would drop {c4_default_drop[original].mean():.1%} of "
          f"originals and {c4_default_drop[junk].mean():.1%} of junk.")

    for name, reasons in (("corpusforge", [r["_reason"] for r in ours]), ("datatrove", [t["chain"] for t in theirs])):
        top = collections.Counter(r for r, o in zip(reasons, original) if o and r).most_common(5)
        print(f"{name} false drops by reason: " + ", ".join(f"{r} {c}" for r, c in top))

    print("\n| rule (ours / datatrove) | documents | ours drops | datatrove drops | both | only ours | only datatrove | agreement |")
    print("|---|---|---|---|---|---|---|---|")
    for our_name, their_name in RULE_MAP.items():
        decided = np.array([t["rules"][their_name] is not None for t in theirs])
        a = masks[our_name][decided]
        b = np.array([bool(t["rules"][their_name]) for t in theirs])[decided]
        print(f"| {our_name} / {their_name} | {decided.sum()} | {a.sum()} | {b.sum()} | {(a & b).sum()} "
              f"| {(a & ~b).sum()} | {(~a & b).sum()} | {(a == b).mean():.3f} |")

    print(f"\nlanguage ID over the same {n} texts, CPU s: ours (identify, first {cfg.langid_max_chars} chars) "
          f"{lid['ours']:.2f}; bare predict on the same prefixes {lid['bare_prefix']:.2f} "
          f"(ratio {lid['bare_prefix'] / lid['ours']:.2f}x, target >= 0.8x); bare predict on whole texts "
          f"{lid['bare_whole']:.2f} ({lid['bare_whole'] / lid['ours']:.2f}x)")


if __name__ == "__main__":
    main()
