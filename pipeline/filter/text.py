"""Per-document statistics that the quality rules compare with their thresholds, computed for a whole batch
at once (words and n-grams with Arrow and NumPy over all documents, lines and paragraphs per document).

Language awareness lives here:
- Words are whitespace tokens stripped of leading/trailing punctuation and common symbols; a token that
  is only punctuation ("-", "--", "...", quotes) is not a word. datatrove counts nltk's punctuation tokens
  as words, which is why it drops a quarter of English Gutenberg chapters as "below alpha threshold".
- Scripts written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Myanmar, Tibetan): words are
  those of ICU's word segmentation (Unicode's word boundaries with ICU's dictionaries for these scripts,
  `segment`), so Gopher's n-word n-grams and word counts mean there what they mean in English. Counting
  every character as a word made a five-word n-gram two Thai or Japanese words, which recur in any text.
  The repetition fractions measure such a text as if its words were spaced (`spaced_lengths`), as their
  numerators count a space per word.
- The mean-word-length check is meaningless for those scripts and for Korean (a token is a cluster of
  syllable blocks, 2-4 characters) and Vietnamese (one syllable per token): it does not apply there.
- Stop words: Gopher's English list for English and, for the 40 other languages of wordfreq, a list that
  covers as much of the language's text as Gopher's covers of English; a language without a list is not
  subject to the stop-word check.
"""
from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from itertools import repeat
from typing import NamedTuple

import icu
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

from pipeline.filter.config import C4Config

# Stripped from both ends of a token; a token made only of these is not a word.
PUNCT = (
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "¡¿«»‹›„‚“”‘’–—―‐‑…·•‧°§¶†‡©®™±×÷→←↑↓↔⇒★☆♥♦♣♠■□▪▫●○◆◇►▶◀✓✔✗❖"
    "、。，．！？；：「」『』（）［］｛｝【】《》〈〉〔〕〜・｜"
    "،؛؟٪۔।॥¦"
)
# Terminal punctuation for "line ends a sentence" (FineWeb, C4, short prose): every character with
# Unicode's Sentence_Terminal property, so a script's full stop counts without being listed (Armenian '։',
# Ethiopic '።', Myanmar '။', Khmer '។', Devanagari '।', and scripts nobody listed), plus closing quotes
# and brackets, which count as in datatrove's list (dialogue ends in '.”'). Unicode leaves out marks that
# end sentences only in some languages; those are added where the script needs them:
# - Tibetan's shad '།' and nyis shad '༎' end clauses and sentences (The Unicode Standard, 13.4 Tibetan);
#   no other language writes them, so they count everywhere.
# - Greek asks with ';' (U+037E GREEK QUESTION MARK is canonically ';'): CLDR's Greek sentence-break
#   tailoring (common/segments/el.xml) adds both to STerm. ';' is no sentence end elsewhere, so it counts
#   only in Greek documents (`LANG_TERMINALS`).
SENTENCE_TERMINAL = "".join(regex.findall(r"\p{Sentence_Terminal}", "".join(map(chr, range(0x110000)))))
SCRIPT_TERMINALS = "\u0f0d\u0f0e"
LANG_TERMINALS = {"el": frozenset(";\u037e")}
# The former hand list's marks: all Sentence_Terminal, kept so that no version of the tables can drop one.
LISTED_TERMINALS = ".!?。！？｡؟۔।॥։።။"
FINAL_MARKS = "".join(sorted(set(LISTED_TERMINALS + SENTENCE_TERMINAL + SCRIPT_TERMINALS)))
CLOSERS = "\"'”’»」』)"
TERMINALS = frozenset(FINAL_MARKS + CLOSERS)
# The look-alikes writers type for a script's full stop, counted only right after a letter of that script
# (so no other script's rules loosen): ':' for Armenian '։' (U+0589; Unicode's confusables, UTS #39, give
# ':' as its look-alike), '|' and '||' for the danda '।' and double danda '॥' (vertical strokes) of the
# Indic scripts that end sentences with them, and two Ethiopic wordspaces '፡፡' for the Ethiopic full stop
# '።' (U+1362, drawn as two wordspaces).
STAND_IN_MARKS = frozenset(":|፡")
STAND_IN = regex.compile(
    r"(?:\p{Armenian}\p{M}*:"
    r"|[\p{Devanagari}\p{Bengali}\p{Gurmukhi}\p{Gujarati}\p{Oriya}]\p{M}*\s?\|\|?"
    r"|\p{Ethiopic}\s?፡፡)$"
)
# Emoji (with their modifiers, joiners and keycaps) and dingbats after a line's last mark do not end it:
# "... Zink und Magnesium. 🌰" ends a sentence. Nor do invisible format characters (general category Cf:
# bidirectional marks, which right-to-left text often carries after its full stop, zero-width spaces and
# joiners, the BOM).
PICTOGRAPH = "\u200d\ufe0f\u20e3\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff"
INVISIBLE = "\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
ENDS_IN_PICTOGRAPH = re.compile(f"[{PICTOGRAPH}{INVISIBLE}]$")
PICTOGRAPH_RUN = re.compile(f"[\\s{PICTOGRAPH}{INVISIBLE}]+")
BULLETS = ("•", "-", "*", "·", "◦", "‣", "▪")
ELLIPSES = ("...", "…")


@cache
def terminals_for(lang: str) -> tuple[frozenset[str], re.Pattern]:
    """The characters a line of `lang` may end a sentence with, and C4's sentence count's pattern for it: a
    run of sentence-final marks before a space, a closer or the line's end."""
    extra = LANG_TERMINALS.get(lang, frozenset())
    marks = re.escape(FINAL_MARKS + "".join(sorted(extra)))
    return TERMINALS | extra, re.compile(f"[{marks}]+(?=[\\s{re.escape(CLOSERS)}]|$)")


NO_SPACE_LANGS = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "yue", "wuu"})
# A language lid.176 does not know keeps its model's label, which names its script (pipeline/filter/langid.py).
NO_SPACE_SCRIPTS = ("_Hani", "_Hans", "_Hant", "_Jpan", "_Thai", "_Laoo", "_Khmr", "_Mymr", "_Tibt")
TOP_GRAMS = (2, 3, 4)  # Gopher's "top n-gram" fractions
DUP_GRAMS = tuple(range(5, 11))  # Gopher's "duplicated n-gram" fractions
NO_AVG_WORD_LENGTH_LANGS = NO_SPACE_LANGS | {"ko", "vi"}
_NO_SPACE_CHAR = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"  # kana, Han
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u0f00-\u0fff"  # Thai, Lao, Myanmar, Khmer, Tibetan
)
# A rough word count without segmenting (main-content extraction's prose lines): a character of those
# scripts with the combining marks that follow it (their punctuation, such as the Tibetan tsheg, is none),
# or a run of other non-space characters.
NO_SPACE_TOKEN = regex.compile(
    f"(?V1)[[{_NO_SPACE_CHAR}]--[\\p{{M}}\\p{{P}}\\p{{S}}]]\\p{{M}}*|[^\\s{_NO_SPACE_CHAR}]+"
)


def without_spaces(lang: str) -> bool:
    """Whether `lang` is written without spaces between words, so that its words come from `segment`."""
    return lang in NO_SPACE_LANGS or lang.endswith(NO_SPACE_SCRIPTS)


@cache
def _word_breaks() -> icu.BreakIterator:
    """One ICU word-break iterator per process (Spark's Python workers run one task at a time)."""
    return icu.BreakIterator.createWordInstance(icu.Locale.getRoot())


def segment(text: str) -> list[str]:
    """The words of `text` by ICU's word segmentation: Unicode's word boundaries (UAX #29) with ICU's
    dictionaries for Chinese, Japanese, Thai, Lao, Khmer and Burmese; Tibetan falls into its syllables.
    Spaces and punctuation between words are no words (their rule status is UBRK_WORD_NONE)."""
    breaks, units = _word_breaks(), icu.UnicodeString(text)  # ICU's offsets count UTF-16 code units
    breaks.setText(units)
    words, start = [], breaks.first()
    for end in breaks:
        if breaks.getRuleStatus() != 0:
            words.append(str(units[start:end]))
        start = end
    return words


# Gopher's list for English (datatrove's STOP_WORDS); for the other languages wordfreq's most frequent words,
# as many as cover as much of the language's text as Gopher's list covers of English (stop_words.json,
# written by pipeline/filter/stop_words_build.py). Read as package data, so it loads from spark-submit's
# --py-files zip too.
GOPHER_STOP_WORDS = frozenset("the be to of and that have with".split())
STOP_WORDS_FILE = resources.files(__package__) / "stop_words.json"
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": GOPHER_STOP_WORDS,
    **{lang: frozenset(words) for lang, words in json.loads(STOP_WORDS_FILE.read_text(encoding="utf-8"))["lists"].items()},
}


class DocStats(NamedTuple):
    """Numbers per document (from `batch_stats`, one array per field over a batch); NaN means "not defined
    for this language" and makes the check not apply."""

    text_len: int
    n_words: int
    mean_word_len: float
    n_alpha_words: int
    n_stop_words: float
    n_lines: int  # non-empty lines: a blank line separates paragraphs, it is not a line of content
    n_all_lines: int  # blank lines too: the denominator of Gopher's bullet and ellipsis ratios in datatrove
    n_bullet_lines: int
    n_ellipsis_end_lines: int
    n_punct_end_lines: int  # C4's line test: a terminal mark, ellipses excluded
    n_terminal_end_lines: int  # FineWeb's (datatrove's): any line ending in a terminal mark, "..." included
    first_line_open: bool  # the first non-empty line neither ends a sentence nor trails off: a title, in short prose
    n_short_lines: int
    n_dup_lines: int
    dup_line_chars: int
    line_chars: int
    n_paras: int
    n_dup_paras: int
    dup_para_chars: int
    c4_sentences: int  # counted until C4's minimum is reached
    c4_curly_bracket: bool
    top_2_gram: float
    top_3_gram: float
    top_4_gram: float
    dup_5_gram: float
    dup_6_gram: float
    dup_7_gram: float
    dup_8_gram: float
    dup_9_gram: float
    dup_10_gram: float


C4_POLICY = re.compile("terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies")
PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)


@cache
def _letter() -> str:
    r"""An RE2 character class of exactly the characters Python's `[^\W\d_]` matches (a letter, or a numeral
    that is not a decimal digit, such as '²'): RE2's own `\w` is ASCII-only and its Unicode tables need not
    be the version Python's are, so the class is read off Python's `re` over every code point."""
    every = np.arange(0x110000, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    return "[" + "".join(f"\\x{{{m.start():x}}}-\\x{{{m.end() - 1:x}}}" for m in re.finditer(r"[^\W\d_]+", every)) + "]"


def batch_words(texts: list[str], langs: list[str], lower: bool = True) -> tuple[pa.Array, np.ndarray]:
    """Every document's lower-cased words (see the module docstring for what counts as one) in one flat
    Arrow array, and the document (index into `texts`) of each word; `lower=False` keeps them as written.

    Python lower-cases, because Arrow's `utf8_lower` differs from `str.lower()` ('İ' becomes two characters
    in Python, a final 'Σ' becomes 'ς', Arrow's Unicode tables are of another version), and cuts no-space
    scripts into words (`segment`), joined with spaces. Arrow splits on whitespace (the characters `str.split()` splits
    on, tested) and strips punctuation (`utf8_trim` is `str.strip(PUNCT)`).
    """
    cased = (text.lower() if lower else text for text in texts)
    prepared = [" ".join(segment(text)) if without_spaces(lang) else text for text, lang in zip(cased, langs)]
    tokens = pc.utf8_split_whitespace(pa.array(prepared, pa.large_string()))
    stripped = pc.utf8_trim(pc.list_flatten(tokens), PUNCT)
    words = pc.not_equal(pc.binary_length(stripped), 0)  # a token of punctuation only is no word
    return stripped.filter(words), pc.list_parent_indices(tokens).filter(words).to_numpy()


def count_listed(encoded: pa.DictionaryArray, doc: np.ndarray, langs: list[str],
                 lists: dict[str, frozenset[str] | None]) -> np.ndarray:
    """Per document, how many of its words (dictionary-encoded, `doc` the document of each) are in its
    language's list; NaN for a language without one. One (language, distinct word) table looked up by every
    word."""
    code = {lang: k for k, lang in enumerate(sorted(set(langs)))}
    lang_of = np.array([code[lang] for lang in langs], dtype=np.int64)
    listed = np.zeros((len(code), len(encoded.dictionary)), dtype=bool)
    has_list = np.zeros(len(code), dtype=bool)
    for lang, k in code.items():
        if lists.get(lang):
            has_list[k] = True
            found = pc.index_in(pa.array(sorted(lists[lang]), encoded.dictionary.type), value_set=encoded.dictionary)
            listed[k, found.drop_null().to_numpy()] = True
    word = encoded.indices.to_numpy()
    counts = np.bincount(doc[listed[lang_of[doc], word]], minlength=len(langs)).astype(np.float64)
    counts[~has_list[lang_of]] = np.nan
    return counts


def stop_word_set(stop_words: list[str] | None, lang: str) -> frozenset[str] | None:
    """A configured stop-word list as the document's words see it: normalised like words, keeping only the
    entries that are one word (an entry the segmenter cuts in two can never be one of a document's words).
    None keeps this module's list for the language."""
    if stop_words is None:
        return None
    return frozenset(w[0] for w in (words_of(s, lang) for s in stop_words) if len(w) == 1)


def words_of(text: str, lang: str) -> list[str]:
    """Lower-cased words of one text: the definition `batch_words` computes for a whole batch."""
    low = text.lower()
    tokens = segment(low) if without_spaces(lang) else low.split()
    return list(filter(None, map(str.strip, tokens, repeat(PUNCT))))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that spreads neighbouring integers over all 64 bits."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _repeats(pos: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The k-grams (start positions `pos`, hashes `h`) whose hash occurs more than once: their positions and
    hashes, and for each the first position and the number of occurrences of its hash. One unstable sort;
    the first occurrence is the smallest position in a run of equal hashes, whatever order the sort left."""
    order = np.argsort(h)
    s = h[order]
    same = s[1:] == s[:-1]
    repeated = np.zeros(len(h), dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    pos, h = pos[order[repeated]], s[repeated]
    if not pos.size:
        return pos, h, pos, pos
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])  # first index of every run of equal hashes
    sizes = np.diff(np.r_[starts, len(h)])
    return pos, h, np.repeat(np.minimum.reduceat(pos, starts), sizes), np.repeat(sizes, sizes)


def _top_fraction(pos, first, count, lens, doc, k: int, n: int, denom: np.ndarray) -> np.ndarray:
    """Per document, the characters of its most frequent repeated k-gram times its count, over its length;
    among equally frequent ones the one that occurs first, as in datatrove's `Counter.most_common`."""
    n_docs = len(denom)
    out = np.zeros(n_docs)
    starts, counts = pos[pos == first], count[pos == first]
    top = np.zeros(n_docs, dtype=np.int64)
    np.maximum.at(top, doc[starts], counts)
    ties = counts == top[doc[starts]]
    start = np.full(n_docs, n)
    np.minimum.at(start, doc[starts[ties]], starts[ties])
    has = np.flatnonzero(top)
    chars = lens[start[has, None] + np.arange(k)].sum(axis=1) + k - 1
    out[has] = top[has] * chars / denom[has]
    return out


def ngram_fractions(
    ids: np.ndarray, lens: np.ndarray, doc: np.ndarray, text_lens: np.ndarray, dup_floor: float = 0.0,
) -> np.ndarray:
    """Gopher's repetition fractions, rows top 2..4-gram and duplicated 5..10-gram character fractions, one
    column per document; `ids`, `lens` and `doc` are the flat words' ids, lengths and documents (in order).

    Each k-gram is a 64-bit rolling hash of its words' ids, and the same word has another id in another
    document, so the k-grams of the whole batch are grouped at once, with one sort per k; only equality
    within one document matters, never the hash values (ties are broken by position). A k-gram can only
    repeat where the (k-1)-gram it starts with repeats, so after the 2-grams only those are sorted (a
    2-gram across two documents never repeats).
    "Duplicated" characters are those of words covered by any repeated occurrence of an n-gram
    (overlaps counted once), which is the Gopher paper's definition. The covered words of repeated
    (n+1)-grams are a subset of those of repeated n-grams, so the fraction never grows with n: once a
    document's is at most `dup_floor` (the lowest duplicated-n-gram threshold), its longer n-grams keep that
    value as an upper bound instead of being counted.
    """
    n_docs, n = len(text_lens), len(ids)
    top, dup = {}, {}
    ends = np.cumsum(np.bincount(doc, minlength=n_docs))  # one past each document's last word
    denom = np.maximum(text_lens, 1)
    open_ = np.ones(n_docs, dtype=bool)  # documents whose duplicated fraction is still above dup_floor
    pos, h = np.arange(n - 1), ids[:-1] * _HASH_MUL + ids[1:]
    for k in range(2, DUP_GRAMS[-1] + 1):
        pos, h, first, count = _repeats(pos, h)
        if k in TOP_GRAMS:
            top[k] = _top_fraction(pos, first, count, lens, doc, k, n, denom)
        if k >= DUP_GRAMS[0]:
            covered = np.zeros(n, dtype=bool)  # the words of every occurrence of a k-gram after its first
            covered[(pos[pos != first, None] + np.arange(k)).ravel()] = True
            chars = np.bincount(doc[covered], weights=lens[covered] + 1, minlength=n_docs)
            dup[k] = np.where(open_, np.minimum(1.0, chars / denom), dup.get(k - 1, 1.0))
            # a document stays open until its last top k-gram is counted
            open_ &= dup[k] > dup_floor
        # the (k+1)-gram fits in an open document
        more = (ends[doc[pos]] - pos > k) & open_[doc[pos]]
        pos = pos[more]
        h = h[more] * _HASH_MUL + ids[pos + k]
    rows = [(top, g) for g in TOP_GRAMS] + [(dup, g) for g in DUP_GRAMS]
    return np.array([fractions.get(g, np.zeros(n_docs)) for fractions, g in rows]).reshape(len(rows), n_docs)


def _line_stats(text: str, lang: str, c4: C4Config, short_line_length: int) -> tuple:
    """The DocStats fields from n_lines to c4_curly_bracket; the C4 line pass runs only when C4's rules apply."""
    no_space = without_spaces(lang)
    terminals, sentence_end = terminals_for(lang)
    all_lines = text.split("\n")
    lines = [s for s in (line.strip() for line in all_lines) if s]
    n_bullet = n_ellipsis = n_punct = n_terminal = n_short = 0
    sentences = 0
    curly = False
    c4_lines = c4.enabled and (c4.min_num_sentences is not None or c4.filter_curly_bracket)  # what it counts for
    has_curly = "{" in text
    enough_sentences = c4.min_num_sentences if c4.min_num_sentences is not None else float("inf")
    first_line_open = False
    for k, line in enumerate(lines):
        if line.startswith(BULLETS):
            n_bullet += 1
        end = line
        if ENDS_IN_PICTOGRAPH.match(line, len(line) - 1):  # matched on the reversed line: linear in its length
            end = line[: len(line) - PICTOGRAPH_RUN.match(line[::-1]).end()]
        ends_sentence = end[-1:] in terminals or (end[-1:] in STAND_IN_MARKS and STAND_IN.search(end[-8:]) is not None)
        n_terminal += ends_sentence
        trails_off = end.endswith(ELLIPSES)
        if trails_off:
            n_ellipsis += 1
            ends_sentence = False
        n_punct += ends_sentence
        if k == 0:
            first_line_open = not ends_sentence and not trails_off
        n_short += len(line) <= short_line_length
        # C4's line filter, used only to count the sentences a page keeps (and its curly-bracket drop).
        if not c4_lines or (c4.filter_no_terminal_punct and not ends_sentence):
            continue
        line_words = segment(line) if no_space else line.split()
        if len(line_words) < c4.min_words_per_line or max(map(len, line_words), default=0) > c4.max_word_length:
            continue
        low = line.lower()
        if c4.filter_javascript and "javascript" in low:
            continue
        if "{" in line:
            curly = True
        if c4.filter_policy and C4_POLICY.search(low):
            continue
        sentences += max(1, len(sentence_end.findall(line)))
        if sentences >= enough_sentences and not has_curly:
            c4_lines = False  # the count can only pass the threshold now, and no line can fail the page
    n_dup_lines, dup_line_chars = _duplicates(lines)
    paras = [p for p in PARAGRAPH_BREAK.split(text.strip()) if p]
    n_dup_paras, dup_para_chars = _duplicates(paras)
    return (
        len(lines), len(all_lines), n_bullet, n_ellipsis, n_punct, n_terminal, first_line_open, n_short, n_dup_lines,
        dup_line_chars, sum(map(len, lines)), len(paras), n_dup_paras, dup_para_chars, sentences, curly,
    )


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(number, total length) of items equal to an earlier one."""
    seen: set[str] = set()
    n = chars = 0
    for item in items:
        if item in seen:
            n += 1
            chars += len(item)
        else:
            seen.add(item)
    return n, chars


def spaced_lengths(texts: list[str], langs: list[str], text_lens: np.ndarray, n_words: np.ndarray) -> np.ndarray:
    """Each text's length as if its words were separated by spaces, the denominator of the repetition
    fractions: their numerators count a space after every word, as English text has one, so a text written
    without spaces (Japanese, Thai, ...) is measured with as many more characters as it lacks spaces between
    its words, or the same repetition reads up to 1.5 times higher there. Other texts keep their length."""
    unspaced = np.flatnonzero([without_spaces(lang) for lang in langs])
    if not unspaced.size:
        return text_lens
    runs = pc.count_substring_regex(pa.array([texts[i] for i in unspaced], pa.large_string()), r"\s+")
    out = text_lens.copy()
    out[unspaced] += np.maximum(0, n_words[unspaced] - runs.to_numpy(zero_copy_only=False))
    return out


def batch_stats(
    texts: list[str], langs: list[str], c4: C4Config, short_line_length: int, dup_floor: float = 0.0,
    stop_words: dict[str, frozenset[str] | None] | None = None,
) -> DocStats:
    """All statistics of a batch of documents, one array per field. The word statistics are computed for
    the whole batch at once; lines and paragraphs per document. `stop_words` replaces a language's
    STOP_WORDS list (a None entry keeps it); an empty set, like no list, makes the stop-word check not apply."""
    n_docs = len(texts)
    words, doc = batch_words(texts, langs)
    n_words = np.bincount(doc, minlength=n_docs)
    lens = pc.utf8_length(words).to_numpy()
    with np.errstate(invalid="ignore"):
        mean_word_len = np.bincount(doc, weights=lens, minlength=n_docs) / n_words
    mean_word_len[[without_spaces(lang) or lang in NO_AVG_WORD_LENGTH_LANGS for lang in langs]] = np.nan
    alpha = pc.match_substring_regex(words, _letter()).to_numpy(zero_copy_only=False)  # the word has a letter
    n_alpha = np.bincount(doc[alpha], minlength=n_docs)

    encoded = pc.dictionary_encode(words)
    word = encoded.indices.to_numpy().astype(np.uint64)
    lists = {lang: STOP_WORDS.get(lang) if (stop_words or {}).get(lang) is None else stop_words[lang] for lang in set(langs)}
    n_stop = count_listed(encoded, doc, langs, lists)

    text_lens = np.array([len(text) for text in texts], dtype=np.int64)
    ids = _mix(word * np.uint64(n_docs) + doc.astype(np.uint64))  # distinct per (word, document)
    ngrams = ngram_fractions(ids, lens, doc, spaced_lengths(texts, langs, text_lens, n_words), dup_floor)
    lines = [_line_stats(text, lang, c4, short_line_length) for text, lang in zip(texts, langs)]
    line_columns = [np.array(column) for column in zip(*lines)] if lines else [np.zeros(0)] * 15
    return DocStats(text_lens, n_words, mean_word_len, n_alpha, n_stop, *line_columns, *ngrams)


def doc_stats(
    text: str, lang: str, c4: C4Config, short_line_length: int, dup_floor: float = 0.0,
    stop_words: frozenset[str] | None = None,
) -> DocStats:
    """`batch_stats` of one document, as Python numbers."""
    columns = batch_stats([text], [lang], c4, short_line_length, dup_floor, {lang: stop_words})
    return DocStats(*(column[0].item() for column in columns))
