"""Input split into tasks by size, whatever the files look like.

A split is what one task reads: several whole small files, one whole file, or a byte range of a large
file: of a plain (uncompressed) JSONL file, aligned to line boundaries as Hadoop's text input does (a range
holds the lines that start inside it, the last one read to its end); of a Parquet file, the row groups
whose middle byte lies in it, as Spark and Hadoop split Parquet (each task reads the footer; a file of one
row group stays one task's work however it is cut); of a plain WARC/WET file, the records from the first
one a whole-file parse reaches cleanly at or after the range's start. Compressed files cannot be split and
stay one task each. The plan is a pure function of the sorted files, their sizes and `split_bytes`, never of the cores, so
the output is the same under local[1], local[2] or a cluster.

A range's records need their line numbers in the file, which depend on the newlines before it: those are
counted first, one task per range (`count_newlines`), and handed to the reading task (`Piece.newlines`). A
WARC range's start, its record ordinal and the bytes the records before it declare come from one
sequential pass over its file (`warc.record_starts`, one task per file, reading headers and payloads but
making no documents), so a range never starts inside a payload that happens to hold a `WARC/1.0` line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import BinaryIO

from pipeline import storage
from pipeline.readers import JSONL_SUFFIXES, PARQUET_SUFFIX, WARC_SUFFIXES, _split_name

CHUNK = 1 << 20
# A compressed file counts as about the text it expands to (gzip and zstd give 3-5x on web text), so a
# task of compressed files holds about as much work as one of plain ones. Parquet counts as compressed:
# its pages nearly always are (snappy is the default of Spark and pyarrow, zstd the other common choice).
COMPRESSED_WEIGHT = 4
# No byte range is smaller than this: a task costs more than so little text gains, and `split_bytes=1`
# then means one task per file.
MIN_RANGE_BYTES = 1 << 20


@dataclass(frozen=True)
class Piece:
    uri: str
    label: str  # the file's path relative to the input
    start: int = 0  # a byte range [start, end) of a plain JSONL or WARC file or a Parquet file; end -1: the whole file
    end: int = -1
    newlines: int = 0  # newlines in the file before `start` (filled in by the counting pass)
    records: int = 0  # WARC: records of the file before `start`, and the block bytes they declare
    declared: int = 0

    @property
    def ranged(self) -> bool:
        return self.end >= 0


def splittable(uri: str) -> bool:
    fmt, compression = _split_name(uri)
    return fmt == PARQUET_SUFFIX or (fmt in JSONL_SUFFIXES + WARC_SUFFIXES and not compression)


def is_warc(piece: Piece) -> bool:
    return _split_name(piece.uri)[0] in WARC_SUFFIXES


def warc_bounds(splits: list[list[Piece]]) -> dict[str, tuple[list[int], int]]:
    """Per plain WARC file cut into ranges: its inner byte bounds (sorted) and its size."""
    ranges = [p for split in splits for p in split if p.ranged and is_warc(p)]
    return {uri: ([p.start for p in ranges if p.uri == uri and p.start], max(p.end for p in ranges if p.uri == uri))
            for uri in dict.fromkeys(p.uri for p in ranges)}


def with_record_starts(splits: list[list[Piece]], starts: dict[str, dict]) -> list[list[Piece]]:
    """Each WARC range moved to the record starts found for its file's bounds ({uri: {bound: RecordStart}},
    from `warc.record_starts`); a file's first range keeps byte 0, so bytes before its first record are
    reported, and its last range the file's end."""
    out = []
    for split in splits:
        pieces = []
        for p in split:
            if p.ranged and is_warc(p):
                found = starts[p.uri]
                first, last = found.get(p.start), found.get(p.end)
                p = replace(p, start=first.offset if first else 0, end=last.offset if last else p.end,
                            records=first.line - 1 if first else 0, declared=first.declared if first else 0)
            pieces.append(p)
        out.append(pieces)
    return out


def needs_line_count(piece: Piece) -> bool:
    """A JSONL range's line numbers depend on the newlines before it; a Parquet range's rows are counted
    in the footer its task reads anyway."""
    return piece.ranged and _split_name(piece.uri)[0] in JSONL_SUFFIXES


def weight(uri: str, size: int) -> int:
    """A file's share of a split: its size, times COMPRESSED_WEIGHT when compressed."""
    fmt, compression = _split_name(uri)
    return size * COMPRESSED_WEIGHT if compression or fmt == PARQUET_SUFFIX else size


def plan(files: list[tuple[str, str, int]], split_bytes: int) -> tuple[list[list[Piece]], int]:
    """The splits of (uri, label, size) files in their order: consecutive small files grouped up to
    `split_bytes` (by `weight`), a larger plain JSONL or WARC file or Parquet file cut into ranges of about
    `split_bytes` of weight (at least MIN_RANGE_BYTES of the file), any other file on its own. Also returns
    how many compressed files larger than `split_bytes` had to be read whole."""
    splits: list[list[Piece]] = []
    group: list[Piece] = []
    size = 0
    unsplittable = 0
    for uri, label, raw_size in files:
        n = weight(uri, raw_size)
        if n >= split_bytes:
            if group:
                splits.append(group)
                group, size = [], 0
            k = min(math.ceil(n / split_bytes), raw_size // MIN_RANGE_BYTES)
            if splittable(uri) and k > 1:
                bounds = [raw_size * i // k for i in range(k + 1)]
                splits += [[Piece(uri, label, a, b)] for a, b in zip(bounds, bounds[1:])]
            else:
                unsplittable += n > split_bytes and not splittable(uri)
                splits.append([Piece(uri, label)])
            continue
        if group and size + n > split_bytes:
            splits.append(group)
            group, size = [], 0
        group.append(Piece(uri, label))
        size += n
    if group:
        splits.append(group)
    return splits, unsplittable


def count_newlines(piece: Piece) -> int:
    """Newlines in the piece's byte range."""
    fs, path = storage.resolve(piece.uri)
    with fs.open_input_file(path) as f:
        f.seek(piece.start)
        left, count = piece.end - piece.start, 0
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            count += chunk.count(b"\n")
            left -= len(chunk)
    return count


def with_newlines(splits: list[list[Piece]], counts: dict[tuple[str, int], int]) -> list[list[Piece]]:
    """Each JSONL range given the newlines before it, from every range's own count (keyed by uri, start)."""
    before: dict[str, int] = {}
    out = []
    for split in splits:
        pieces = []
        for p in split:
            if needs_line_count(p):
                pieces.append(replace(p, newlines=before.get(p.uri, 0)))
                before[p.uri] = before.get(p.uri, 0) + counts[(p.uri, p.start)]
            else:
                pieces.append(p)
        out.append(pieces)
    return out


class RangeStream:
    """The lines of `raw` that start in [start, end), the last read to its end; `first_line` is the file's
    line number of the first of them (1-based). `raw` must be seekable."""

    def __init__(self, raw: BinaryIO, start: int, end: int, newlines_before: int):
        self.raw, self.end, self.done = raw, end, False
        if start == 0:
            self.pos, self.first_line = 0, 1
        else:
            raw.seek(start - 1)
            at_line_start = raw.read(1) == b"\n"
            self.pos = start
            if not at_line_start:  # the line going on at `start` belongs to the range before
                skipped = self._skip_line()
                self.pos += skipped
            # its first line follows the newline at start - 1, or the one ending the line it skipped
            self.first_line = newlines_before + (1 if at_line_start else 2)
        if self.pos >= end:
            self.done = True

    def _skip_line(self) -> int:
        skipped = 0
        while True:
            chunk = self.raw.read(CHUNK)
            if not chunk:
                return skipped
            k = chunk.find(b"\n")
            if k >= 0:
                self.raw.seek(self.pos + skipped + k + 1)
                return skipped + k + 1
            skipped += len(chunk)

    def read(self, n: int = -1) -> bytes:
        if self.done:
            return b""
        chunk = self.raw.read(n if n and n > 0 else CHUNK)
        if not chunk:
            self.done = True
            return b""
        begin = self.pos
        self.pos += len(chunk)
        if self.pos >= self.end:  # deliver up to the end of the line that holds byte end - 1
            k = chunk.find(b"\n", max(0, self.end - 1 - begin))
            if k >= 0:
                chunk = chunk[: k + 1]
                self.done = True
        return chunk


def row_groups_in(metadata, start: int, end: int) -> list[int]:
    """The row groups of a Parquet file (its footer's metadata) whose middle byte lies in [start, end):
    every group falls in exactly one of a file's ranges, whatever the cut."""
    groups = []
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        columns = [group.column(c) for c in range(group.num_columns)]
        first = min(c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset for c in columns)
        middle = first + sum(c.total_compressed_size for c in columns) // 2
        if start <= middle < end:
            groups.append(i)
    return groups
