"""Filter quality on one shard of the labelled shared corpus (the full table: benchmarks/filter_quality.py)."""
from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.evaluate import cleaned_corpus
from pipeline.filter import FilterConfig, filter_batch
from pipeline.filter.langid import identify

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def filtered(shared_corpus):
    docs, labels = cleaned_corpus(shared_corpus, "docs-00.jsonl.gz")
    rows = []
    for i in range(0, len(docs), 1000):
        rows += filter_batch(pa.RecordBatch.from_pylist(docs[i : i + 1000]), FilterConfig()).to_pylist()
    return [(row, labels[row["id"]]) for row in rows]


def test_junk_is_dropped(filtered):
    junk = [row for row, label in filtered if label["kind"] == "junk"]
    recall = sum(row["_status"] == "dropped" for row in junk) / len(junk)
    assert len(junk) > 200 and recall >= 0.9


def test_english_books_are_kept(filtered):
    """datatrove's chain drops 27% of these Gutenberg chapters (punctuation counted as words)."""
    books = [row for row, label in filtered if label["kind"] == "original" and label["origin"].startswith("rcdm-uga/Gutenberg")]
    dropped = sum(row["_status"] == "dropped" for row in books) / len(books)
    assert len(books) > 1000 and dropped <= 0.08


def test_kept_originals_carry_their_true_language(filtered):
    kept = [(row, label) for row, label in filtered if label["kind"] == "original" and row["_status"] == "kept"]
    accuracy = sum(row["lang"] == label["lang"] for row, label in kept) / len(kept)
    assert accuracy >= 0.99


def test_language_id_on_labelled_sentences(shared_corpus):
    with open(shared_corpus / "lid" / "sentences.tsv", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t", 1) for line in f][1:]
    langs, _ = identify(pa.array([s for _, s in rows]), FilterConfig().langid_max_chars)
    accuracy = sum(pred == truth for (truth, _), pred in zip(rows, langs)) / len(rows)
    assert accuracy >= 0.98
