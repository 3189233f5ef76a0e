"""Weighted mixtures of sources: the allocation keeps every source within one window of its share at every
step, one source keeps the documented order of a single manifest, and under real torchrun (gloo on CPU) a
3:1 mixture of two corpora logs tokens and bits per byte by source and by language, survives a killed worker
and continues its global order on another world size."""
from __future__ import annotations

import json
import math
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipeline.tokenize.shards import iter_shard, read_manifest
from synthetic import (MODULES, REPO, STEPS, TORCHRUN, WRAPPER, docstrings, doc_language, in_namespace,
                       make_dataset, run_killing_a_worker)
from trainer.config import load
from trainer.data import Mixture, ShardStore, TrainWindows, allocate, micro_positions, step_layout
from trainer.train import RunError, train

SMALL = ["threading", "socket", "tempfile", "enum", "random"]  # a corpus of about 95 windows: it repeats
LANGUAGES = ("en", "fr")
ARGS = ["--preset", "tiny", "--steps", str(STEPS), "--set", "data.weights=3,1"]


@pytest.mark.parametrize("weights,batch", [([3, 1], 16), ([1, 1, 1], 16), ([0.5, 0.3, 0.2], 10),
                                           ([61409, 3332], 480), ([7, 2, 1], 7)])
def test_allocation_stays_within_one_window_of_every_target_and_never_takes_one_back(weights, batch):
    exact = [Fraction(w) for w in weights]
    before = [0] * len(weights)
    for step in range(400):
        counts = allocate(step, batch, exact)
        assert sum(counts) == step * batch
        for c, w in zip(counts, exact):
            assert abs(c - step * batch * w / sum(exact)) < 1
        assert all(c >= b for c, b in zip(counts, before))
        before = counts


def test_a_step_layout_takes_each_sources_next_windows_once_and_spreads_them_over_the_step():
    source, at = step_layout([30, 10], [42, 14])
    assert len(source) == 16
    assert sorted(at[source == 0].tolist()) == list(range(30, 42))
    assert sorted(at[source == 1].tolist()) == list(range(10, 14))
    # 12 and 4 windows over 16 positions: each quarter of the step holds 3 of the first and 1 of the second.
    assert [int((source[q * 4 : q * 4 + 4] == 1).sum()) for q in range(4)] == [1, 1, 1, 1]


def test_a_source_given_less_than_a_window_per_step_is_refused_naming_it(corpora):
    stores = [ShardStore(read_manifest(str(m)), "train") for m in corpora.values()]
    with pytest.raises(ValueError, match="source small gets 0.667 windows per step"):
        Mixture(["big", "small"], stores, [23, 1], 64, 16, 1234)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    """Two corpora sharing one tokenizer: the docstrings of most modules, and of a few others."""
    root = tmp_path_factory.mktemp("corpora")
    big = [m for m in MODULES if m not in SMALL]
    return {"big": make_dataset(root / "big" / "tokenize", modules=big, languages=LANGUAGES, train_shards=3,
                                val_shards=1),
            "small": make_dataset(root / "small" / "tokenize", modules=SMALL, languages=LANGUAGES, train_shards=2,
                                  val_shards=1)}


def _documented_order(manifest: Path, block: int, batch: int, seed: int, positions: range) -> list[tuple[int, int]]:
    """(shard, window) at each global position of one manifest, as trainer/data.py's docstring defines it."""
    shards = read_manifest(str(manifest)).splits["train"].shards
    per_shard = [(s.tokens - 1) // block for s in shards]
    epoch_length = sum(per_shard) // batch * batch
    out = []
    for p in positions:
        epoch, offset = divmod(p, epoch_length)
        for shard in np.random.default_rng([seed, epoch]).permutation(len(shards)):
            if offset < per_shard[shard]:
                out.append((int(shard), int(np.random.default_rng([seed, epoch, shard]).permutation(per_shard[shard])[offset])))
                break
            offset -= per_shard[shard]
    return out


def test_one_source_keeps_the_documented_order_of_a_single_manifest(corpora):
    manifest = corpora["big"]
    store = ShardStore(read_manifest(str(manifest)), "train")
    mixture = Mixture(["big"], [store], [1.0], 64, 16, 1234)
    epoch_length = mixture.sources[0].epoch_length
    positions = range(epoch_length - 32, epoch_length + 32)  # across an epoch's end
    want = _documented_order(manifest, 64, 16, 1234, positions)
    streams = {i: store.stream(i) for i in range(len(store.shards))}
    for p, (shard, window) in zip(positions, want):
        x, y = mixture.batch(p, 1)
        assert x[0].tolist() == streams[shard][window * 64 : window * 64 + 64].astype(int).tolist()
    assert mixture.state(epoch_length + 16) == {"epoch": 1, "position": 16}
    assert mixture.position({"epoch": 1, "position": 16}) == epoch_length + 16


def _window_sources(corpora: dict[str, Path]) -> dict[bytes, str]:
    """Every training window of every source, by its tokens, to tell which source a batch row came from."""
    out = {}
    for name, manifest in corpora.items():
        windows = TrainWindows(ShardStore(read_manifest(str(manifest)), "train"), 64, 1, 0)
        for i in range(len(windows.store.shards)):
            stream = windows.store.stream(i).astype(np.int64)
            for w in range(windows.per_shard[i]):
                out[stream[w * 64 : w * 64 + 64].tobytes()] = name
    return out


def test_the_batches_two_ranks_take_hold_each_source_within_one_window_of_its_share_at_every_step(corpora):
    names = list(corpora)
    stores = [ShardStore(read_manifest(str(corpora[n])), "train") for n in names]
    mixture = Mixture(names, stores, [3, 1], 64, 16, 1234)
    sources = _window_sources(corpora)
    taken = {n: 0 for n in names}
    small_epoch = mixture.sources[1].epoch_length
    for step in range(60):
        for rank in range(2):
            for m in range(2):  # micro 4 x world 2 x accum 2 = 16
                x, _ = mixture.batch(micro_positions(step * 16, m, rank, 2, 4), 4)
                for row in x:
                    taken[sources[row.numpy().astype(np.int64).tobytes()]] += 1
        done = step + 1
        assert abs(taken["big"] - done * 12) < 1 and abs(taken["small"] - done * 4) < 1
    assert taken["small"] > small_epoch  # the small source ran past its first epoch
    assert mixture.epochs(60)[1] == taken["small"] / small_epoch


def test_a_small_source_repeats_every_window_once_per_epoch(corpora):
    names = list(corpora)
    stores = [ShardStore(read_manifest(str(corpora[n])), "train") for n in names]
    mixture = Mixture(names, stores, [1, 3], 64, 16, 1234)
    small = mixture.sources[1]
    seen: list[int] = []
    for step in range(2 * small.epoch_length // 12 + 1):
        source, at = mixture.layout(step)
        seen += sorted(at[source == 1].tolist())
    assert seen[: 2 * small.epoch_length] == list(range(2 * small.epoch_length))
    first, second = (small.rows(np.arange(e * small.epoch_length, (e + 1) * small.epoch_length))[0] for e in (0, 1))
    key = lambda rows: sorted(r.tobytes() for r in rows)  # noqa: E731
    assert key(first) == key(second) and first.tobytes() != second.tobytes()  # same windows, reshuffled


def test_sources_with_different_tokenizers_are_refused_naming_them(corpora, tmp_path):
    other = make_dataset(tmp_path / "other" / "tokenize", vocab_size=512, modules=SMALL)
    with pytest.raises(RunError, match="sources big and other do not share one tokenizer"):
        train(load("tiny", overrides=["steps=1"]), [str(corpora["big"]), str(other)], tmp_path / "run")


def _run(nproc: int, corpora: dict[str, Path], out: Path, *extra: str) -> str:
    script = out.parent / "run_trainer.py"
    script.write_text(WRAPPER)
    data = [a for m in corpora.values() for a in ("--data", str(m))]
    cmd = [str(TORCHRUN), "--standalone", f"--nproc_per_node={nproc}", *extra, str(script), *data, "--out", str(out),
           *ARGS]
    proc = subprocess.run(in_namespace(cmd), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(corpora, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mixture") / "reference"
    _run(2, corpora, out)
    return out


def _val_bytes_by_language(corpora: dict[str, Path]) -> dict[str, int]:
    """UTF-8 bytes of every val document by the language make_dataset gave it, from the source texts."""
    texts = dict(docstrings())
    out: dict[str, int] = {}
    for manifest in corpora.values():
        root = manifest.parent
        for shard in json.loads(manifest.read_text())["splits"]["val"]["shards"]:
            ids = {i for _, _, meta in iter_shard((root / shard["url"]).read_bytes()) for i in meta["ids"]}
            for doc_id in ids:
                lang = doc_language(doc_id, LANGUAGES)
                out[lang] = out.get(lang, 0) + len(texts[doc_id].encode("utf-8"))
    return out


@pytest.mark.slow
def test_a_two_process_3_to_1_mixture_logs_tokens_and_bits_per_byte_by_source_and_language(corpora, reference):
    rows = _metrics(reference)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    for r in rows:
        windows = {name: tokens / 64 for name, tokens in r["tokens_by_source"].items()}
        assert abs(windows["big"] - r["step"] * 12) < 1 and abs(windows["small"] - r["step"] * 4) < 1
        assert sum(r["tokens_by_source"].values()) == r["tokens"]
    assert rows[-1]["epochs_by_source"]["small"] > 1 > rows[-1]["epochs_by_source"]["big"]

    evals = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in evals] == [10, 20, 30]
    manifests = {name: json.loads(m.read_text()) for name, m in corpora.items()}
    val_bytes = {name: m["splits"]["val"]["text_bytes"] for name, m in manifests.items()}
    lang_bytes = _val_bytes_by_language(corpora)
    assert sum(lang_bytes.values()) == sum(val_bytes.values())
    for r in evals:
        assert set(r["val_bpb_by_source"]) == {"big", "small"} and set(r["val_bpb_by_lang"]) == set(LANGUAGES)
        assert r["val_tokens"] == sum(m["splits"]["val"]["tokens"] for m in manifests.values())
        # Each breakdown splits the same nats over the same bytes as val_bpb.
        nats = r["val_bpb"] * math.log(2) * sum(val_bytes.values())
        assert sum(bpb * math.log(2) * val_bytes[n] for n, bpb in r["val_bpb_by_source"].items()) == pytest.approx(nats)
        assert sum(bpb * math.log(2) * lang_bytes[lang] for lang, bpb in r["val_bpb_by_lang"].items()) == \
            pytest.approx(nats)
        assert r["val_loss"] == pytest.approx(nats / r["val_tokens"])
    assert evals[-1]["val_bpb_by_source"]["big"] < evals[0]["val_bpb_by_source"]["big"]


@pytest.mark.slow
def test_a_mixture_whose_worker_is_killed_resumes_under_torchrun_to_the_same_loss_at_every_step(
        corpora, reference, tmp_path):
    out = tmp_path / "restarted"
    script = tmp_path / "run_trainer.py"
    script.write_text(WRAPPER)
    data = [a for m in corpora.values() for a in ("--data", str(m))]
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "--max-restarts=1", str(script), *data,
           "--out", str(out), *ARGS]
    text = run_killing_a_worker(cmd, out, tmp_path / "torchrun.log")
    assert "from scratch" in text and "resumed from step-000000" in text, text[-4000:]
    got, want = _metrics(out), _metrics(reference)
    assert [r["step"] for r in got] == list(range(1, STEPS + 1))
    assert [r["train_loss"] for r in got] == [r["train_loss"] for r in want]
    assert [r["tokens_by_source"] for r in got] == [r["tokens_by_source"] for r in want]
    assert [r.get("val_bpb_by_lang") for r in got] == [r.get("val_bpb_by_lang") for r in want]


@pytest.mark.slow
def test_a_mixture_resumed_on_one_process_continues_the_same_global_order(corpora, reference, tmp_path):
    out = tmp_path / "shrink"
    out.mkdir()
    (out / "checkpoints").mkdir()
    for name in ("step-00000010.pt",):
        (out / "checkpoints" / name).write_bytes((reference / "checkpoints" / name).read_bytes())
    stdout = _run(1, corpora, out)
    assert "world 1" in stdout and "resumed from step-00000010.pt" in stdout
    got = {r["step"]: r for r in _metrics(out)}
    want = {r["step"]: r for r in _metrics(reference)}
    assert sorted(got) == list(range(11, STEPS + 1))
    # The same global batches at every step, so the same losses up to float summation order.
    assert [got[s]["train_loss"] for s in got] == pytest.approx([want[s]["train_loss"] for s in got], rel=1e-5)
    assert [got[s]["tokens_by_source"] for s in got] == [want[s]["tokens_by_source"] for s in got]


def test_a_checkpoint_of_another_mixture_is_refused_naming_both(corpora, tmp_path):
    cfg = load("tiny", overrides=["steps=2", "ckpt_every=1", "eval.generate_tokens=0", "data.weights=3,1"])
    train(cfg, [str(m) for m in corpora.values()], tmp_path / "run")
    with pytest.raises(RunError, match=r"big \(weight 3.0\), small \(weight 1.0\), this run has big \(weight 1.0\)"):
        train(load("tiny", overrides=["steps=4", "data.weights=1,1", "eval.generate_tokens=0"]),
              [str(m) for m in corpora.values()], tmp_path / "run")
