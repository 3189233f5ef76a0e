"""A stage's output directory: its layout and the commit protocol that makes it appear whole or not at all.

Spark-free, so the report, the trainer and any tool can read a stage's output, and so the protocol can be
tested on its own. A stage's output becomes visible only when `_SUCCESS` (which lists every committed file)
is written; readers refuse a stage without it and read only the files it lists. One run writes into
`_temporary/<attempt>/`, holding the directory's `_lock` from `begin` to `commit`.
"""
from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from pipeline import lock, storage

SUCCESS = "_SUCCESS"
TEMPORARY = "_temporary"
UNKNOWN_LANGUAGE = "unknown"  # per-language counts of rows whose lang is null or empty


class StageError(RuntimeError):
    pass


@dataclass
class Route:
    """Where rows of one `_status` go: a sub-directory and its columns; `sample` bounds how many rows per
    reason each partition keeps (None = all)."""

    subdir: str
    columns: list[str]
    sample: int | None = None


@dataclass
class WriteResult:
    files: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # route -> temp paths
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # route -> rows written
    counts: dict[tuple[str, str | None], int] = field(default_factory=lambda: defaultdict(int))
    # (lang, status, reason) -> rows, where the rows carry a language (filter and the stages after it)
    languages: dict[tuple[str, str, str | None], int] = field(default_factory=lambda: defaultdict(int))

    def by_status(self, status: str) -> dict[str, int]:
        return {r or "": n for (s, r), n in sorted(self.counts.items(), key=lambda kv: str(kv[0])) if s == status}

    def total(self, status: str) -> int:
        return sum(n for (s, _), n in self.counts.items() if s == status)

    def by_language(self) -> dict[str, dict]:
        """{lang: {"kept": n, "dropped": {reason: n}, "rejected": {reason: n}}}, languages by document count."""
        out: dict[str, dict] = defaultdict(lambda: {"kept": 0, "dropped": {}, "rejected": {}})
        for (lang, status, reason), n in sorted(self.languages.items(), key=lambda kv: str(kv[0])):
            if status == "kept":
                out[lang]["kept"] += n
            else:
                out[lang][status][reason or ""] = n
        total = {lang: c["kept"] + sum(c["dropped"].values()) + sum(c["rejected"].values()) for lang, c in out.items()}
        return {lang: out[lang] for lang in sorted(out, key=lambda lang: (-total[lang], lang))}


def is_committed(stage_uri: str) -> bool:
    return storage.exists(storage.join(stage_uri, SUCCESS))


def listed_files(stage_uri: str, subdir: str = "data") -> list[str]:
    """The files of `subdir` that the stage's `_SUCCESS` lists; [] when the stage has not committed."""
    if not is_committed(stage_uri):
        return []
    listing = json.loads(storage.read_bytes(storage.join(stage_uri, SUCCESS)))
    return [storage.join(stage_uri, p) for p in listing["files"].get(subdir, [])]


def committed_files(stage_uri: str, subdir: str = "data") -> list[str]:
    if not is_committed(stage_uri):
        raise StageError(
            f"{storage.display(stage_uri)} has no {SUCCESS}: the stage did not finish (run it first, or re-run it)"
        )
    return listed_files(stage_uri, subdir)


def new_attempt() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


# The schema (schemas/) of the documents clean, filter and dedupe write to data/; stats.json names it.
DOCUMENT_SCHEMA = "document.v2"
# The lock file a stage holds on its output directory from `begin` to `commit`.
LOCK = "_lock"
# A stage's directory holds at least one of these from its first step (`begin`) to its last (`commit`).
STAGE_MARKS = frozenset({SUCCESS, TEMPORARY, "stats.json", LOCK})
# Output URI -> the lock this process holds on it: a stage that failed in this process left its lock here,
# and this process's next run into that output takes it back.
_held: dict[str, lock.Lock] = {}


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def check_output(stage_uri: str, input_uri: str | None = None) -> None:
    """Refuse an output a run would destroy data in: one that is, holds or lies inside the input (a commit
    replaces the output's parts; an output inside the input is read back as input), and an existing
    directory no stage wrote, holding none of `STAGE_MARKS` (a stage replaces only what it wrote itself)."""
    out_fs, out = storage.resolve(stage_uri)
    if input_uri:
        in_fs, inp = storage.resolve(input_uri)
        if out_fs.type_name == in_fs.type_name and _overlaps(out, inp):
            raise StageError(
                f"output {storage.display(stage_uri)} overlaps input {storage.display(input_uri)}: writing it would "
                f"replace or re-read the input; choose an output directory outside the input"
            )
    entries = storage.entries(stage_uri)
    if entries and not STAGE_MARKS & set(entries):
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise StageError(
            f"{storage.display(stage_uri)} already holds files no stage wrote ({shown}): a stage replaces its output "
            f"directory's contents, so give it a new or empty directory"
        )


def begin(stage_uri: str, input_uri: str | None = None) -> str:
    """Start a (re-)run into a checked output (`check_output`), as its one writer: the stage holds the
    directory's lock until `commit` (another live run's lock raises `lock.LockHeld`). Holding it, the run
    removes what earlier, dead attempts left in `_temporary`. The attempt's directory is marked first and the
    old `_SUCCESS` goes next, so the directory always shows it is a stage's (either file is there) and a
    crash from here on never leaves a stage that looks complete but mixes old and new files."""
    check_output(stage_uri, input_uri)
    if is_committed(stage_uri):
        print(f"[stage] {storage.display(stage_uri)} holds a committed run, which this one replaces; to keep it, give "
              f"another output (jobs/pipeline.py --state reuses the committed stages of an interrupted batch)")
    release(stage_uri)
    try:
        _held[stage_uri] = lock.Lock(storage.join(stage_uri, LOCK), name="stage").acquire()
    except lock.LockHeld as e:
        raise StageError(f"{e}: another run is writing this output; wait for it to end or choose another output") from None
    storage.delete(storage.join(stage_uri, TEMPORARY))
    attempt = new_attempt()
    storage.write_bytes(storage.join(stage_uri, TEMPORARY, attempt, "_started"), b"")
    storage.delete(storage.join(stage_uri, SUCCESS))
    return attempt


def release(stage_uri: str) -> None:
    """Give up this process's lock on `stage_uri`, if it holds one (a commit does; so does a stage that
    writes nothing after all)."""
    held = _held.pop(stage_uri, None)
    if held is not None:
        held.release()


def commit(
    stage_uri: str,
    attempt: str,
    files: dict[str, list[str]],
    stats: dict,
    extra_files: dict[str, bytes] | None = None,
    final_names: Callable[[str, str], str] | None = None,
) -> None:
    """Move the attempt's files into place (replacing any earlier run's, and removing what an earlier run
    wrote that this one does not: a stage owns its directory), write stats.json, then the other small files
    in the order given, then `_SUCCESS` listing everything; finally drop the attempt's temporary
    directory (never another's) and release the output's lock."""
    listing: dict[str, list[str]] = {}
    for route, paths in files.items():
        subdir = paths and _subdir_of(paths[0], stage_uri, attempt)
        if subdir:
            storage.delete(storage.join(stage_uri, subdir))
        for p in sorted(paths):
            name = final_names(route, p) if final_names else _final_part_name(p)
            rel = f"{subdir}/{name}"
            storage.move(p, storage.join(stage_uri, rel))
            listing.setdefault(subdir, []).append(rel)
    keep = {*(subdir.split("/")[0] for subdir in listing), "stats.json", *(extra_files or {}), SUCCESS, TEMPORARY, LOCK}
    for name in storage.entries(stage_uri):  # an earlier run's files this run did not replace
        if name not in keep:
            storage.delete(storage.join(stage_uri, name))
    storage.write_bytes(storage.join(stage_uri, "stats.json"), json.dumps(stats, indent=2, sort_keys=False).encode())
    for name, data in (extra_files or {}).items():  # in order: a manifest given last is the commit point
        storage.write_bytes(storage.join(stage_uri, name), data)
    storage.write_bytes(
        storage.join(stage_uri, SUCCESS),
        json.dumps({"stage": stats["stage"], "files": listing}, indent=1, sort_keys=True).encode(),
    )
    others = set(storage.entries(storage.join(stage_uri, TEMPORARY))) - {attempt}
    storage.delete(storage.join(stage_uri, TEMPORARY, attempt) if others else storage.join(stage_uri, TEMPORARY))
    release(stage_uri)


def _subdir_of(path: str, stage_uri: str, attempt: str) -> str:
    prefix = storage.join(stage_uri, TEMPORARY, attempt) + "/"
    return path[len(prefix) :].rsplit("/", 1)[0]


def _final_part_name(path: str) -> str:
    """part-00003-a1.parquet -> part-00003.parquet (the attempt number is an accident of the run)."""
    name = path.rsplit("/", 1)[-1]
    stem, ext = name.split(".", 1)
    return stem.rsplit("-a", 1)[0] + "." + ext


def stage_stats(stage: str, input_count: int, result: WriteResult, seconds: float, **extra) -> dict:
    """stats.json, checked: input must equal kept + dropped + rejected, or the stage fails."""
    kept = result.total("kept")
    dropped, rejected = result.by_status("dropped"), result.by_status("rejected")
    total = kept + sum(dropped.values()) + sum(rejected.values())
    if total != input_count:
        raise StageError(
            f"{stage}: records do not reconcile: input {input_count} != kept {kept} + dropped "
            f"{sum(dropped.values())} + rejected {sum(rejected.values())} = {total}"
        )
    languages = {"languages": result.by_language()} if result.languages else {}
    return {
        "stage": stage,
        "schema_version": 1,
        "input": input_count,
        "kept": kept,
        "dropped": dropped,
        "rejected": rejected,
        **languages,
        **extra,
        "seconds": round(seconds, 3),
    }


def read_stats(stage_uri: str) -> dict:
    committed_files(stage_uri)  # refuses an uncommitted stage
    return json.loads(storage.read_bytes(storage.join(stage_uri, "stats.json")))
