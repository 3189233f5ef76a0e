"""Benchmark decontamination: the n-gram matching on batches, benchmark files, and the stage in the
pipeline (after dedupe, before tokenize) on the fixed input of the recorded-outputs test."""
from __future__ import annotations

import gzip
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import cli, config as config_lib
from pipeline.decontaminate import REASON, DecontaminateConfig, benchmark_ngrams, benchmark_texts, match_batch, words
from pipeline.stagedir import StageError
from pipeline.stages.config import PipelineConfig
from synthetic import ZH, document, near_copy

INPUT = Path(__file__).parent / "data" / "stage-outputs" / "input"


def _table(path: Path, cfg: DecontaminateConfig) -> tuple[np.ndarray, np.ndarray]:
    batch = benchmark_ngrams(str(path), 0, cfg)
    return batch.column("hash").to_numpy(), batch.column("benchmark").to_numpy()


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Word n-grams of the normalised text, as tuples: the matching rule without its hashing."""
    tokens = words(pa.array([text])).to_pylist()[0]
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def test_a_document_holding_13_benchmark_words_in_a_row_matches_and_12_do_not(tmp_path):
    rng = random.Random(3)
    item = document(rng, paragraphs=1)
    item_words = words(pa.array([item])).to_pylist()[0]
    (tmp_path / "quiz.jsonl").write_text(json.dumps({"text": item}) + "\n")
    cfg = DecontaminateConfig()
    hashes, benchmarks = _table(tmp_path / "quiz.jsonl", cfg)
    other = document(random.Random(4), paragraphs=1)
    texts = pa.array([f"{other} {' '.join(item_words[5:18])} {other}", f"{other} {' '.join(item_words[5:17])} {other}",
                      near_copy(item), other])
    found, shared = match_batch(texts, hashes, benchmarks, cfg)
    assert found.tolist() == [0, -1, 0, -1]
    assert shared[0] == 1 and shared[2] == len(_ngrams(item, 13) & _ngrams(near_copy(item), 13))


def test_scripts_without_spaces_match_on_13_segmented_words_not_on_a_shared_phrase(tmp_path):
    thai = ("นายกรัฐมนตรีกล่าวว่ารัฐบาลจะสร้างโรงเรียนใหม่ในทุกจังหวัดภายในปีหน้า เพื่อให้เด็กทุกคนได้เรียนหนังสือ"
            "ใกล้บ้าน และครูจะได้รับเงินเดือนเพิ่มขึ้นตามแผนการศึกษาแห่งชาติ")
    (tmp_path / "quiz.jsonl").write_text(json.dumps({"text": thai}) + "\n" + json.dumps({"text": ZH}) + "\n")
    cfg = DecontaminateConfig()
    hashes, benchmarks = _table(tmp_path / "quiz.jsonl", cfg)
    # The same 20-character opening ("the prime minister said that": four words), then other news.
    same_opening = "นายกรัฐมนตรีกล่าวว่าฝนตกหนักทำให้น้ำท่วมถนนหลายสายในเมืองหลวงเมื่อคืนนี้ ประชาชนควรติดตามข่าวสารอย่างใกล้ชิด"
    found, _ = match_batch(pa.array(["ข่าววันนี้ " + thai[:70] + " จบข่าว", same_opening,
                                     "前言。" + ZH[10:40] + "后记。", "完全不同的一段文字，没有任何共同之处。"]),
                           hashes, benchmarks, cfg)
    assert found.tolist() == [0, -1, 0, -1]
    assert _ngrams(same_opening, 4) & _ngrams(thai, 4) and not _ngrams(same_opening, 13) & _ngrams(thai, 13)


def test_tibetan_is_cut_at_its_syllable_marks_before_they_are_normalised_away(tmp_path):
    rng = random.Random(6)
    syllables = "བཀྲ ཤིས བདེ ལེགས ང ཚོ ཡི གེ སློབ གྲྭ ཆེན པོ ལ འགྲོ གི ཡོད རེད ཁྱེད རང སྐུ".split()
    item = "་".join(rng.choice(syllables) for _ in range(60))
    (tmp_path / "quiz.jsonl").write_text(json.dumps({"text": item}) + "\n")
    cfg = DecontaminateConfig()
    hashes, benchmarks = _table(tmp_path / "quiz.jsonl", cfg)
    other = "་".join(rng.choice(syllables) for _ in range(40))
    mid_line = other + "་" + item[len(item) // 3 :] + "།"  # the passage starts inside a run without spaces
    found, _ = match_batch(pa.array([mid_line, other]), hashes, benchmarks, cfg)
    assert found.tolist() == [0, -1]


def test_benchmark_files_join_the_named_fields_and_name_a_bad_line(tmp_path):
    path = tmp_path / "qa.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"question": "Q one", "answer": "A one"}\n\n{"question": "Q two"}\n'))
    with pytest.raises(ValueError, match=r"qa.jsonl.gz:3: a record needs the fields question, answer"):
        benchmark_texts(str(path), ["question", "answer"])
    pq.write_table(pa.table({"question": ["Q"], "answer": ["A"]}), tmp_path / "qa.parquet")
    assert benchmark_texts(str(tmp_path / "qa.parquet"), ["question", "answer"]) == ["Q\nA"]
    with pytest.raises(ValueError, match="no column text"):
        benchmark_texts(str(tmp_path / "qa.parquet"), ["text"])


def _rows(stage: Path, subdir: str = "data") -> list[dict]:
    listing = json.loads((stage / "_SUCCESS").read_text())["files"].get(subdir, [])
    return [r for p in listing for r in pq.read_table(stage / p).to_pylist()]


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory, fixed_input_run):
    """The default pipeline over the fixed input, and the same with a benchmark file holding one kept
    document's start verbatim, another lightly edited, and unrelated text; the second run resumes from the
    first one's stages up to dedupe (the same input and settings), so only what follows runs again."""
    root = tmp_path_factory.mktemp("decontaminate")
    plain_out, plain = fixed_input_run
    shutil.copytree(plain_out, root / "plain", ignore=shutil.ignore_patterns("decontaminate", "tokenize"))
    kept = _rows(root / "plain" / "dedupe")
    rng = random.Random(11)
    verbatim, edited = kept[3], kept[40]
    edited_words = edited["text"].split(" ")
    for i in range(0, len(edited_words), 25):  # lightly edited: one word in 25 changed
        edited_words[i] = "zebra"
    items = [{"question": verbatim["text"][:400], "answer": "B"},
             {"question": " ".join(edited_words), "answer": "C"},
             {"question": document(rng), "answer": "nowhere in the corpus"}]
    bench = root / "bench" / "quiz.jsonl"
    bench.parent.mkdir()
    bench.write_text("".join(json.dumps(item) + "\n" for item in items))
    cfg = config_lib.load(PipelineConfig, overrides=[f"decontaminate.benchmarks={bench.parent}",
                                                      "decontaminate.fields=question,answer"])
    shutil.copytree(root / "plain", root / "bench-run")
    decontaminated = cli.run_stages(spark, str(INPUT), str(root / "bench-run"), cfg, resume=True)
    return root, plain, decontaminated, items


def test_the_pipeline_runs_it_after_dedupe_and_drops_exactly_the_documents_sharing_a_13_gram(runs):
    root, plain, decontaminated, items = runs
    assert [s["stage"] for s in decontaminated] == ["clean", "filter", "dedupe", "decontaminate", "tokenize"]
    bench_ngrams = set().union(*(_ngrams(f"{i['question']}\n{i['answer']}", 13) for i in items))
    before = _rows(root / "bench-run" / "dedupe")
    expected = sorted(d["id"] for d in before if _ngrams(d["text"], 13) & bench_ngrams)
    stats = decontaminated[3]
    assert len(expected) >= 2 and stats["dropped"] == {REASON: len(expected)}
    assert stats["benchmarks"]["quiz"]["documents"] == len(expected) and stats["benchmarks"]["quiz"]["ngrams"] > 0
    dropped = _rows(root / "bench-run" / "decontaminate", "dropped")
    assert sorted(d["id"] for d in dropped) == expected
    assert all(d["reason"] == REASON and d["benchmark"] == "quiz" and d["benchmark_ngrams"] > 0 for d in dropped)
    # Everything else is what a run without decontamination gives.
    assert _rows(root / "bench-run" / "decontaminate") == [d for d in before if d["id"] not in expected]
    assert decontaminated[-1]["input"] == plain[-1]["input"] - len(expected)


def test_mark_mode_keeps_every_document_and_names_the_benchmark(spark, runs, tmp_path):
    root, _, decontaminated, _ = runs
    cfg = config_lib.load(PipelineConfig, overrides=[f"decontaminate.benchmarks={root / 'bench'}",
                                                      "decontaminate.fields=question,answer", "decontaminate.mode=mark"])
    from pipeline import stages

    stats = stages.run("decontaminate", spark, str(root / "bench-run" / "dedupe"), str(tmp_path / "marked"), cfg)
    rows = _rows(tmp_path / "marked")
    assert stats["kept"] == stats["input"] and stats["dropped"] == {}
    assert sum(r["benchmark"] == "quiz" for r in rows) == decontaminated[3]["benchmarks"]["quiz"]["documents"]


def test_the_stage_refuses_to_run_without_benchmarks_or_with_a_missing_file(spark, runs, tmp_path):
    from pipeline import stages

    root = runs[0]
    with pytest.raises(StageError, match="decontaminate.benchmarks is empty"):
        stages.run("decontaminate", spark, str(root / "plain" / "dedupe"), str(tmp_path / "a"), PipelineConfig())
    missing = config_lib.load(PipelineConfig, overrides=[f"decontaminate.benchmarks={tmp_path / 'nope.jsonl'}"])
    with pytest.raises(StageError, match="nope.jsonl does not exist"):
        stages.run("decontaminate", spark, str(root / "plain" / "dedupe"), str(tmp_path / "b"), missing)
