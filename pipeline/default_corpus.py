"""The default corpus for `make demo`: real text nobody on the team wrote, gathered from this machine at run time.

Every machine with Python carries a few megabytes of prose: the docstrings of the standard library and of
the installed packages, the licence files that packages ship (the same licences over and over, which gives
the dedupe stage natural exact and near duplicates), man pages (some of them translated) and READMEs.
Sources are read lazily and interleaved by bytes taken, so the limits cut every source alike and a small
`max_docs` touches only a few files. Traversal is sorted and the gzip header carries no time, so the
same machine gives the same bytes.

    python -m pipeline.default_corpus OUT_DIR [--max-docs N] [--max-mb M]
"""
from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import json
import os
import re
import sys
import sysconfig
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

SOURCES = ("stdlib_docstring", "package_docstring", "licence", "man", "package_doc", "system_doc")
DEFAULT_MAX_DOCS = 20_000
DEFAULT_MAX_BYTES = 40 * 1_000_000
# Fewer words is a one-line "Tests for X." docstring or a "see LICENSE" stub: not a document.
MIN_WORDS = 30
# Larger files are generated code or data tables; reading them would cost more time than they add prose.
MAX_FILE_BYTES = 2 * 1_048_576
# Longer texts are split at paragraph boundaries into parts, so no single document dominates a shard.
MAX_DOC_CHARS = 20_000
SHARDS = 4
MAN_ROOT = Path("/usr/share/man")
COMMON_LICENSES = Path("/usr/share/common-licenses")
SYSTEM_DOC = Path("/usr/share/doc")

_LICENCE_NAME = re.compile(r"^(licen[cs]e|copying|notice|copyright)", re.I)
_LICENCE_DIRS = {"licenses", "licences", "license_files"}


@dataclass(frozen=True)
class Doc:
    source: str
    path: Path
    part: int
    text: str

    @property
    def id(self) -> str:
        return hashlib.sha1(f"{self.path}#{self.part}".encode()).hexdigest()[:12]

    def record(self) -> dict:
        return {"id": self.id, "text": self.text, "source": self.source, "url": self.path.as_uri(), "created": None}


def _walk(root: Path, skip_dirs: frozenset = frozenset()) -> Iterator[Path]:
    """Files under root in sorted order, without following directory symlinks (site-packages can loop)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs and d != "__pycache__")
        for name in sorted(filenames):
            yield Path(dirpath, name)


def _read_text(path: Path) -> str | None:
    """UTF-8 text of a (possibly gzipped) file, or None for binary, non-UTF-8, unreadable or oversized files."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        text = data.decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError):
        return None
    return None if "\x00" in text else text


def _parts(text: str) -> list[str]:
    """Paragraph-aligned pieces of at most MAX_DOC_CHARS (a single longer paragraph stays whole)."""
    parts, current, size = [], [], 0
    for para in re.split(r"\n\s*\n", text):
        if current and size + len(para) > MAX_DOC_CHARS:
            parts.append("\n\n".join(current))
            current, size = [], 0
        current.append(para)
        size += len(para) + 2
    parts.append("\n\n".join(current))
    return parts


def _docs(source: str, path: Path, text: str | None) -> Iterator[Doc]:
    if not text:
        return
    text = re.sub(r"[ \t]+\n", "\n", text.replace("\r\n", "\n")).strip()
    for part, piece in enumerate(_parts(text)):
        if len(piece.split()) >= MIN_WORDS:
            yield Doc(source, path, part, piece)


# Docstrings ------------------------------------------------------------------------------------------------

def module_docstrings(source: bytes) -> str | None:
    """Module, class and function docstrings of Python source as paragraphs, without importing it."""
    # A file without triple quotes has no docstring worth MIN_WORDS; skipping it saves most of the parse time.
    if b'"""' not in source and b"'''" not in source:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    docs: list[str] = []
    _collect_docstrings(tree, docs)
    return "\n\n".join(docs)


_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_COMPOUND = (ast.If, ast.Try, ast.With, ast.For, ast.While)


def _collect_docstrings(node: ast.AST, docs: list[str]) -> None:
    """Depth-first over statement bodies only: visiting every expression node (ast.walk) doubles the cost."""
    if isinstance(node, _DOCUMENTED):
        doc = ast.get_docstring(node, clean=True)
        if doc and doc.strip():
            docs.append(doc.strip())
    for field in ("body", "orelse", "handlers", "finalbody"):
        for child in getattr(node, field, ()):
            if isinstance(child, _DOCUMENTED + _COMPOUND + (ast.ExceptHandler,)):
                _collect_docstrings(child, docs)


def _python_files(root: Path, skip_dirs: frozenset = frozenset()) -> Iterator[Path]:
    return (p for p in _walk(root, skip_dirs) if p.suffix == ".py")


def _docstring_docs(source: str, files: Iterator[Path]) -> Iterator[Doc]:
    for path in files:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            code = path.read_bytes()
        except OSError:
            continue
        yield from _docs(source, path, module_docstrings(code))


def _site_packages() -> list[Path]:
    paths = sysconfig.get_paths()
    return sorted({Path(paths["purelib"]), Path(paths["platlib"])})


def stdlib_docstrings() -> Iterator[Doc]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return _docstring_docs("stdlib_docstring", _python_files(stdlib, frozenset({"site-packages", "dist-packages"})))


def package_docstrings() -> Iterator[Doc]:
    for root in _site_packages():
        yield from _docstring_docs("package_docstring", _python_files(root))


# Licences --------------------------------------------------------------------------------------------------

def _is_licence(path: Path) -> bool:
    return bool(_LICENCE_NAME.match(path.name)) or any(d.lower() in _LICENCE_DIRS for d in path.parent.parts[-3:])


def licences() -> Iterator[Doc]:
    for root in _site_packages():
        for path in _walk(root):
            if path.suffix not in (".py", ".pyc", ".so") and _is_licence(path):
                yield from _docs("licence", path, _read_text(path))
    if COMMON_LICENSES.is_dir():
        for path in _walk(COMMON_LICENSES):
            yield from _docs("licence", path, _read_text(path))
    if SYSTEM_DOC.is_dir():
        for package in sorted(SYSTEM_DOC.iterdir()):
            yield from _docs("licence", package / "copyright", _read_text(package / "copyright"))


# Man pages -------------------------------------------------------------------------------------------------

_NAMED_GLYPHS = {
    "em": "\u2014", "en": "\u2013", "hy": "-", "mi": "-", "aq": "'", "dq": '"', "oq": "\u2018", "cq": "\u2019",
    "lq": "\u201c", "rq": "\u201d", "bu": "\u2022", "co": "\u00a9", "rg": "\u00ae", "tm": "\u2122",
    "de": "\u00b0", "ga": "`", "ti": "~", "ha": "^", "rs": "\\", "sl": "/", "ba": "|", "or": "|", "pl": "+",
    "eq": "=", "mu": "\u00d7", "di": "\u00f7", "<=": "\u2264", ">=": "\u2265", "!=": "\u2260", "->": "\u2192",
    "<-": "\u2190", "fm": "\u2032", "sq": "\u25a1", "ua": "\u2191", "da": "\u2193", "lA": "\u21d0",
    "rA": "\u21d2", "Fo": "\u00ab", "Fc": "\u00bb", "ss": "\u00df", "ae": "\u00e6", "tf": "\u2234",
}
_ESCAPE = re.compile(
    r"\\(?:"
    r"\((?P<g2>..)|\[(?P<gb>[^\]]*)\]"       # glyphs \(em \[em] \[u00E9]
    r"|f(?:\(..|\[[^\]]*\]|.)"                 # font changes
    r"|s[-+]?(?:\(..|\[[^\]]*\]|\d+)"        # size changes
    r"|[*n](?:\(..|\[[^\]]*\]|.)"              # string and register interpolation
    r"|[kz].|[hvwlLoDbxNXYSHR]'[^']*'"        # motions and other quoted-argument escapes
    r"|(?P<c>.))"
)
_SINGLE = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "'": "\u00b4", "`": "`", ".": "."}
# Requests whose arguments are text worth keeping (man and mdoc macros); all other requests are dropped.
_TEXT_MACROS = {
    "B", "I", "SM", "SB", "BR", "BI", "IB", "IR", "RB", "RI", "UR", "MT", "OP",
    "Nm", "Nd", "Fl", "Ar", "Cm", "Op", "Ql", "Pa", "Em", "Sy", "Xr", "Dq", "Sq", "Va", "Ev", "Fn", "Ft",
    "Fa", "Dv", "Er", "Li", "Ic", "Ad", "Ms", "Tn", "Ux", "Bx", "At", "Ns", "Lk", "Mt", "Pq", "Aq", "Qq",
}
_ALTERNATING = {"BR", "BI", "IB", "IR", "RB", "RI"}
_HEADINGS = {"SH", "SS", "Sh", "Ss"}
_BREAKS = {"PP", "LP", "P", "IP", "TP", "HP", "TQ", "sp", "br", "Pp", "Bl", "El", "It", "Bd", "Ed", "RS", "RE"}
_SKIP_BLOCKS = {"de": "..", "am": "..", "ig": "..", "TS": ".TE", "EQ": ".EN", "PS": ".PE"}


def _unescape(line: str) -> str:
    def glyph(m: re.Match) -> str:
        name = m.group("g2") or m.group("gb")
        if name is not None:
            if re.fullmatch(r"u[0-9A-Fa-f]{4,6}", name):
                return chr(int(name[1:], 16))
            return _NAMED_GLYPHS.get(name, "")
        c = m.group("c")
        return _SINGLE.get(c, "") if c is not None else ""

    return _ESCAPE.sub(glyph, line)


def _macro_args(rest: str) -> list[str]:
    """Split a request's arguments as troff does: blanks separate, double quotes group."""
    return [a[1:-1] if a.startswith('"') else a for a in re.findall(r'"[^"]*"?|\S+', rest)]


def troff_to_text(source: str) -> str | None:
    """Plain text of a man page (man or mdoc macros); None for a `.so` redirect to another page."""
    paragraphs: list[str] = []
    words: list[str] = []
    fill, skip_until = True, None

    def flush():
        if words:
            paragraphs.append(" ".join(words) if fill else "\n".join(words))
            words.clear()

    for raw in source.split("\n"):
        if skip_until is not None:
            if raw.strip() == skip_until or raw.startswith(skip_until):
                skip_until = None
            continue
        if raw.startswith((".", "'")):
            request = raw[1:].lstrip()
            name, _, rest = request.partition(" ")
            if name in ("so",) and not paragraphs and not words:
                return None
            if name in _SKIP_BLOCKS:
                skip_until = _SKIP_BLOCKS[name]
            elif name in _HEADINGS:
                flush()
                paragraphs.append(_unescape(" ".join(_macro_args(rest))).strip())
            elif name in _BREAKS:
                flush()
                if name in ("IP", "It") and rest:
                    words.append(_unescape(_macro_args(rest)[0]))
                    flush()
            elif name == "nf":
                flush()
                fill = False
            elif name == "fi":
                flush()
                fill = True
            elif name in _TEXT_MACROS:
                args = _macro_args(rest)
                text = _unescape(("" if name in _ALTERNATING else " ").join(args)).strip()
                if text:
                    words.append(text)
            continue
        line = _unescape(raw.rstrip("\\")).strip() if fill else _unescape(raw.rstrip("\\")).rstrip()
        if not line.strip():
            flush()
        else:
            words.append(line)
    flush()
    return "\n\n".join(p for p in paragraphs if p.strip())


def _man_order(path: Path) -> tuple[str, str]:
    """Sort a page's translations (de/man1/ls.1.gz) right after it (man1/ls.1.gz), not in a block of their own."""
    rel = path.relative_to(MAN_ROOT).parts
    lang, rest = ("", rel) if rel[0].startswith("man") else (rel[0], rel[1:])
    return "/".join(rest), lang


def man_pages() -> Iterator[Doc]:
    """One document per page, in whichever languages the machine has; `.so` aliases and symlinks skipped."""
    if not MAN_ROOT.is_dir():
        return
    pages = [p for p in _walk(MAN_ROOT) if not p.is_symlink() and re.search(r"\.\d\w*(\.gz)?$", p.name)]
    for path in sorted(pages, key=_man_order):
        source = _read_text(path)
        if source is not None:
            yield from _docs("man", path, troff_to_text(source))


# Other prose -----------------------------------------------------------------------------------------------

def package_docs() -> Iterator[Doc]:
    """The long descriptions in dist-info METADATA (the package README) and .rst/.md files packages ship."""
    for root in _site_packages():
        for path in _walk(root):
            if path.name == "METADATA" and path.parent.name.endswith(".dist-info"):
                text = _read_text(path)
                yield from _docs("package_doc", path, text.partition("\n\n")[2] if text else None)
            elif path.suffix in (".rst", ".md") and not _is_licence(path):
                yield from _docs("package_doc", path, _read_text(path))


def system_docs() -> Iterator[Doc]:
    if not SYSTEM_DOC.is_dir():
        return
    for path in _walk(SYSTEM_DOC):
        if path.name.upper().startswith("README") and not path.is_symlink():
            yield from _docs("system_doc", path, _read_text(path))


GENERATORS: dict[str, Callable[[], Iterator[Doc]]] = {
    "stdlib_docstring": stdlib_docstrings,
    "package_docstring": package_docstrings,
    "licence": licences,
    "man": man_pages,
    "package_doc": package_docs,
    "system_doc": system_docs,
}


# Assembly --------------------------------------------------------------------------------------------------

def gather(max_docs: int, max_bytes: int, sources=SOURCES, progress: Callable[[str], None] | None = None) -> list[Doc]:
    """Documents from every source, always taking the next one from the source with the fewest bytes so far.

    Balancing bytes rather than counts keeps a source of long documents (licences) from spending the byte
    budget alone; a source that runs dry leaves its share to the others. Stops at the first limit reached.
    """
    live = {i: GENERATORS[s]() for i, s in enumerate(sources)}
    taken = {i: 0 for i in live}
    docs: list[Doc] = []
    total = 0
    while live and len(docs) < max_docs:
        i = min(live, key=lambda k: (taken[k], k))
        doc = next(live[i], None)
        if doc is None:
            del live[i]
            continue
        size = len(doc.text.encode())
        if total + size > max_bytes:
            break
        docs.append(doc)
        taken[i] += size
        total += size
        if progress and len(docs) % 1000 == 0:
            progress(f"{len(docs):,} documents, {total / 1e6:.1f} MB")
    return docs


def _shard_ranges(sizes: list[int], shards: int) -> list[tuple[int, int]]:
    """Contiguous index ranges with about equal bytes each."""
    total = sum(sizes) or 1
    ranges, start, acc = [], 0, 0
    for i, size in enumerate(sizes):
        acc += size
        if acc >= total * (len(ranges) + 1) / shards and len(ranges) < shards - 1:
            ranges.append((start, i + 1))
            start = i + 1
    ranges.append((start, len(sizes)))
    return [r for r in ranges if r[0] < r[1]]


def _write_gzip(path: Path, data: bytes) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(data)


def _readme(counts: dict, sizes: dict, shard_names: list[str], max_docs: int, max_bytes: int) -> str:
    roots = {
        "stdlib_docstring": sysconfig.get_paths()["stdlib"],
        "package_docstring": ", ".join(map(str, _site_packages())),
        "licence": f"licence/copying/notice files in site-packages, {COMMON_LICENSES}, {SYSTEM_DOC}/*/copyright",
        "man": f"{MAN_ROOT} (troff stripped to plain text, translations included)",
        "package_doc": "dist-info METADATA descriptions and .rst/.md files in site-packages",
        "system_doc": f"{SYSTEM_DOC}/*/README*",
    }
    lines = [
        "# Default corpus",
        "",
        "Gathered from this machine by `python -m pipeline.default_corpus`: text written by the authors of",
        "Python, its packages and the system's software, not by this project. Module docstrings are",
        "extracted with `ast` (nothing is imported); licences repeat across packages on purpose (natural",
        "duplicates for the dedupe stage). Documents under "
        f"{MIN_WORDS} words are skipped; longer than {MAX_DOC_CHARS:,} characters are split into parts.",
        "",
        f"Limits: max_docs={max_docs:,}, max_bytes={max_bytes:,}; Python {sys.version.split()[0]}.",
        "",
        "| source | documents | MB | from |",
        "|---|---:|---:|---|",
    ]
    for s in counts:
        lines.append(f"| {s} | {counts[s]:,} | {sizes[s] / 1e6:.2f} | {roots[s]} |")
    lines += ["", "Files: " + ", ".join(shard_names) + " (JSON lines: id, text, source, url, created).", ""]
    return "\n".join(lines)


def build(
    out_dir,
    max_docs: int = DEFAULT_MAX_DOCS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    sources=SOURCES,
    shards: int = SHARDS,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Write OUT_DIR/docs-NN.jsonl.gz and OUT_DIR/README.md; return the number of documents per source."""
    unknown = set(sources) - set(GENERATORS)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; choose from {SOURCES}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("docs-*.jsonl.gz"):
        old.unlink()
    docs = gather(max_docs, max_bytes, sources, progress)
    lines = [json.dumps(d.record(), ensure_ascii=False).encode() + b"\n" for d in docs]
    names = []
    for k, (a, b) in enumerate(_shard_ranges([len(x) for x in lines], shards)):
        names.append(f"docs-{k:02d}.jsonl.gz")
        _write_gzip(out / names[-1], b"".join(lines[a:b]))
    counts = {s: 0 for s in sources}
    sizes = {s: 0 for s in sources}
    for d in docs:
        counts[d.source] += 1
        sizes[d.source] += len(d.text.encode())
    (out / "README.md").write_text(_readme(counts, sizes, names, max_docs, max_bytes), encoding="utf-8")
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.default_corpus",
        description=(
            "Gather a corpus of real text from this machine (docstrings of the standard library and installed "
            "packages, licence files, man pages, READMEs) into OUT_DIR/docs-NN.jsonl.gz for `make demo`. "
            "Needs no network; the same machine gives the same bytes."
        ),
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="directory for docs-NN.jsonl.gz and README.md")
    parser.add_argument("--max-docs", type=int, default=DEFAULT_MAX_DOCS, help="stop after N documents (default %(default)s)")
    parser.add_argument(
        "--max-mb", type=float, default=DEFAULT_MAX_BYTES / 1e6, help="stop before M megabytes of text (default %(default)s)"
    )
    parser.add_argument(
        "--sources", default=",".join(SOURCES), help="comma-separated subset of: %(default)s"
    )
    args = parser.parse_args(argv)
    start = time.monotonic()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    counts = build(
        args.out_dir, args.max_docs, int(args.max_mb * 1e6), tuple(args.sources.split(",")), progress=log
    )
    for source, n in counts.items():
        log(f"{source:>18}: {n:,}")
    log(f"{'total':>18}: {sum(counts.values()):,} documents in {time.monotonic() - start:.1f} s -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
