"""Pure MinHash functions (no Spark): normalisation, shingling, signature accuracy, banding."""
from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from pipeline.dedup import minhash as mh

SPEC = mh.ShingleSpec()
WORDS = ("river stone lantern orchard velvet harbor meadow copper whisper canyon glacier saddle "
         "thistle amber quarry falcon marble pepper ribbon timber walnut cobalt ember fjord").split()


def prose(n_words: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, n_words))


def test_normalize_equates_case_punctuation_digits_spacing_and_unicode_forms():
    variants = [
        "The café opened in 1999, didn't it?",
        "the cafe\u0301 opened in 2024 didnt it",
        "  THE  CAFÉ\r\n opened\tin 1999 — didn’t it!!  ",
        "The\u00a0café\u200b opened in ２０２０, didn't it?",
    ]
    out = mh.normalize(pa.array(variants)).to_pylist()
    assert out == ["the café opened in 0000 didnt it"] * 4


def test_normalized_tokens_are_the_words_of_the_normalized_text():
    texts = pa.array(["  Hello,   WORLD!\n ２０２０ ﬁne ", "", None, "!!!", "one", "Cafe\u0301 au lait"])
    tokens = mh.normalized_tokens(texts)
    assert tokens.to_pylist()[0] == ["hello", "world", "0000", "fine"]
    assert mh.join_tokens(tokens).to_pylist() == mh.normalize(texts).to_pylist()
    assert mh.normalize(texts).to_pylist() == ["hello world 0000 fine", "", "", "", "one", "café au lait"]


def test_shingles_of_a_batch_slice_match_those_of_the_same_documents_alone():
    texts = [prose(30, 9), "", "今天天气很好我们去公园散步吧然后吃饭", prose(7, 10), "!!!", prose(50, 11)]
    tokens = mh.normalized_tokens(pa.array(texts))
    hashes, counts = mh.shingles(tokens.slice(1, 4), SPEC)
    alone = [mh.shingles(mh.normalized_tokens(pa.array([t])), SPEC) for t in texts[1:5]]
    assert counts.tolist() == [int(c[0]) for _, c in alone]
    np.testing.assert_array_equal(hashes, np.concatenate([h for h, _ in alone]))


def test_exact_digest_is_blake2b_of_the_normalized_text_also_in_a_slice():
    normalized = mh.normalize(pa.array(["Hello, World!", "", "Café ２０２０", "two  words"]))
    expected = [hashlib.blake2b(s.encode("utf-8"), digest_size=16).digest() for s in normalized.to_pylist()]
    assert mh.exact_hashes(normalized) == expected
    assert mh.exact_hashes(normalized.slice(1, 2)) == expected[1:3]


def test_word_shingles_are_ngrams_and_short_texts_are_one_shingle():
    hashes, counts = mh.shingles(mh.normalized_tokens(pa.array([prose(12, 1), "two words", "", "!!!"])), SPEC)
    assert counts.tolist() == [8, 1, 0, 0]
    assert len(hashes) == 9 and hashes.dtype == np.uint64


def test_text_without_spaces_gets_character_shingles_and_latin_text_does_not():
    texts = pa.array(["今天天气很好我们去公园散步吧", "これは日本語の文章です", prose(30, 2), "Ok 今天天气很好我们去公园散步吧"])
    assert mh.uses_char_shingles(mh.normalized_tokens(texts), SPEC).tolist() == [True, True, False, True]
    _, counts = mh.shingles(mh.normalized_tokens(texts), SPEC)
    assert counts[0] == 14 - 5 + 1


def test_shingles_of_a_document_do_not_depend_on_its_batch():
    texts = [prose(40, 3), "今天天气很好我们去公园散步吧然后吃饭", prose(3, 4), "", prose(80, 5)]
    together = mh.shingle_sets(pa.array(texts), SPEC)
    for text, expected in zip(texts, together):
        np.testing.assert_array_equal(mh.shingle_sets(pa.array([text]), SPEC)[0], expected)


def test_jaccard_of_shingle_sets_matches_python_sets():
    a, b = prose(200, 6), prose(200, 6).replace("amber", "violet")
    sa, sb = mh.shingle_sets(pa.array([a, b]), SPEC)
    ta, tb = ({" ".join(t.split()[i:i + 5]) for i in range(len(t.split()) - 4)} for t in (a, b))
    assert abs(mh.jaccard(sa, sb) - len(ta & tb) / len(ta | tb)) < 1e-12
    assert mh.jaccard(sa, np.zeros(0, np.uint64)) == 0.0


def test_signature_agreement_estimates_jaccard_without_bias():
    rng = np.random.default_rng(7)
    common = rng.integers(0, 2**63, 1500, dtype=np.int64).astype(np.uint64)
    a = np.unique(np.concatenate([common, rng.integers(0, 2**63, 250, dtype=np.int64).astype(np.uint64)]))
    b = np.unique(np.concatenate([common, rng.integers(0, 2**63, 250, dtype=np.int64).astype(np.uint64)]))
    a, b = mh.splitmix64(a), mh.splitmix64(b)
    true = mh.jaccard(np.unique(a), np.unique(b))
    estimates = []
    for seed in range(40):
        sig = mh.signatures(np.concatenate([a, b]), np.array([len(a), len(b)]), 128, seed)
        estimates.append((sig[0] == sig[1]).mean())
    theory = np.sqrt(true * (1 - true) / 128)
    assert abs(np.mean(estimates) - true) < 3 * theory / np.sqrt(40)
    assert 0.7 * theory < np.std(estimates) < 1.3 * theory


def test_signature_tiling_does_not_change_signatures():
    hashes, counts = mh.shingles(mh.normalized_tokens(pa.array([prose(n, n) for n in (300, 5, 0, 90, 1200)])), SPEC)
    reference = mh.signatures(hashes, counts, 64, 3)
    np.testing.assert_array_equal(mh.signatures(hashes, counts, 64, 3, chunk=100, block=7), reference)
    assert (reference[2] == np.iinfo(np.uint64).max).all()


def test_band_hashes_change_only_in_the_band_whose_rows_differ():
    sig = mh.signatures(*mh.shingles(mh.normalized_tokens(pa.array([prose(100, 8)])), SPEC), 32, 1)
    other = sig.copy()
    other[0, 9] ^= np.uint64(1)
    bands = mh.band_hashes(np.vstack([sig, other]), 4, 8)
    assert bands.dtype == np.int64
    assert (bands[0] == bands[1]).tolist() == [True, False, True, True]
    assert len(set(bands[0].tolist())) == 4


def test_string_hashes_depend_only_on_the_string():
    words = pa.array(["", "ab", "ba", "a", "", "ab", "héllo", "x" * 300, ""])
    hashes = mh.hash_strings(words)
    assert hashes[1] == hashes[5] and len({int(h) for h in hashes[[1, 2, 3, 6, 7]]}) == 5
    np.testing.assert_array_equal(mh.hash_strings(words.slice(2, 5)), hashes[2:7])
