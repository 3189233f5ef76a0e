"""The default demo corpus: gathered from this machine, well-formed, deterministic and large enough."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pipeline import default_corpus
from pipeline.default_corpus import build, module_docstrings, troff_to_text

KEYS = {"id", "text", "source", "url", "created"}


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for shard in sorted(out.glob("docs-*.jsonl.gz")) for line in gzip.open(shard)]


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("corpus")
    return out, build(out, max_docs=300)


def test_small_build_writes_valid_jsonl_shards_with_unique_ids_and_the_schema_keys(small_corpus):
    out, counts = small_corpus
    records = _records(out)
    assert len(records) == sum(counts.values()) == 300
    assert all(set(r) == KEYS for r in records)
    assert len({r["id"] for r in records}) == len(records)
    assert all(len(r["id"]) == 12 and r["url"].startswith("file:///") and r["created"] is None for r in records)
    assert all(len(r["text"].split()) >= default_corpus.MIN_WORDS for r in records)
    assert len(list(out.glob("docs-*.jsonl.gz"))) == default_corpus.SHARDS
    assert "| source | documents |" in (out / "README.md").read_text()


def test_small_build_mixes_at_least_two_source_kinds(small_corpus):
    _, counts = small_corpus
    assert {"stdlib_docstring", "package_docstring"} <= {s for s, n in counts.items() if n}
    assert sum(1 for n in counts.values() if n) >= 2


def test_two_builds_give_identical_bytes(small_corpus, tmp_path):
    out, _ = small_corpus
    build(tmp_path, max_docs=300)
    first = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    second = {p.name: p.read_bytes() for p in sorted(tmp_path.iterdir())}
    assert first == second


def test_max_bytes_bounds_the_text_gathered(tmp_path):
    build(tmp_path, max_bytes=200_000)
    records = _records(tmp_path)
    assert records
    assert sum(len(r["text"].encode()) for r in records) <= 200_000


def test_unknown_source_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown sources"):
        build(tmp_path, sources=("stdlib_docstring", "wikipedia"))


def test_docstrings_are_read_without_running_the_module():
    source = b'''"""Module summary."""
raise SystemExit("importing this module would exit")


class Widget:
    """A widget."""

    def spin(self):
        """Spin the widget."""
        return 1
'''
    assert module_docstrings(source) == "Module summary.\n\nA widget.\n\nSpin the widget."
    assert module_docstrings(b"def broken(:\n    '''x'''") is None


def test_troff_macros_and_escapes_become_plain_paragraphs():
    page = r'''.\" a comment
.de XX
.ft B
..
.TH LS 1 "2022" "GNU coreutils" "User Commands"
.SH NAME
ls \- list directory contents
.SH DESCRIPTION
List information about the \fBFILEs\fR
(the current directory by default).
.TP
\fB\-a\fR, \fB\-\-all\fR
do not ignore entries starting with .
.BR ls (1)
and \(lqquotes\(rq \[u00E9]t\['e]
'''
    assert troff_to_text(page) == (
        "NAME\n\nls - list directory contents\n\nDESCRIPTION\n\n"
        "List information about the FILEs (the current directory by default).\n\n"
        "-a, --all do not ignore entries starting with . ls(1) and \u201cquotes\u201d \u00e9t"
    )
    assert troff_to_text(".so man1/other.1\n") is None


def test_man_pages_skip_non_utf8_and_alias_pages(tmp_path, monkeypatch):
    section = tmp_path / "man1"
    section.mkdir()
    body = ".SH NAME\n" + " ".join(["word"] * 40) + "\n"
    (section / "good.1.gz").write_bytes(gzip.compress(body.encode()))
    (section / "latin.1.gz").write_bytes(gzip.compress((body + "caf\xe9\n").encode("latin-1")))
    (section / "alias.1.gz").write_bytes(gzip.compress(b".so man1/good.1\n"))
    monkeypatch.setattr(default_corpus, "MAN_ROOT", tmp_path)
    docs = list(default_corpus.man_pages())
    assert [d.path.name for d in docs] == ["good.1.gz"]
    assert docs[0].source == "man"


@pytest.mark.slow
def test_default_limits_give_at_least_5000_documents(tmp_path):
    counts = build(tmp_path)
    assert sum(counts.values()) >= 5000
    assert len(_records(tmp_path)) == sum(counts.values())
