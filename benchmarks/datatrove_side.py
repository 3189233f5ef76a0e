"""The datatrove side of the side-by-side benchmarks, run in the separate benchmark venv (`make bench-env`).

datatrove is not a dependency of corpusforge, so the benchmarks write their documents once to a JSONL
file (`id`, `text`) and run this file under `.venv-bench/bin/python` as a subprocess; it prints one JSON
object. `run_datatrove` is the caller's half and uses the standard library only.

    .venv-bench/bin/python benchmarks/datatrove_side.py signatures DOCS.jsonl [--bands 16 --rows 8]
    .venv-bench/bin/python benchmarks/datatrove_side.py filters DOCS.jsonl DECISIONS.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# One thread, as on our side: the numbers are per core.
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def bench_python() -> str:
    python = os.environ.get("BENCH_PYTHON", str(ROOT / ".venv-bench" / "bin" / "python"))
    if not Path(python).exists():
        sys.exit(f"{python} not found: create the benchmark venv with `make bench-env` (or set BENCH_PYTHON)")
    return python


def write_jsonl(path: Path, docs: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"id": d["id"], "text": d["text"]}, ensure_ascii=False) + "\n")


def run_datatrove(command: str, *args: str) -> dict:
    """Run a command of this file in the benchmark venv and return the JSON it prints."""
    out = subprocess.run([bench_python(), __file__, command, *args], check=True, capture_output=True,
                         text=True, env={**os.environ, **ONE_THREAD}).stdout
    return json.loads(out.strip().splitlines()[-1])


def _read(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def signatures(args: argparse.Namespace) -> dict:
    """CPU time of MinhashDedupSignature's per-document work (`get_shingles` + `get_signature`), which is
    what its `run` does per document before packing the values into bucket files; plus where it goes."""
    import numpy as np
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.text import ngrams, simplify_text

    texts = [d["text"] for d in _read(args.docs)]
    with tempfile.TemporaryDirectory() as tmp:
        step = MinhashDedupSignature(tmp, MinhashConfig(n_grams=args.ngram, num_buckets=args.bands,
                                                         hashes_per_bucket=args.rows, seed=1))
        for text in texts[:50]:  # warm-up: spaCy's tokenizer loads on first use
            step.get_signature(step.get_shingles(text))
        start = time.process_time()
        for text in texts:
            shingles = step.get_shingles(text)
            if shingles.size:
                step.get_signature(shingles)
        cpu = time.process_time() - start

        # The same calls split into phases, on a prefix of the documents.
        phases = dict.fromkeys(("simplify_text", "word_tokenize", "hash n-grams", "minhash"), 0.0)
        for text in texts[:args.profile_docs]:
            t0 = time.process_time()
            simple = simplify_text(text, step.config.norm_config)
            t1 = time.process_time()
            words = step.word_tokenizer.word_tokenize(simple)
            t2 = time.process_time()
            shingles = np.fromiter([step._hash_func(" ".join(x)) for x in ngrams(words, args.ngram)],
                                   dtype=np.uint64).reshape((-1, 1))
            t3 = time.process_time()
            if shingles.size:
                step.get_signature(shingles)
            t4 = time.process_time()
            for name, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[name] += dt
    total = sum(phases.values()) or 1.0
    return {"version": version("datatrove"), "docs": len(texts), "cpu_seconds": cpu,
            "phase_share": {k: v / total for k, v in phases.items()}}


def _isolated_rules() -> dict:
    """datatrove reason -> a filter instance with only that rule switched on (default threshold), so every
    rule is decided on every document (the filters themselves stop at their first failing rule)."""
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter)

    off_gq = dict(min_doc_words=None, max_doc_words=None, min_avg_word_length=None, max_avg_word_length=None,
                  max_symbol_word_ratio=None, max_bullet_lines_ratio=None, max_ellipsis_lines_ratio=None,
                  max_non_alpha_words_ratio=None, min_stop_words=None)
    gq = GopherQualityFilter()
    gq_params = {"gopher_short_doc": "min_doc_words", "gopher_long_doc": "max_doc_words",
                 "gopher_below_avg_threshold": "min_avg_word_length",
                 "gopher_above_avg_threshold": "max_avg_word_length",
                 "gopher_too_many_hashes/ellipsis": "max_symbol_word_ratio",
                 "gopher_too_many_bullets": "max_bullet_lines_ratio",
                 "gopher_too_many_end_ellipsis": "max_ellipsis_lines_ratio",
                 "gopher_below_alpha_threshold": "max_non_alpha_words_ratio",
                 "gopher_enough_stop_words": "min_stop_words"}
    rules = {r: GopherQualityFilter(**{**off_gq, p: getattr(gq, p)}) for r, p in gq_params.items()}

    gr = GopherRepetitionFilter()
    off_gr = dict(dup_line_frac=None, dup_para_frac=None, dup_line_char_frac=None, dup_para_char_frac=None,
                  top_n_grams=(), dup_n_grams=())
    for p in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"):
        rules[p] = GopherRepetitionFilter(**{**off_gr, p: getattr(gr, p)})
    for n, frac in gr.top_n_grams:
        rules[f"top_{n}_gram"] = GopherRepetitionFilter(**{**off_gr, "top_n_grams": ((n, frac),)})
    for n, frac in gr.dup_n_grams:
        rules[f"duplicated_{n}_n_grams"] = GopherRepetitionFilter(**{**off_gr, "dup_n_grams": ((n, frac),)})

    off_fw = dict(line_punct_thr=-1.0, short_line_thr=float("inf"), char_duplicates_ratio=float("inf"),
                  new_line_ratio=float("inf"))
    fw = FineWebQualityFilter()
    fw_params = {"line_punct_ratio": ("line_punct_thr", fw.line_punct_thr),
                 "short_line_ratio": ("short_line_thr", fw.short_line_threshold),
                 "char_dup_ratio": ("char_duplicates_ratio", fw.char_duplicates_ratio),
                 "list_ratio": ("new_line_ratio", fw.new_line_ratio)}
    for r, (p, value) in fw_params.items():
        rules[r] = FineWebQualityFilter(**{**off_fw, p: value})

    # C4 last: its per-line sentence splitting evicts datatrove's small word-split cache.
    c4 = dict(filter_no_terminal_punct=False, min_num_sentences=-1, filter_lorem_ipsum=False,
              filter_curly_bracket=False)
    rules["lorem_ipsum"] = C4QualityFilter(**{**c4, "filter_lorem_ipsum": True})
    rules["curly_bracket"] = C4QualityFilter(**{**c4, "filter_curly_bracket": True})
    rules["too_few_sentences"] = C4QualityFilter(**{**c4, "min_num_sentences": 5})
    return rules


def filters(args: argparse.Namespace) -> dict:
    """FineWeb's chain (Gopher repetition -> Gopher quality -> C4 -> FineWeb, C4 without the terminal
    punctuation line filter as FineWeb ran it), timed; then every rule alone on every document, untimed."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter)

    docs = _read(args.docs)
    chain = [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(filter_no_terminal_punct=False),
             FineWebQualityFilter()]
    c4_class_default = C4QualityFilter()

    def run_chain(text: str) -> str | None:
        doc = Document(text=text, id="")
        for f in chain:  # C4 rewrites doc.text (keeps its lines) for the filters after it, as in a pipeline
            result = f.filter(doc)
            if result is not True:
                return result[1] if isinstance(result, tuple) else f.name
        return None

    for d in docs[:20]:  # warm-up: spaCy loads on first use
        run_chain(d["text"])
    start = time.process_time()
    chain_reasons = [run_chain(d["text"]) for d in docs]
    cpu = time.process_time() - start

    rules = _isolated_rules()
    with open(args.out, "w", encoding="utf-8") as f:
        for d, reason in zip(docs, chain_reasons):
            decided = {}
            for name, flt in rules.items():
                try:
                    result = flt.filter(Document(text=d["text"], id=d["id"]))
                except ZeroDivisionError:  # a rule alone on a document without words: not defined
                    decided[name] = None
                    continue
                dropped = result is not True
                if name.startswith("gopher_too_many_hashes") and dropped:
                    dropped = result[1] in ("gopher_too_many_hashes", "gopher_too_many_ellipsis")
                decided[name] = dropped
            c4_default = c4_class_default.filter(Document(text=d["text"], id=d["id"]))
            f.write(json.dumps({"id": d["id"], "chain": reason, "rules": decided,
                                "c4_class_default": None if c4_default is True else c4_default[1]}) + "\n")
    return {"version": version("datatrove"), "docs": len(docs), "cpu_seconds": cpu,
            "chars": sum(len(d["text"]) for d in docs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sig = sub.add_parser("signatures")
    sig.add_argument("docs")
    sig.add_argument("--ngram", type=int, default=5)
    sig.add_argument("--bands", type=int, default=16)
    sig.add_argument("--rows", type=int, default=8)
    sig.add_argument("--profile-docs", type=int, default=2000)
    flt = sub.add_parser("filters")
    flt.add_argument("docs")
    flt.add_argument("out")
    args = ap.parse_args()
    print(json.dumps(signatures(args) if args.command == "signatures" else filters(args)))


if __name__ == "__main__":
    main()
