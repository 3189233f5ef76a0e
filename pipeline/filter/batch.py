"""`filter_batch`: language ID, quality rules and PII replacement over one Arrow batch.

The Spark `filter` stage calls it inside `mapInArrow`. Rows keep their order and every input column;
the batch gains `lang`, `lang_score`, `_status` and `_reason` (the first failing check, in the order
mojibake -> language -> Gopher repetition -> Gopher quality -> C4 -> FineWeb (FineWeb's own order) ->
quality classifier), `_main_content`, and `quality_score` when a classifier is configured.

With `main_content` on, a document that fails a check extraction can fix (not mojibake, an unselected
language or the Gopher word minimum: extraction only removes words) is checked again, language ID included,
on its jusText main content (menus and cookie notices in another language lower a page's language score),
extracted in the language of the page's prose lines; if that passes every check, is identified in the language
of those lines and keeps `main_content_min_share` of the page's prose, the document is kept with the
extracted text and `_main_content` true. A dropped document keeps its text and its first pass's reason.
The classifier comes last so it scores only the documents every cheaper check kept; `quality_score` is
null for the others.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.clean.mojibake import is_mis_decoded
from pipeline.filter import language_words, main_content, quality, rules
from pipeline.filter.config import FilterConfig, QualityConfig, RuleSet
from pipeline.filter.langid import identify
from pipeline.filter.pii import EMAIL_PLACEHOLDER, IP_PLACEHOLDER, replace_pii_batch
from pipeline.filter.text import NO_SPACE_TOKEN, batch_stats, stop_word_set

# Reasons extracting the main content cannot undo, as it only removes words; an unselected language is
# not retried either, as most documents of a corpus are usually in one.
NOT_FIXED_BY_EXTRACTION = frozenset({"mojibake", "language_not_selected", "gopher_min_words"})


def _set_column(batch: pa.RecordBatch, name: str, values: pa.Array) -> pa.RecordBatch:
    names = batch.schema.names
    if name in names:
        return batch.set_column(names.index(name), name, values)
    return batch.append_column(name, values)


def language_checks(texts: pa.Array, langs: list[str], scores: np.ndarray, cfg: FilterConfig) -> rules.Checks:
    """Mis-decoded text first (language ID on it is meaningless), then the language itself: a score under
    the language's minimum drops the document unless its words vouch for the language (`language_words`)."""
    checks: rules.Checks = []
    if cfg.mojibake:
        checks.append(("mojibake", is_mis_decoded(texts)))
    minimum = {lang: cfg.min_lang_score_for(lang) for lang in set(langs)}
    unsure = scores < np.array([minimum[lang] for lang in langs])
    checks.append(("lang_score_below_min", unsure & ~language_words.vouched(texts, langs, unsure, cfg)))
    if cfg.languages:
        wanted = set(cfg.languages)
        checks.append(("language_not_selected", np.array([lang not in wanted for lang in langs], dtype=bool)))
    return checks


def substring_counts(texts: pa.Array) -> dict[str, np.ndarray]:
    """The statistics Arrow kernels compute for the whole batch at once."""
    return {
        "hash": pc.count_substring(texts, "#").to_numpy(zero_copy_only=False),
        "ellipsis": pc.count_substring(texts, "...").to_numpy(zero_copy_only=False)
        + pc.count_substring(texts, "…").to_numpy(zero_copy_only=False),
        "lorem_ipsum": pc.match_substring(texts, "lorem ipsum", ignore_case=True).to_numpy(zero_copy_only=False),
    }


def rule_checks(s: rules.Stats, rs: RuleSet, counts: dict[str, np.ndarray], langs: list[str]) -> rules.Checks:
    """Every enabled check of a RuleSet, in FineWeb's order, for documents in languages `langs`."""
    checks: rules.Checks = []
    gq = rs.gopher_quality
    if rs.gopher_repetition.enabled:
        judged_from = gq.min_doc_words if gq.enabled and gq.short_prose else None
        checks += rules.gopher_repetition(s, rs.gopher_repetition, judged_from)
    if gq.enabled:
        floor = {lang: gq.short_prose_floor(lang) for lang in set(langs)}
        prose_floor = np.array([floor[lang] for lang in langs], dtype=np.float64)
        checks += rules.gopher_quality(s, gq, counts["hash"], counts["ellipsis"], prose_floor)
    if rs.c4.enabled:
        checks += rules.c4(s, rs.c4, counts["lorem_ipsum"])
    if rs.fineweb.enabled:
        checks += rules.fineweb(s, rs.fineweb)
    return checks


def quality_reasons(texts: pa.Array, langs: list[str], cfg: FilterConfig) -> np.ndarray:
    """First failing quality check per document (None when it passes every enabled rule).

    Documents are grouped by the RuleSet their language resolves to, and each group is checked at once.
    """
    counts = substring_counts(texts)
    by_lang: dict[str, list[int]] = {}
    for i, lang in enumerate(langs):
        by_lang.setdefault(lang, []).append(i)
    groups: dict[int, tuple[RuleSet, list[int]]] = {}
    for lang, idx in by_lang.items():
        rs = cfg.rules_for(lang)
        groups.setdefault(id(rs), (rs, []))[1].extend(idx)
    values = texts.to_pylist()
    reasons = np.full(len(values), None, dtype=object)
    for rs, idx in groups.values():
        dup = [getattr(rs.gopher_repetition, f"dup_{n}_gram_frac") for n in range(5, 11)]
        floor = min((t for t in dup if t is not None), default=1.0)
        stop = {lang: stop_word_set(rs.gopher_quality.stop_words, lang) for lang in {langs[i] for i in idx}}
        columns = batch_stats([values[i] for i in idx], [langs[i] for i in idx], rs.c4, rs.fineweb.short_line_length,
                              floor, stop)
        s = rules.Stats(columns._asdict())
        checks = rule_checks(s, rs, {k: v[idx] for k, v in counts.items()}, [langs[i] for i in idx])
        reasons[idx] = rules.first_failure(checks, len(idx))
    return reasons


def classifier_scores(
    texts: pa.Array, langs: list[str], reasons: np.ndarray, cfg: QualityConfig
) -> tuple[pa.Array, np.ndarray]:
    """Score the documents no earlier check dropped (in `cfg.languages`, when set); returns the
    quality_score column (null where not scored) and the updated reasons."""
    wanted = set(cfg.languages)
    todo = np.array(
        [r is None and (not wanted or lang in wanted) for r, lang in zip(reasons, langs)], dtype=bool
    )
    idx = np.flatnonzero(todo)
    values = np.zeros(len(texts), dtype=np.float32)
    if idx.size:
        values[idx] = quality.scores(texts.take(pa.array(idx)), cfg)
    reasons[todo & (values < cfg.threshold)] = quality.REASON
    return pa.array(values, type=pa.float32(), mask=~todo), reasons


def identify_and_check(texts: pa.Array, cfg: FilterConfig) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Language ID and the quality rules: (langs, scores, first failing check or None)."""
    langs, scores = identify(texts, cfg.langid_max_chars, cfg.langid_model)
    reasons = rules.first_failure(language_checks(texts, langs, scores, cfg), len(texts))
    alive = np.flatnonzero(reasons == None)  # noqa: E711 (elementwise on an object array)
    if alive.size:
        alive_texts = texts.take(pa.array(alive))
        reasons[alive] = quality_reasons(alive_texts, [langs[i] for i in alive], cfg)
    return langs, scores, reasons


# main_content.LONG_LINE (200 characters) in words, for the scripts written without spaces, where every
# character is a word (text.NO_SPACE_TOKEN): English prose averages ~6 characters a word with its space.
LONG_LINE_WORDS = 33


def prose_lines(text: str) -> list[str]:
    """The lines that read as prose: `main_content.LONG_LINE` characters or `LONG_LINE_WORDS` words long.
    Menus, buttons and footers are short lines, though many end in '.' or '?' ("Forgot your password?")."""
    lines = map(str.strip, text.split("\n"))
    return [line for line in lines if len(line) >= main_content.LONG_LINE or (  # a word has a character
        len(line) >= LONG_LINE_WORDS and len(NO_SPACE_TOKEN.findall(line)) >= LONG_LINE_WORDS)]


def content_languages(texts: list[str], page_langs: list[str], cfg: FilterConfig) -> list[str]:
    """The language of each page's prose lines, where it has any, else of the whole page. A page's language
    can be its menus' (English navigation around a German article), and jusText weighs the stop words of
    the language it is given."""
    prose = ["\n".join(prose_lines(text)) for text in texts]
    langs, _ = identify(pa.array(prose, type=pa.string()), cfg.langid_max_chars, cfg.langid_model)
    return [lang if lines else page for lang, lines, page in zip(langs, prose, page_langs)]


def kept_share(original: str, extracted: str) -> float:
    """The share of the original's prose characters (all its characters if it has no prose line) that the
    extracted text keeps: what a page loses with its menus and footers does not count."""
    whole = sum(map(len, prose_lines(original)))
    if not whole:
        return len(extracted.strip()) / max(1, len(original.strip()))
    return sum(map(len, prose_lines(extracted))) / whole


def main_content_rescue(
    texts: pa.Array, langs: list[str], scores: np.ndarray, reasons: np.ndarray, cfg: FilterConfig
) -> tuple[pa.Array, np.ndarray]:
    """Check the main content of rule-dropped documents again; returns the texts with the rescued ones
    replaced and the mask of rescued rows (langs, scores and reasons are updated in place). Main content
    that keeps less than `cfg.main_content_min_share` of the document's prose, or reads as another language
    than the document's prose lines, is a fragment of it: the document keeps its first decision."""
    todo = np.array([r is not None and r not in NOT_FIXED_BY_EXTRACTION for r in reasons], dtype=bool)
    rescued = np.zeros(len(texts), dtype=bool)
    idx = np.flatnonzero(todo)
    if not idx.size:
        return texts, rescued
    originals = texts.take(pa.array(idx)).to_pylist()
    content_langs = content_languages(originals, [langs[i] for i in idx], cfg)
    extracted = main_content.extract(originals, content_langs)
    changed = [
        k for k, (new, old) in enumerate(zip(extracted, originals))
        if new.strip() and new != old and kept_share(old, new) >= cfg.main_content_min_share
    ]
    if not changed:
        return texts, rescued
    new_texts = pa.array([extracted[k] for k in changed], type=texts.type)
    new_langs, new_scores, new_reasons = identify_and_check(new_texts, cfg)
    same_lang = np.array([new_langs[j] == content_langs[k] for j, k in enumerate(changed)], dtype=bool)
    passed = (new_reasons == None) & same_lang  # noqa: E711
    rows = idx[changed][passed]
    rescued[rows] = True
    for row, k in zip(rows, np.flatnonzero(passed)):
        langs[row] = new_langs[k]
    scores[rows] = new_scores[passed]
    reasons[rows] = None
    return pc.replace_with_mask(texts, pa.array(rescued), new_texts.filter(pa.array(passed))), rescued


def filter_batch(batch: pa.RecordBatch, cfg: FilterConfig) -> pa.RecordBatch:
    """Add lang, lang_score, _status, _reason, _main_content (and quality_score); rewrite text with PII
    placeholders when cfg.pii, and with its main content where that rescued the document."""
    texts = pc.fill_null(batch.column("text"), "")
    if cfg.pii:
        texts, _, _ = replace_pii_batch(texts)
    langs, scores, reasons = identify_and_check(texts, cfg)
    rescued = np.zeros(len(texts), dtype=bool)
    if cfg.main_content:
        texts, rescued = main_content_rescue(texts, langs, scores, reasons, cfg)
    if cfg.pii or rescued.any():
        batch = _set_column(batch, "text", texts.cast(batch.schema.field("text").type))
    if cfg.quality.enabled:
        quality_score, reasons = classifier_scores(texts, langs, reasons, cfg.quality)
    status = np.where(reasons == None, "kept", "dropped")  # noqa: E711
    batch = _set_column(batch, "lang", pa.array(langs, type=pa.string()))
    batch = _set_column(batch, "lang_score", pa.array(scores, type=pa.float32()))
    if cfg.quality.enabled:
        batch = _set_column(batch, "quality_score", quality_score)
    batch = _set_column(batch, "_status", pa.array(status.tolist(), type=pa.string()))
    batch = _set_column(batch, "_reason", pa.array(reasons.tolist(), type=pa.string()))
    return _set_column(batch, "_main_content", pa.array(rescued, type=pa.bool_()))


def filter_counters(batch: pa.RecordBatch) -> dict[str, int]:
    """Counts for stats.json from an output batch: rows per status/reason, documents kept with their
    extracted main content (`main_content_extracted`) and PII placeholders.

    Placeholders are counted in the output text, so a literal "<EMAIL>" already in the input counts too.
    """
    counts: dict[str, int] = {}
    for row in pa.Table.from_batches([batch]).group_by(["_status", "_reason"]).aggregate([([], "count_all")]).to_pylist():
        key = row["_status"] if row["_reason"] is None else f"{row['_status']}:{row['_reason']}"
        counts[key] = row["count_all"]
    counts["main_content_extracted"] = batch.column("_main_content").true_count
    texts = batch.column("text")
    counts["pii_email"] = int(pc.sum(pc.count_substring(texts, EMAIL_PLACEHOLDER)).as_py() or 0)
    counts["pii_ip"] = int(pc.sum(pc.count_substring(texts, IP_PLACEHOLDER)).as_py() or 0)
    return counts
