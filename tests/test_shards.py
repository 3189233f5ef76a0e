"""The token-shard format: deterministic bytes, lossless packing, readable by plain webdataset, checked."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile

import numpy as np
import pytest

from pipeline.tokenize.shards import (
    ShardError,
    build_manifest,
    iter_shard,
    UNKNOWN_LANG,
    pack_documents,
    piece_languages,
    read_manifest,
    shard_documents,
    verify_shard,
    write_shard,
)

EOS = 0


def _docs(n: int = 40, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        body = rng.integers(1, 70000, size=int(rng.integers(1, 90)))
        docs.append((f"doc-{i}", np.append(body, EOS).astype(np.uint32)))
    return docs


def _shard_bytes(docs, sample_tokens=32, shard_index=3, dtype="uint32") -> tuple[bytes, dict]:
    buf = io.BytesIO()
    info = write_shard(buf, pack_documents(docs, sample_tokens), shard_index, dtype)
    return buf.getvalue(), info


def test_same_input_gives_identical_bytes_and_reported_sha256():
    a, info_a = _shard_bytes(_docs())
    b, info_b = _shard_bytes(_docs())
    assert a == b
    assert info_a == info_b
    assert info_a["sha256"] == hashlib.sha256(a).hexdigest()
    assert info_a["bytes"] == len(a)
    assert info_a["tokens"] == sum(len(t) for _, t in _docs())


def test_tar_headers_carry_no_machine_state_and_members_are_sorted():
    data, _ = _shard_bytes(_docs())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:2] == ["000003000000.json", "000003000000.tokens.npy"]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644)
    assert data[257:263] == b"ustar\x00"


def test_packing_round_trips_every_document_through_the_spans():
    docs = _docs(60, seed=1)
    data, info = _shard_bytes(docs, sample_tokens=50)
    samples = list(iter_shard(data, "t.tar"))
    assert all(len(t) == 50 for _, t, _ in samples[:-1]) and 0 < len(samples[-1][1]) <= 50
    assert len(samples) == info["samples"]
    rebuilt = shard_documents(samples)
    assert list(rebuilt) == [d for d, _ in docs]
    for doc_id, tokens in docs:
        np.testing.assert_array_equal(rebuilt[doc_id], tokens)


def test_decoding_rebuilt_documents_checks_the_single_trailing_eos():
    from pipeline.tokenize.tokenizer import decode_documents, encode_texts, train_bpe

    tok = train_bpe(["the quick brown fox", "jumps over the lazy dog"] * 20, vocab_size=300)
    texts = {"a": "the quick fox", "b": "lazy dog jumps"}
    encoded = dict(zip(texts, encode_texts(tok, list(texts.values()), np.dtype("uint16"))))
    assert decode_documents(tok, encoded) == texts
    with pytest.raises(ValueError, match="document b"):
        decode_documents(tok, {**encoded, "b": encoded["b"][:-1]})


def test_encoded_documents_are_encode_batch_ids_plus_one_eos():
    from pipeline.tokenize.tokenizer import encode_texts, eos_id, train_bpe

    tok = train_bpe(["the quick brown fox", "jumps over the lazy dog", "naïve café 東京"] * 20, vocab_size=300)
    texts = ["the quick fox", "", "naïve 東京 café\n\n  spaced"]
    arrays = encode_texts(tok, texts, np.dtype("uint16"))
    for array, enc in zip(arrays, tok.encode_batch(texts, add_special_tokens=False)):
        assert array.dtype == np.uint16
        assert array.tolist() == enc.ids + [eos_id(tok)]


def test_packing_round_trips_text_through_a_real_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = [f"Document {i}: the quick brown fox jumps over {i * 7} lazy dogs. " * (i % 5 + 1) for i in range(30)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    eos = tok.token_to_id("<|endoftext|>")
    docs = [(f"d{i}", np.array(tok.encode(t).ids + [eos])) for i, t in enumerate(texts)]
    data, _ = _shard_bytes(docs, sample_tokens=40, dtype="uint16")
    pieces: dict[str, list[int]] = {}
    for _, tokens, meta in iter_shard(data):
        assert tokens.dtype == np.uint16
        for doc_id, (s, e) in zip(meta["ids"], meta["spans"]):
            pieces.setdefault(doc_id, []).extend(tokens[s:e].tolist())
    for i, text in enumerate(texts):
        ids = pieces[f"d{i}"]
        assert ids[-1] == eos
        assert tok.decode(ids[:-1]) == text


def test_plain_webdataset_reads_the_shards_without_project_code(tmp_path):
    import webdataset as wds

    docs = _docs(30, seed=2)
    data, info = _shard_bytes(docs, sample_tokens=25, shard_index=0)
    path = tmp_path / "shard-000000.tar"
    path.write_bytes(data)
    samples = list(wds.WebDataset(str(path), shardshuffle=False).decode())
    assert len(samples) == info["samples"]
    assert samples[0]["__key__"] == "000000000000"
    ours = list(iter_shard(data))
    for sample, (key, tokens, meta) in zip(samples, ours):
        assert sample["__key__"] == key
        assert sample["json"] == meta
        np.testing.assert_array_equal(sample["tokens.npy"], tokens)


def test_writer_refuses_ids_that_do_not_fit_the_dtype():
    with pytest.raises(ShardError, match="out of range"):
        write_shard(io.BytesIO(), [(np.array([70000, 0]), {"ids": ["a"], "spans": [[0, 2]]})], 0, "uint16")


def test_reader_refuses_member_names_that_escape(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        payload = b"{}"
        info = tarfile.TarInfo("../evil.json")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(ShardError, match="bad.tar: unsafe member name '../evil.json'"):
        list(iter_shard(buf.getvalue(), "bad.tar"))


def _manifest(tmp_path, shards_data):
    records = {"train": [], "val": []}
    for split, idx, data, info in shards_data:
        url = f"shards/{split}/shard-{idx:06d}.tar"
        (tmp_path / url).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / url).write_bytes(data)
        records[split].append({**info, "url": url, "documents": 5, "text_bytes": 100})
    manifest = build_manifest(
        tokenizer={"path": "tokenizer.json", "sha256": "0" * 64, "vocab_size": 70000, "eos_id": EOS},
        dtype="uint32", sample_tokens=32, seed=7, splits=records, config={"sample_tokens": 32},
    )
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def test_manifest_sums_splits_and_reads_back(tmp_path):
    shards = [("train", i, *_shard_bytes(_docs(10, seed=i), shard_index=i)) for i in range(2)]
    shards.append(("val", 0, *_shard_bytes(_docs(5, seed=9), shard_index=0)))
    written = _manifest(tmp_path, shards)
    m = read_manifest(str(tmp_path / "manifest.json"))
    assert m.splits["train"].tokens == sum(s[3]["tokens"] for s in shards[:2]) == written["splits"]["train"]["tokens"]
    assert m.splits["train"].text_bytes == 200
    assert m.dtype == "uint32" and m.vocab_size == 70000 and m.eos_id == EOS
    shard = m.splits["val"].shards[0]
    data = (tmp_path / shard.url).read_bytes()
    verify_shard(data, shard.sha256, shard.url)
    assert m.resolve(shard.url) == f"{tmp_path}/shards/val/shard-000000.tar"


def test_corrupted_shard_fails_with_an_error_naming_it(tmp_path):
    data, info = _shard_bytes(_docs())
    corrupt = bytearray(data)
    corrupt[1000] ^= 0xFF
    with pytest.raises(ShardError, match=r"shard shards/train/shard-000003\.tar: sha256 mismatch"):
        verify_shard(bytes(corrupt), info["sha256"], "shards/train/shard-000003.tar")


def test_manifest_refuses_shard_urls_outside_its_directory(tmp_path):
    data, info = _shard_bytes(_docs(5))
    manifest = build_manifest(
        tokenizer={"path": "tokenizer.json", "sha256": "0" * 64, "vocab_size": 70000, "eos_id": EOS},
        dtype="uint32", sample_tokens=32, seed=7, splits={"train": []},
    )
    manifest["splits"]["train"]["shards"] = [{**info, "url": "../elsewhere.tar", "documents": 1, "text_bytes": 1}]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ShardError, match="must be relative to the manifest"):
        read_manifest(str(tmp_path / "manifest.json"))


def test_documents_with_a_language_keep_it_and_their_text_bytes_on_every_piece():
    docs = [(doc_id, tokens, ["en", "de", None][i % 3], 100 + i) for i, (doc_id, tokens) in enumerate(_docs())]
    data, _ = _shard_bytes(docs, sample_tokens=16)
    lang, text_bytes = {}, {}
    for _, tokens, meta in iter_shard(data):
        assert len(meta["langs"]) == len(meta["text_bytes"]) == len(meta["ids"])
        for doc_id, (piece_lang, start, end, n) in zip(meta["ids"], piece_languages(meta)):
            assert lang.setdefault(doc_id, piece_lang) == piece_lang
            text_bytes[doc_id] = text_bytes.get(doc_id, 0) + n
    assert lang == {d[0]: d[2] or UNKNOWN_LANG for d in docs}
    assert text_bytes == {d[0]: d[3] for d in docs}


def test_a_version_1_sample_reads_as_unknown_language():
    data, _ = _shard_bytes(_docs())
    for _, tokens, meta in iter_shard(data):
        assert "langs" not in meta
        assert {p[0] for p in piece_languages(meta)} == {UNKNOWN_LANG}
