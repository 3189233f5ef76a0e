"""Benchmark decontamination: documents that share a word n-gram with an evaluation benchmark.

A model whose training data holds a benchmark's test items reports meaningless scores on it. As GPT-3 and
OLMo do, a document is contaminated when it shares one n-gram (13 words by default) with a benchmark's
text. Words are dedupe's normalised tokens (`pipeline.dedup.minhash.normalized_tokens`); text in a script
written without spaces (Han, kana, Thai, Lao, Khmer, Burmese, Tibetan) is cut into words by ICU's
dictionaries (`pipeline.filter.text.segment`; Tibetan into syllables), so an n-gram is n words in every
script: 13 characters would be two or three words of Khmer or Thai, and common phrases of news text would
mark unrelated documents. N-grams are hashed to 64 bits as dedupe's word shingles are; a text shorter than
n words is one n-gram of its whole normalised text, so it matches only a document that is exactly it.

Plain Python over Arrow batches: reading benchmark files into hashed n-grams (`benchmark_ngrams`), and
marking a batch against the sorted table of them (`match_batch`). The Spark stage is
pipeline/stages/decontaminate.py.
"""
from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import storage
from pipeline.config import ConfigError
from pipeline.dedup import minhash
from pipeline.filter.text import segment

REASON = "benchmark_overlap"
MODES = ("drop", "mark")
SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet")
TABLE = pa.schema([("hash", pa.int64()), ("benchmark", pa.int32())])
MATCH_COLUMNS = [("benchmark", pa.string()), ("benchmark_ngrams", pa.int32())]


@dataclass
class DecontaminateConfig:
    # Benchmark files (JSONL, JSONL.gz or Parquet) or directories of them, as URIs; each file is one
    # benchmark, named after its file name without the suffix. Empty: the pipeline runs no decontamination.
    benchmarks: list[str] = field(default_factory=list)
    # The fields whose text is matched, joined with a newline per record; a record lacking one is an error
    # naming its file and line.
    fields: list[str] = field(default_factory=lambda: ["text"])
    ngram: int = 13  # words per n-gram (GPT-3's and OLMo's 13), in every script (module docs)
    # "drop": contaminated documents go to dropped/ as benchmark_overlap; "mark": they are kept, and every
    # document gains the columns `benchmark` (null when clean) and `benchmark_ngrams`.
    mode: str = "drop"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"decontaminate.mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        if not self.fields:
            raise ConfigError("decontaminate.fields: name at least one field")

    def spec(self) -> minhash.ShingleSpec:
        return minhash.ShingleSpec(ngram=self.ngram, char_shingles="never")


def words(texts: pa.Array) -> pa.ListArray:
    """The normalised words of each text; where the script is written without spaces, ICU segments the
    text as written (normalising first would remove the marks it splits at, such as the Tibetan tsheg)."""
    tokens = minhash.normalized_tokens(texts)
    spaceless = np.flatnonzero(minhash.uses_char_shingles(tokens, minhash.ShingleSpec()))
    if not len(spaceless):
        return tokens
    segmented = [" ".join(segment(t or "")) for t in pa.array(texts).take(pa.array(spaceless)).to_pylist()]
    lists = tokens.to_pylist()
    for i, w in zip(spaceless, minhash.normalized_tokens(pa.array(segmented, pa.string())).to_pylist()):
        lists[i] = w
    return pa.array(lists, tokens.type)


def ngram_hashes(texts: pa.Array, cfg: DecontaminateConfig) -> tuple[np.ndarray, np.ndarray]:
    """Hashed word n-grams of each text: (hashes concatenated, count per text)."""
    return minhash.shingles(words(texts), cfg.spec())


def benchmark_name(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return next((name[: -len(s)] for s in SUFFIXES if name.lower().endswith(s)), name)


def benchmark_texts(uri: str, fields: list[str]) -> list[str]:
    """The matched text of every record of one benchmark file; a record without a field, or a line that is
    not a JSON object, raises ValueError naming the file and line."""
    data = storage.read_bytes(uri)
    shown = storage.display(uri)
    if uri.lower().endswith(".parquet"):
        table = pq.read_table(io.BytesIO(data))
        missing = [f for f in fields if f not in table.column_names]
        if missing:
            raise ValueError(f"{shown}: no column {', '.join(missing)} (has {', '.join(table.column_names)}); "
                             f"set decontaminate.fields")
        columns = [table.column(f).to_pylist() for f in fields]
        return ["\n".join("" if v is None else str(v) for v in row) for row in zip(*columns)]
    if uri.lower().endswith(".gz"):
        data = gzip.decompress(data)
    texts = []
    for line_no, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{shown}:{line_no}: not JSON ({e.msg})") from None
        if not isinstance(record, dict) or any(f not in record for f in fields):
            raise ValueError(f"{shown}:{line_no}: a record needs the fields {', '.join(fields)} "
                             f"(set decontaminate.fields)")
        texts.append("\n".join("" if record[f] is None else str(record[f]) for f in fields))
    return texts


def benchmark_ngrams(uri: str, index: int, cfg: DecontaminateConfig) -> pa.RecordBatch:
    """The distinct hashed n-grams of one benchmark file, tagged with its index (`TABLE`)."""
    texts = pa.array(benchmark_texts(uri, cfg.fields), pa.string())
    hashes, _ = ngram_hashes(texts, cfg)
    distinct = np.unique(hashes.view(np.int64))  # sorted as int64, as match_batch searches it
    return pa.RecordBatch.from_arrays([pa.array(distinct), pa.array(np.full(len(distinct), index, np.int32))],
                                      schema=TABLE)


def match_batch(texts: pa.Array, table_hashes: np.ndarray, table_benchmarks: np.ndarray,
                cfg: DecontaminateConfig) -> tuple[np.ndarray, np.ndarray]:
    """(benchmark index or -1, distinct n-grams shared with it) per document. `table_hashes` sorted
    (int64), one benchmark per hash (the first listed that has it). A document that shares n-grams with
    several benchmarks is named after the one it shares most with (ties: the first listed)."""
    n = len(texts)
    found = np.full(n, -1, np.int64)
    shared = np.zeros(n, np.int64)
    if n == 0 or len(table_hashes) == 0:
        return found, shared
    hashes, counts = ngram_hashes(texts, cfg)
    hashes = hashes.view(np.int64)
    doc = np.repeat(np.arange(n), counts)
    pos = np.minimum(np.searchsorted(table_hashes, hashes), len(table_hashes) - 1)
    hit = table_hashes[pos] == hashes
    if not hit.any():
        return found, shared
    pairs = np.unique(np.stack([doc[hit], table_benchmarks[pos[hit]], hashes[hit]]), axis=1)  # distinct n-grams
    keys, per = np.unique(pairs[:2], axis=1, return_counts=True)  # (doc, benchmark) -> shared n-grams
    order = np.lexsort((keys[1], -per, keys[0]))  # per document: most shared first, then the first listed
    keys, per = keys[:, order], per[order]
    first = np.unique(keys[0], return_index=True)[1]
    found[keys[0, first]] = keys[1, first]
    shared[keys[0, first]] = per[first]
    return found, shared
