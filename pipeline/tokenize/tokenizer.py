"""Byte-level BPE: train on a bounded sample, encode Arrow batches, and the config for the tokenize stage."""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pyarrow as pa

EOS = "<|endoftext|>"


@dataclass
class TokenizeConfig:
    # An existing tokenizer.json to use instead of training one.
    tokenizer: str = ""
    # Vocabulary size the BPE is trained to, its 256 byte tokens and EOS included (unused with `tokenizer`);
    # shards hold uint16 tokens up to 65,536, else uint32.
    vocab_size: int = 32_768
    min_frequency: int = 2  # the BPE merges only pairs seen at least this often in its training sample
    # The BPE is trained on at most this many documents (chosen by a seeded hash of id, so the sample is the
    # same on any cluster), each cut to `train_chars_per_doc`: the driver never holds more than that. 10,000
    # documents compress held-out text within 0.2% of what 20,000 give, for under half the training time
    # (benchmarks/RESULTS.md, "Whole pipeline").
    train_docs: int = 10_000
    train_chars_per_doc: int = 20_000  # leading characters of each sampled document the BPE trains on
    # Tokens per training sample: documents, each ending in EOS, are concatenated and cut into samples of
    # exactly this many (a shard's last may be shorter).
    sample_tokens: int = 2048
    # Bytes of tokens per shard aimed at: a split gets ceil(estimated tokens x token size / shard_bytes)
    # shards, the tokens estimated from the text's bytes and the sample's bytes per token.
    shard_bytes: int = 64 * 1_048_576
    val_fraction: float = 0.01  # share of documents in the val split, chosen by a hash of id (not seeded)
    # Seeds the BPE's training sample and each document's shard and place in it (the val split does not
    # depend on it).
    seed: int = 1234


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2):
    """A GPT-2-style byte-level BPE with `<|endoftext|>` as id 0; lossless on any UTF-8 text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tokenizer(json_str: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(json_str)


@functools.lru_cache(maxsize=2)
def shared_tokenizer(json_str: str):
    """One parsed tokenizer per process for read-only encoding: Spark reuses Python workers across tasks,
    and parsing a 32k vocabulary costs about half a second."""
    return load_tokenizer(json_str)


def eos_id(tok) -> int:
    i = tok.token_to_id(EOS)
    if i is None:
        raise ValueError(f"tokenizer has no {EOS} token")
    return i


def encode_texts(tok, texts: list[str], dtype: np.dtype) -> list[np.ndarray]:
    """Token arrays with EOS appended to every document. `encode_batch_fast` (Rust threads, as
    `encode_batch`) skips the character offsets, which shards do not keep: the same ids, faster (16% in
    benchmarks/pipeline_speed.py with its 32k tokenizer)."""
    eos = eos_id(tok)
    out = []
    for enc in tok.encode_batch_fast(texts, add_special_tokens=False):
        ids = np.empty(len(enc.ids) + 1, dtype=dtype)
        ids[:-1] = enc.ids
        ids[-1] = eos
        out.append(ids)
    return out


def decode_documents(tok, docs: dict[str, np.ndarray]) -> dict[str, str]:
    """Text of documents rebuilt from shards; each must end with exactly one EOS, which is dropped."""
    eos = eos_id(tok)
    ids = sorted(docs)
    for doc_id in ids:
        tokens = docs[doc_id]
        if len(tokens) == 0 or tokens[-1] != eos or (tokens[:-1] == eos).any():
            raise ValueError(f"document {doc_id}: expected exactly one EOS token, at its end")
    texts = tok.decode_batch([docs[i][:-1].tolist() for i in ids], skip_special_tokens=False)
    return dict(zip(ids, texts))


def split_of(ids: list[str], val_fraction: float) -> list[str]:
    """'val' for a stable hash-chosen fraction of document ids, else 'train' (same on every machine)."""
    cut = int(round(val_fraction * 1_000_000))
    return [
        "val" if int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "big") % 1_000_000 < cut else "train"
        for i in ids
    ]


def utf8_lengths(texts: pa.Array) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.binary_length(texts.cast(pa.binary())).to_numpy(zero_copy_only=False)
