"""A labelled check set from Debian's translated man pages: the same pages in Japanese, German, French,
Polish, Spanish and their English originals, in the layout of ../shared/corpus.

Reference text (option lists, synopses, short descriptions) in a register none of the other check sets has,
and the same page in six languages: a filter that treats languages alike keeps them at similar rates. Pages
are rendered as `man` renders them (groff's UTF-8 output without overstriking), one document per page.

    apt-get download manpages manpages-ja manpages-de manpages-fr manpages-pl manpages-es   # into DEBS
    .venv/bin/python benchmarks/manpages_corpus.py --debs DEBS --out /work/manpages-corpus
    .venv/bin/spark-submit --master 'local[2]' jobs/pipeline.py --input /work/manpages-corpus/raw --output OUT
    .venv/bin/python benchmarks/pipeline_quality.py --run OUT --corpus /work/manpages-corpus

English pages come from the `manpages` package and this machine's /usr/share/man. Every page is labelled
`original` in its language (the labels say what a page is, not whether a filter should keep it); pages of
under 200 characters are left out. The set stays outside the repository (GPL and other licences per page).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import subprocess
import tempfile
from pathlib import Path

LANGUAGES = ("ja", "de", "fr", "pl", "es")
MIN_CHARS = 200


def render(page: Path) -> str:
    """The page as `man` shows it: preconv for its encoding, groff's UTF-8 output, no overstriking."""
    raw = gzip.decompress(page.read_bytes()) if page.suffix == ".gz" else page.read_bytes()
    pre = subprocess.run(["preconv", "-e", "utf-8"], input=raw, capture_output=True, check=True).stdout
    out = subprocess.run(["groff", "-mandoc", "-Tutf8", "-P-cbou"], input=pre, capture_output=True).stdout
    return out.decode("utf-8", "replace").strip()


def pages(root: Path) -> dict[str, Path]:
    """section/name -> file of every man page under `root` (man1 ... man8), links left out."""
    found = {}
    for path in sorted(root.glob("man[1-8]/*")):
        if path.is_file() and not path.is_symlink():
            found[f"{path.parent.name}/{path.name.removesuffix('.gz')}"] = path
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debs", type=Path, required=True, help="directory of the downloaded .deb files")
    parser.add_argument("--out", type=Path, default=Path("/work/manpages-corpus"), help="output (outside the repo)")
    parser.add_argument("--per-language", type=int, default=250, help="pages per translated language")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    tree = Path(tempfile.mkdtemp(prefix="manpages-"))
    for deb in sorted(args.debs.glob("manpages*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    english = {**pages(Path("/usr/share/man")), **pages(tree / "usr/share/man")}
    rng = random.Random(args.seed)
    chosen: dict[str, list[tuple[str, Path]]] = {}
    for lang in LANGUAGES:
        translated = pages(tree / "usr/share/man" / lang)
        common = sorted(set(translated) & set(english))
        rng.shuffle(common)
        chosen[lang] = [(key, translated[key]) for key in common[: args.per_language]]
    originals = sorted({key for picks in chosen.values() for key, _ in picks})
    chosen["en"] = [(key, english[key]) for key in originals]

    records, labels = [], []
    for lang, picks in chosen.items():
        for key, path in picks:
            text = render(path)
            if len(text) < MIN_CHARS:
                continue
            doc_id = hashlib.sha1(f"{lang}/{key}".encode()).hexdigest()[:12]
            records.append({"id": doc_id, "text": text, "source": "manpage", "url": None, "lang_hint": None,
                            "created": None})
            labels.append({"id": doc_id, "lang": lang, "kind": "original", "dup_of": None, "cluster": None,
                           "junk_type": None, "origin": f"debian:{path.relative_to(tree) if tree in path.parents else path}"})
    order = list(range(len(records)))
    rng.shuffle(order)
    (args.out / "raw").mkdir(parents=True, exist_ok=True)
    (args.out / "labels").mkdir(parents=True, exist_ok=True)
    name = "raw/docs-00.jsonl.gz"
    with gzip.open(args.out / name, "wt", encoding="utf-8") as f:
        for i in order:
            f.write(json.dumps(records[i], ensure_ascii=False) + "\n")
    with gzip.open(args.out / "labels" / "docs.jsonl.gz", "wt", encoding="utf-8") as f:
        for line, i in enumerate(order, start=1):
            f.write(json.dumps({**labels[i], "file": name, "line": line}, ensure_ascii=False) + "\n")
    counts = {lang: sum(label["lang"] == lang for label in labels) for lang in chosen}
    print(f"{len(records)} pages in {args.out}: " + ", ".join(f"{lang} {n}" for lang, n in counts.items()))


if __name__ == "__main__":
    main()
