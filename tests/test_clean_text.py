"""Text normalisation over Arrow arrays."""
from __future__ import annotations

import pyarrow as pa

from pipeline.clean.text import TextConfig, normalize_text


def clean(*texts, cfg=TextConfig()):
    return normalize_text(pa.array(list(texts), pa.string()), cfg).to_pylist()


def test_decomposed_and_composed_forms_become_equal():
    assert clean("Cafe\u0301") == clean("Café") == ["Café"]


def test_control_and_zero_width_characters_are_removed_but_newlines_stay():
    assert clean("a\x00b\u200bc\x07\nd\ufeff") == ["abc\nd"]


def test_whitespace_runs_collapse_and_lines_are_trimmed():
    assert clean("  one \t\u00a0 two  \r\n  three\u3000 ") == ["one two\nthree"]


def test_blank_line_runs_keep_one_paragraph_break():
    assert clean("para one\n\n\n\n\npara two\n \n \npara three") == ["para one\n\npara two\n\npara three"]


def test_nulls_stay_null_and_whitespace_only_becomes_empty():
    assert clean(None, " \n\t \n") == [None, ""]
