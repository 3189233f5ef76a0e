"""Pure MinHash functions over whole Arrow batches: normalise, shingle, sign, band, compare.

Everything here is vectorised with Arrow compute kernels and NumPy over a batch of documents, so the
Spark stage only wraps these functions in `mapInArrow`. The only per-document Python left is cheap
(one exact-match digest and one NFKC check per document, and the codepoints of documents in no-space
scripts); nothing loops over words in Python.

Hashes are 64-bit and depend only on the text and the seed, never on batch boundaries, so signatures
are identical however the data is partitioned.
"""
from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

U64 = np.uint64
MASK64 = (1 << 64) - 1
GOLDEN = U64(0x9E3779B97F4A7C15)
PAD = U64(0x6A09E667F3BCC909)  # stands for the missing tokens of a document shorter than one n-gram

# Scripts written without spaces between words: their documents are shingled by characters.
NO_SPACE_SCRIPTS = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}]"


@dataclass(frozen=True)
class ShingleSpec:
    """How a document becomes a set of shingles (the Spark config carries the same fields)."""

    ngram: int = 5
    char_ngram: int = 5
    # "auto": character n-grams for documents mostly in a no-space script; "always"/"never" force it.
    char_shingles: str = "auto"
    char_script_fraction: float = 0.3


def splitmix64(z: np.ndarray) -> np.ndarray:
    """A bijective 64-bit mixer (SplitMix64's finaliser); wraps modulo 2**64 by design."""
    z = z.astype(U64, copy=True)
    z ^= z >> U64(30)
    z *= U64(0xBF58476D1CE4E5B9)
    z ^= z >> U64(27)
    z *= U64(0x94D049BB133111EB)
    z ^= z >> U64(31)
    return z


def normalized_tokens(texts: pa.Array) -> pa.ListArray:
    """The words of each text once normalised: NFKC, lowercase, punctuation and format characters
    removed, every decimal digit to 0, split on whitespace.

    Shingling takes these lists as they are (splitting a joined text again would cost as much as the
    split itself); `normalize` joins them with single spaces. Punctuation is removed rather than spaced
    so that tokens stay whitespace tokens ("don't" -> "dont", "well-known" -> "wellknown").
    """
    t = _nfkc(pc.fill_null(pa.array(texts, pa.large_string()), ""))
    t = pc.utf8_lower(t)
    t = pc.replace_substring_regex(t, r"[\p{P}\p{Cf}]+", "")
    t = pc.replace_substring_regex(t, r"\p{Nd}", "0")
    return pc.utf8_split_whitespace(pc.utf8_trim_whitespace(t))


def normalize(texts: pa.Array) -> pa.Array:
    """The normalised text: `normalized_tokens` joined by single spaces.

    Exact duplicates are equal after this, and shingles are built from its tokens, so copies that differ
    only in case, Unicode form, punctuation, numbers or spacing hash the same.
    """
    return join_tokens(normalized_tokens(texts))


def join_tokens(tokens: pa.ListArray, separator: str = " ") -> pa.Array:
    """Each document's tokens joined by `separator` (with the default, the normalised text)."""
    return pc.binary_join(tokens, pa.scalar(separator, pa.large_string()))


def _nfkc(texts: pa.Array) -> pa.Array:
    """NFKC of each text, computed only where it changes something.

    Arrow's kernel rewrites every text it is given, while `unicodedata.is_normalized` answers in one
    quick C pass per document and most non-ASCII text (accents, quotes, other scripts) is already
    NFKC; ASCII always is. Arrow then normalises the few that are not. The check uses Python's Unicode
    database (14.0 on Python 3.11), so a character assigned later (such as Unicode 16's outlined digits)
    is left as it is in a text that is otherwise NFKC.
    """
    unicode = np.flatnonzero(~pc.string_is_ascii(texts).to_numpy(zero_copy_only=False))
    changes = np.zeros(len(texts), dtype=bool)
    if len(unicode):
        docs = texts.take(pa.array(unicode)).to_pylist()
        changes[unicode] = [not unicodedata.is_normalized("NFKC", doc) for doc in docs]
    if not changes.any():
        return texts
    mask = pa.array(changes)
    return pc.replace_with_mask(texts, mask, pc.utf8_normalize(texts.filter(mask), "NFKC"))


def exact_hashes(normalized: pa.Array) -> list[bytes]:
    """128-bit digest of each normalised text's UTF-8 bytes: the key of exact de-duplication.

    Digested straight from the Arrow buffer, without decoding each text into a Python string.
    """
    offsets, data = _utf8_buffers(normalized)
    return [hashlib.blake2b(data[start:end], digest_size=16).digest()
            for start, end in zip(offsets[:-1].tolist(), offsets[1:].tolist())]


def _utf8_buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The byte offsets (one more than strings) and the UTF-8 bytes they index, without copying."""
    strings = strings.cast(pa.large_string())
    offsets = np.frombuffer(strings.buffers()[1], np.int64)[strings.offset:strings.offset + len(strings) + 1]
    return offsets, np.frombuffer(strings.buffers()[2] or b"", np.uint8)


def uses_char_shingles(tokens: pa.ListArray, spec: ShingleSpec) -> np.ndarray:
    """Which documents (lists of normalised tokens) are shingled by characters: decided by script, since
    the language is not known yet."""
    n = len(tokens)
    if spec.char_shingles == "always":
        return np.ones(n, dtype=bool)
    if spec.char_shingles == "never":
        return np.zeros(n, dtype=bool)
    if spec.char_shingles != "auto":
        raise ValueError(f"char_shingles must be auto, always or never, got {spec.char_shingles!r}")
    out = np.zeros(n, dtype=bool)
    # The no-space scripts all lie above U+0800, where UTF-8 needs three or four bytes.
    candidates = _documents_with_bytes_from(tokens, 0xE0)
    if len(candidates):
        texts = join_tokens(tokens.take(pa.array(candidates)), "")
        no_space = pc.count_substring_regex(texts, NO_SPACE_SCRIPTS).to_numpy(zero_copy_only=False)
        chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False)
        out[candidates] = no_space >= spec.char_script_fraction * np.maximum(chars, 1)
    return out


def _documents_with_bytes_from(tokens: pa.ListArray, lowest: int) -> np.ndarray:
    """Indices of the documents with a UTF-8 byte >= `lowest` (0xE0 leads a three- or four-byte
    character), found in one pass over the tokens' buffer."""
    offsets, data = _utf8_buffers(pc.list_flatten(tokens))
    found = np.flatnonzero(data[offsets[0]:offsets[-1]] >= lowest) + offsets[0]
    return np.unique(np.searchsorted(offsets[_token_offsets(tokens)], found, side="right") - 1)


def _token_offsets(tokens: pa.ListArray) -> np.ndarray:
    """Where each document's tokens start in `pc.list_flatten(tokens)`, and where the last one ends."""
    offsets = tokens.offsets.to_numpy().astype(np.int64)
    return offsets - offsets[0]


def hash_strings(strings: pa.Array) -> np.ndarray:
    """64-bit hash of each string's UTF-8 bytes, vectorised over the Arrow buffers.

    A multilinear hash (byte i times a fixed pseudo-random 64-bit multiplier for position i, summed
    modulo 2**64), then mixed with the length: no Python per string.
    """
    offsets, data = _utf8_buffers(strings)
    lengths = np.diff(offsets)
    data = data[offsets[0]:offsets[-1]].astype(U64)
    out = np.zeros(len(strings), dtype=U64)
    nonempty = np.flatnonzero(lengths > 0)
    if len(nonempty):
        first = offsets[:-1] - offsets[0]
        position = np.arange(len(data)) - np.repeat(first, lengths)
        multipliers = splitmix64(np.arange(1, lengths.max() + 1, dtype=U64)) | U64(1)
        out[nonempty] = np.add.reduceat((data + U64(1)) * multipliers[position], first[nonempty])
    return splitmix64(out ^ (lengths.astype(U64) * GOLDEN))


def _word_tokens(tokens: pa.ListArray) -> tuple[np.ndarray, np.ndarray]:
    """Token hashes of every document (concatenated) and their lengths; one digest per distinct word,
    which costs less than hashing every occurrence."""
    lengths = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = pc.dictionary_encode(pc.list_flatten(tokens))
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    hashes = hash_strings(encoded.dictionary)[indices]
    # An empty text splits into one empty word: drop it (normalised texts have no other empty words).
    empty = pc.binary_length(encoded.dictionary).to_numpy(zero_copy_only=False) == 0
    if empty.any():
        words = ~empty[indices]
        hashes = hashes[words]
        lengths = np.diff(np.concatenate([[0], np.cumsum(words)])[_token_offsets(tokens)])
    return hashes, lengths


def _char_tokens(spaceless: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Codepoint hashes of every document (its tokens joined without spaces), and their lengths."""
    cps = [np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32) for s in spaceless]
    lengths = np.array([len(c) for c in cps], dtype=np.int64)
    flat = np.concatenate(cps).astype(U64) if cps else np.zeros(0, U64)
    return splitmix64(flat ^ U64(0xC3A5C85C97CB3127)), lengths


def _ngrams(tokens: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash every run of n consecutive tokens inside a document; a shorter document is one shingle.

    Returns the shingle hashes (concatenated) and the number per document.
    """
    n_docs = len(lengths)
    # Lay the documents out with n-1 padding tokens after each, so that every n-gram is a window of
    # consecutive slots and a shorter document still has one window (its tokens, then padding).
    slot_start = np.cumsum(lengths + n - 1) - (lengths + n - 1)
    padded = np.full(len(tokens) + n_docs * (n - 1) + n, PAD, dtype=U64)
    padded[np.repeat(slot_start - (np.cumsum(lengths) - lengths), lengths) + np.arange(len(tokens))] = tokens
    windows = len(padded) - n + 1
    h = padded[:windows].copy()
    for k in range(1, n):
        h *= GOLDEN
        h += padded[k:k + windows]
    counts = np.where(lengths >= n, lengths - n + 1, (lengths > 0).astype(np.int64))
    first = np.repeat(slot_start - (np.cumsum(counts) - counts), counts) + np.arange(counts.sum())
    return splitmix64(h[first]), counts


def shingles(tokens: pa.ListArray, spec: ShingleSpec) -> tuple[np.ndarray, np.ndarray]:
    """64-bit shingle hashes of a batch of documents given as `normalized_tokens`: (hashes concatenated,
    count per document).

    Word n-grams, or character n-grams for documents in no-space scripts; a document with fewer tokens
    than n has one shingle (the whole text), an empty one has none.
    """
    char = uses_char_shingles(tokens, spec)
    n_docs = len(tokens)
    parts = []  # (document indices, shingle hashes, shingles per document) for words, then characters
    word_idx = np.flatnonzero(~char)
    if len(word_idx):
        tok, lens = _word_tokens(tokens)  # every document's: cheaper than taking the word documents out
        parts.append((word_idx, *_ngrams(tok[np.repeat(~char, lens)], lens[word_idx], spec.ngram)))
    char_idx = np.flatnonzero(char)
    if len(char_idx):
        tok, lens = _char_tokens(join_tokens(tokens.take(pa.array(char_idx)), "").to_pylist())
        h, counts = _ngrams(tok, lens, spec.char_ngram)
        parts.append((char_idx, splitmix64(h ^ U64(0x2545F4914F6CDD1D)), counts))
    counts = np.zeros(n_docs, dtype=np.int64)
    seg_start = np.zeros(n_docs, dtype=np.int64)  # where each document's shingles sit in `flat`
    base = 0
    for idx, h, c in parts:
        counts[idx] = c
        seg_start[idx] = base + np.cumsum(c) - c
        base += len(h)
    flat = np.concatenate([h for _, h, _ in parts]) if parts else np.zeros(0, U64)
    out_start = np.cumsum(counts) - counts
    gather = np.repeat(seg_start - out_start, counts) + np.arange(counts.sum())
    return flat[gather], counts


def shingle_sets(texts: pa.Array, spec: ShingleSpec) -> list[np.ndarray]:
    """The distinct shingle hashes of each text (sorted): what verification compares."""
    h, counts = shingles(normalized_tokens(texts), spec)
    return [np.unique(part) for part in np.split(h, np.cumsum(counts)[:-1])]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted distinct hash arrays; two empty sets are not similar."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers (odd) and offsets of the hash family h -> a*h + b (mod 2**64), from the seed."""
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(0, 2**64, size=num_perm, dtype=U64, endpoint=False) | U64(1)
    b = rng.integers(0, 2**64, size=num_perm, dtype=U64, endpoint=False)
    return a, b


def signatures(hashes: np.ndarray, counts: np.ndarray, num_perm: int, seed: int,
               chunk: int = 1 << 14, block: int = 32) -> np.ndarray:
    """MinHash signatures (documents x num_perm, uint64) of shingle hashes grouped by `counts`.

    The shingle hashes are already uniformly mixed, so a multiply-add per permutation orders them
    independently enough for min-wise sampling (the tests check the estimate's bias and spread).
    Work goes in cache-sized tiles (about `chunk` shingles x `block` permutations), which is ten times
    faster than one large matrix. Documents without shingles get all-ones rows (they are never banded).
    """
    a, b = permutations(num_perm, seed)
    out = np.full((num_perm, len(counts)), np.iinfo(U64).max, dtype=U64)
    ends = np.cumsum(counts)
    starts = ends - counts
    docs = np.flatnonzero(counts > 0)
    i = 0
    while i < len(docs):
        j = max(i + 1, int(np.searchsorted(ends[docs], starts[docs[i]] + chunk, side="right")))
        tile_docs = docs[i:j]
        lo_shingle = starts[tile_docs[0]]
        tile = hashes[lo_shingle:ends[tile_docs[-1]]]
        offsets = starts[tile_docs] - lo_shingle
        for p in range(0, num_perm, block):
            values = a[p:p + block, None] * tile[None, :]
            values += b[p:p + block, None]
            out[p:p + block, tile_docs] = np.minimum.reduceat(values, offsets, axis=1)
        i = j
    return np.ascontiguousarray(out.T)


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit hash per band of `rows` signature values (documents x bands, int64 for Spark).

    The band index is mixed in, so equal values in different bands never share a bucket.
    """
    if bands * rows > sig.shape[1]:
        raise ValueError(f"bands*rows = {bands * rows} exceeds num_perm = {sig.shape[1]}")
    out = np.empty((sig.shape[0], bands), dtype=U64)
    for i in range(bands):
        h = np.full(sig.shape[0], U64(((i + 1) * int(GOLDEN)) & MASK64), dtype=U64)
        for j in range(i * rows, (i + 1) * rows):
            h = splitmix64(h * GOLDEN + sig[:, j])
        out[:, i] = h
    return out.view(np.int64)
