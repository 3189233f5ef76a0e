"""Normalise text columns in one vectorised pass per rule (Arrow compute, RE2 in C++), not per row.

Order matters: mojibake repair (opt-in, pipeline/clean/mojibake.py) sees the text as decoded, then line
endings and control characters go, then Unicode normalisation (so composed and
decomposed forms compare equal downstream, including marks that a removed zero-width character kept apart),
then horizontal whitespace, and finally runs of blank lines.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.clean.mojibake import repair_mojibake

# C0/C1 controls except \t and \n, plus zero-width and BOM characters that only hide duplicates.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\x{200b}\x{200c}\x{200d}\x{2060}\x{feff}\x{00ad}]"
# Horizontal whitespace of every script (tab, NBSP, thin and ideographic spaces...).
_HSPACE_OTHER = r"[\t\x{00a0}\x{1680}\x{2000}-\x{200a}\x{202f}\x{205f}\x{3000}]"
_HSPACE = "[ " + _HSPACE_OTHER[1:]
# Every run of it becomes one space. A run that already is one plain space is left out of the pattern: it
# would be replaced by itself, and rewriting every space of the text cost ~7x the rest of this rule.
_HSPACE_RUNS = f"{_HSPACE}{{2,}}|{_HSPACE_OTHER}"


@dataclass
class TextConfig:
    # Re-decode text that was decoded with the wrong code page (ftfy.fix_encoding on flagged rows). Off by
    # default: the filter drops mojibake documents instead (docs/mojibake.md has the measurements).
    fix_mojibake: bool = False
    unicode_form: str = "NFC"  # Unicode normalisation form: NFC, NFKC, NFD or NFKD; empty: none
    # Delete C0/C1 control characters other than tab and newline, zero-width characters, the BOM and soft hyphens.
    remove_control_chars: bool = True
    # Every run of horizontal whitespace (tabs, NBSP, other scripts' spaces) becomes one space; lines lose
    # their leading and trailing spaces.
    collapse_whitespace: bool = True
    # At most this many consecutive blank lines survive (paragraph breaks are kept, runs are not).
    max_blank_lines: int = 1


def normalize_text(texts: pa.Array, cfg: TextConfig = TextConfig()) -> pa.Array:
    """Clean a string array; nulls stay null."""
    out = repair_mojibake(texts) if cfg.fix_mojibake else texts
    out = pc.replace_substring_regex(out, pattern=r"\r\n?", replacement="\n")
    if cfg.remove_control_chars:
        out = pc.replace_substring_regex(out, pattern=_CONTROL, replacement="")
    if cfg.unicode_form:
        out = pc.utf8_normalize(out, form=cfg.unicode_form)
    if cfg.collapse_whitespace:
        out = pc.replace_substring_regex(out, pattern=_HSPACE_RUNS, replacement=" ")
        out = pc.replace_substring_regex(out, pattern=r"(?m)^ | $", replacement="")
    n = max(cfg.max_blank_lines, 0) + 1
    out = pc.replace_substring_regex(out, pattern="\n{%d,}" % (n + 1), replacement="\n" * n)
    return pc.utf8_trim_whitespace(out)
