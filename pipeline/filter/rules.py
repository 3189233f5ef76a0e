"""The quality rules: each family turns per-document statistics into ordered (reason, drop mask) checks.

Every check is vectorised over the batch (NumPy arrays of `DocStats` fields). A threshold set to None
switches the check off; a NaN statistic ("not defined for this language") never fails a check, because
every comparison with NaN is False.
"""
from __future__ import annotations

import numpy as np

from pipeline.filter.config import C4Config, FineWebConfig, GopherQualityConfig, GopherRepetitionConfig

Checks = list[tuple[str, np.ndarray]]


class Stats:
    """Column view of a batch's statistics: `stats.n_words` is an array over the batch."""

    def __init__(self, columns: dict[str, np.ndarray]):
        """From one array per field, as `pipeline.filter.text.batch_stats` returns them."""
        for name, col in columns.items():
            setattr(self, name, np.asarray(col, dtype=np.float64))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (an empty document has no lines to be bad)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def _on(threshold, mask_fn) -> np.ndarray | None:
    return None if threshold is None else mask_fn(threshold)


def gopher_repetition(s: Stats, cfg: GopherRepetitionConfig, min_words: int | None = None) -> Checks:
    """Gopher (Rae et al. 2021, table A1): repeated lines, paragraphs and n-grams.

    Gopher's quality filter let no text under 50 words through, so its n-gram thresholds never judged one:
    there, one repeat of a three-word name covers a fifth of the text. With `min_words` (Gopher quality's
    word minimum, when short prose lets shorter texts through), a shorter text's n-gram fractions are taken
    of the length `min_words` of its words would have; a short text repeating itself still fails them."""
    scale = 1.0 if min_words is None else np.minimum(1.0, s.n_words / min_words)
    checks = [
        ("gopher_rep_dup_para_frac", _on(cfg.dup_para_frac, lambda t: _ratio(s.n_dup_paras, s.n_paras) > t)),
        ("gopher_rep_dup_para_char_frac", _on(cfg.dup_para_char_frac, lambda t: _ratio(s.dup_para_chars, s.text_len) > t)),
        ("gopher_rep_dup_line_frac", _on(cfg.dup_line_frac, lambda t: _ratio(s.n_dup_lines, s.n_lines) > t)),
        ("gopher_rep_dup_line_char_frac", _on(cfg.dup_line_char_frac, lambda t: _ratio(s.dup_line_chars, s.text_len) > t)),
    ]
    for n in (2, 3, 4):
        checks.append((f"gopher_rep_top_{n}_gram", _on(getattr(cfg, f"top_{n}_gram_frac"), lambda t, n=n: getattr(s, f"top_{n}_gram") * scale > t)))
    for n in range(5, 11):
        checks.append((f"gopher_rep_dup_{n}_gram", _on(getattr(cfg, f"dup_{n}_gram_frac"), lambda t, n=n: getattr(s, f"dup_{n}_gram") * scale > t)))
    return checks


def short_prose(s: Stats, floor: np.ndarray) -> np.ndarray:
    """Documents of at least `floor` words (per document) whose every line ends a sentence or trails off in
    an ellipsis (prose, not a menu), but for one opening line (the title of a review or news item, the
    subject of an e-mail) when more lines follow. Lists of lines trailing off are Gopher's ellipsis rules'."""
    titled = (s.n_lines > 1) & s.first_line_open.astype(bool)
    prose_lines = s.n_punct_end_lines + s.n_ellipsis_end_lines  # disjoint: C4's test leaves ellipses out
    return (s.n_words >= floor) & (s.n_lines > 0) & (prose_lines + titled == s.n_lines)


def gopher_quality(
    s: Stats, cfg: GopherQualityConfig, n_hash: np.ndarray, n_ellipsis: np.ndarray, prose_floor: np.ndarray
) -> Checks:
    """Gopher quality heuristics; word counts follow `pipeline.filter.text` (punctuation is not a word).
    With `cfg.short_prose`, documents under the word minimum that pass `short_prose` (at `prose_floor`) stay,
    and need `short_prose_min_stop_words` stop words instead of `min_stop_words`."""
    words = s.n_words
    exempt = short_prose(s, prose_floor) if cfg.short_prose else np.zeros(len(words), dtype=bool)
    short = exempt & (words < (cfg.min_doc_words or 0))  # kept only by the short-prose exemption
    trailing_off = s.n_ellipsis_end_lines
    bullets_listed = s.n_bullet_lines >= cfg.min_list_lines
    previews_listed = trailing_off >= cfg.min_list_lines
    return [
        ("gopher_min_words", _on(cfg.min_doc_words, lambda t: (words < t) & ~exempt)),
        ("gopher_max_words", _on(cfg.max_doc_words, lambda t: words > t)),
        ("gopher_min_avg_word_length", _on(cfg.min_avg_word_length, lambda t: s.mean_word_len < t)),
        ("gopher_max_avg_word_length", _on(cfg.max_avg_word_length, lambda t: s.mean_word_len > t)),
        ("gopher_hash_ratio", _on(cfg.max_symbol_word_ratio, lambda t: _ratio(n_hash, words) > t)),
        ("gopher_ellipsis_ratio", _on(cfg.max_symbol_word_ratio, lambda t: _ratio(n_ellipsis, words) > t)),
        ("gopher_bullet_lines",
         _on(cfg.max_bullet_lines_ratio, lambda t: (_ratio(s.n_bullet_lines, s.n_all_lines) > t) & bullets_listed)),
        ("gopher_ellipsis_lines",
         _on(cfg.max_ellipsis_lines_ratio, lambda t: (_ratio(trailing_off, s.n_all_lines) > t) & previews_listed)),
        ("gopher_alpha_words", _on(cfg.min_alpha_words_ratio, lambda t: _ratio(s.n_alpha_words, words) < t)),
        ("gopher_stop_words",
         _on(cfg.min_stop_words, lambda t: s.n_stop_words < np.where(short, cfg.short_prose_min_stop_words, t))),
    ]


def c4(s: Stats, cfg: C4Config, has_lorem_ipsum: np.ndarray) -> Checks:
    """C4 (Raffel et al. 2020) page-level rules; its line removal happens in the clean stage."""
    return [
        ("c4_lorem_ipsum", has_lorem_ipsum if cfg.filter_lorem_ipsum else None),
        ("c4_curly_bracket", s.c4_curly_bracket > 0 if cfg.filter_curly_bracket else None),
        ("c4_too_few_sentences", _on(cfg.min_num_sentences, lambda t: s.c4_sentences < t)),
    ]


def fineweb(s: Stats, cfg: FineWebConfig) -> Checks:
    """FineWeb (Penedo et al. 2024) rules, over non-empty lines (a blank line is a paragraph separator)."""
    punct = _ratio(s.n_terminal_end_lines, s.n_lines)
    line_breaks = np.maximum(s.n_lines - 1, 0)
    return [
        (
            "fineweb_line_punct_ratio",
            _on(cfg.line_punct_thr, lambda t: (punct < t) & ~((punct == 0) & cfg.line_punct_exclude_zero)),
        ),
        ("fineweb_short_line_ratio", _on(cfg.short_line_thr, lambda t: _ratio(s.n_short_lines, s.n_lines) > t)),
        ("fineweb_char_dup_ratio", _on(cfg.char_duplicates_ratio, lambda t: _ratio(s.dup_line_chars, s.line_chars) > t)),
        ("fineweb_list_ratio", _on(cfg.new_line_ratio, lambda t: _ratio(line_breaks, s.n_words) > t)),
    ]


def first_failure(checks: Checks, n: int) -> np.ndarray:
    """Object array of the first failing check's reason per document, None where all pass."""
    reasons = np.full(n, None, dtype=object)
    open_ = np.ones(n, dtype=bool)
    for reason, mask in checks:
        if mask is None:
            continue
        hit = open_ & mask
        reasons[hit] = reason
        open_ &= ~hit
    return reasons
