"""Property test of the clean stage on hostile JSONL (hypothesis, through real Spark): surrogates and control
characters in any field, ids reused within and across files, huge and empty values. Every line is counted
once (`input = kept + dropped + rejected`, input being the lines written), and every unique document
survives clean, under an id no other kept document carries."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import config as config_lib
from pipeline import stages
from pipeline.stages.config import PipelineConfig

MAX_TEXT_BYTES = 2000
FIELDS = ("id", "source", "url", "created")
# Characters a careless producer leaves in any field: controls, a BOM, separators, combining marks.
ODD = st.sampled_from(["\x00", "\x07", "\x1b", "\ufeff", "\u2028", "\u0301", "\t", "\r", "", " ", "#", "?", "@"])
WORD = st.sampled_from(["harbour", "lantern", "orchard", "valley", "market", "storm", "bread", "river", "north"])


@st.composite
def field_value(draw) -> str:
    return draw(st.one_of(st.just(""), st.text(max_size=12), st.lists(ODD, max_size=3).map("".join)))


@st.composite
def line(draw, n: int) -> tuple[str, bool]:
    """One JSONL line and whether it is a document clean must keep (the n-th: `doc<n>` is in its text)."""
    kind = draw(st.sampled_from(["good"] * 5 + ["surrogate", "huge", "empty", "null", "array", "broken"]))
    record = {f: draw(field_value()) for f in FIELDS if draw(st.booleans())}
    record["id"] = draw(st.sampled_from(["a", "b", "a\x00", "", "x" * 300]))  # reused, odd and long ids
    words = " ".join(draw(st.lists(WORD, min_size=3, max_size=30)))
    record["text"] = f"doc{n} {draw(ODD)}{words}{draw(ODD)} doc{n}"
    if kind == "surrogate":
        record[draw(st.sampled_from(["text", *FIELDS]))] = "x\ud800y"
    elif kind == "huge":
        record["text"] = "doc " * MAX_TEXT_BYTES
    elif kind == "empty":
        record["text"] = draw(st.sampled_from(["", "   ", "\x00\x07"]))
    elif kind == "null":
        record["text"] = None
    if kind == "array":
        return json.dumps([record]), False
    if kind == "broken":
        return json.dumps(record)[:-2], False
    return json.dumps(record), kind == "good"


@st.composite
def corpus(draw) -> list[list[tuple[str, bool]]]:
    files, n = [], 0
    for _ in range(draw(st.integers(1, 3))):
        size = draw(st.integers(0, 8))
        files.append([draw(line(n + k)) for k in range(size)])
        n += size
    return files


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(files=corpus())
def test_every_hostile_line_is_counted_once_and_every_unique_document_survives_clean(spark, files):
    root = Path(tempfile.mkdtemp())
    try:
        for k, lines in enumerate(files):
            (root / "in").mkdir(exist_ok=True)
            (root / "in" / f"part-{k}.jsonl").write_text("".join(text + "\n" for text, _ in lines), encoding="utf-8")
        if not any(files):
            return
        cfg = config_lib.load(PipelineConfig, overrides=[f"clean.reader.max_text_bytes={MAX_TEXT_BYTES}"])
        stats = stages.run("clean", spark, str(root / "in"), str(root / "out"), cfg)

        written = sum(len(lines) for lines in files)
        assert stats["input"] == written
        assert stats["kept"] + sum(stats["dropped"].values()) + sum(stats["rejected"].values()) == written
        kept = [row for part in sorted((root / "out" / "data").glob("*.parquet"))
                for row in pq.read_table(part, columns=["id", "text"]).to_pylist()]
        expected = {f"doc{n}" for n, (_, good) in enumerate(ln for lines in files for ln in lines) if good}
        assert sorted(row["text"].split()[0] for row in kept) == sorted(expected)
        assert len({row["id"] for row in kept}) == len(kept)
    finally:
        shutil.rmtree(root)
