"""Per-document statistics that the quality rules compare with their thresholds, computed in one pass.

Language awareness lives here:
- Words are whitespace tokens stripped of leading/trailing punctuation and common symbols; a token that
  is only punctuation ("-", "--", "...", quotes) is not a word. datatrove counts nltk's punctuation tokens
  as words, which is why it drops a quarter of English Gutenberg chapters as "below alpha threshold".
- Scripts written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Myanmar, Tibetan): every character
  of such a script counts as one word, a documented proxy for a segmenter (a Chinese word averages about
  1.5 characters, so length thresholds become a little more lenient, never stricter).
- The mean-word-length check is meaningless for those scripts and for Korean (a token is a cluster of
  syllable blocks, 2-4 characters) and Vietnamese (one syllable per token): it does not apply there.
- Stop words: Gopher's English list for English and a list of comparably frequent function words for
  other languages; a language without a list is not subject to the stop-word check.
"""
from __future__ import annotations

import re
from itertools import repeat
from typing import NamedTuple

import numpy as np

from pipeline.filter.config import C4Config

# Stripped from both ends of a token; a token made only of these is not a word.
PUNCT = (
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "¡¿«»‹›„‚“”‘’–—―‐‑…·•‧°§¶†‡©®™±×÷→←↑↓↔⇒★☆♥♦♣♠■□▪▫●○◆◇►▶◀✓✔✗❖"
    "、。，．！？；：「」『』（）［］｛｝【】《》〈〉〔〕〜・｜"
    "،؛؟٪۔।॥¦"
)
# Terminal punctuation for "line ends a sentence" (FineWeb, C4): datatrove's newest default is also
# multilingual. Closing quotes and brackets count, as in datatrove's list.
TERMINAL_PUNCT = tuple(".!?\"'”’»」』)。！？｡؟۔।॥։።။")
BULLETS = ("•", "-", "*", "·", "◦", "‣", "▪")
ELLIPSES = ("...", "…")
SENTENCE_END = re.compile(r"[.!?。！？｡؟۔।॥]+(?=[\s\"'”’»」』)]|$)")
ALPHA_WORD = re.compile(r"(?<!\S)\S*?[^\W\d_]")  # a word containing at least one letter

NO_SPACE_LANGS = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "yue", "wuu"})
NO_AVG_WORD_LENGTH_LANGS = NO_SPACE_LANGS | {"ko", "vi"}
_NO_SPACE_CHAR = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"  # kana, Han
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u0f00-\u0fff"  # Thai, Lao, Myanmar, Khmer, Tibetan
)
NO_SPACE_TOKEN = re.compile(f"[{_NO_SPACE_CHAR}]|[^\\s{_NO_SPACE_CHAR}]+")

# Gopher's list for English (datatrove STOP_WORDS); for the others the most frequent function words.
STOP_WORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the be to of and that have with",
        "de": "der die und in den von zu das mit sich des auf ist nicht",
        "fr": "de la le et les des en un du une que est pour dans",
        "es": "de la que el en y los del se las por un para con",
        "pt": "de a o que e do da em um para com não os no",
        "it": "di e il la che in un per del non è una con sono",
        "nl": "de en van het een in is dat op te zijn met niet",
        "pl": "w i na z się do nie że to jest jak o",
        "cs": "a se v na je že to s z do o jsem ale",
        "ru": "и в не на что с он я как по это его",
        "uk": "і в не на що з я та як це до",
        "sv": "och i att det som en på är av för med inte",
        "da": "og i at det er en til på de med for ikke",
        "no": "og i det er som på at en til av for ikke",
        "fi": "ja on ei se että oli hän mutta kun niin",
        "tr": "bir ve bu da de için ile çok ne gibi",
        "hu": "a az és hogy nem is egy de meg van",
        "ro": "și de în a la cu care nu o un să",
        "id": "yang dan di itu dengan untuk dari ini dalam tidak",
        "ms": "yang dan di itu dengan untuk dari ini dalam tidak",
        "vi": "của và là có không được những người một trong các",
        "el": "και το να η της του με σε που τα είναι",
        "hi": "के है में की और से को का एक पर",
        "ar": "في من على أن إلى التي الذي عن ما مع",
        "fa": "و در به از که این را با است برای",
        "he": "של את על לא הוא זה עם כי גם היא",
    }.items()
}


class DocStats(NamedTuple):
    """Numbers per document; NaN means "not defined for this language" and makes the check not apply."""

    text_len: int
    n_words: int
    mean_word_len: float
    n_alpha_words: int
    n_stop_words: float
    n_lines: int  # non-empty lines: a blank line separates paragraphs, it is not a line of content
    n_bullet_lines: int
    n_ellipsis_end_lines: int
    n_punct_end_lines: int
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


def words_of(text: str, lang: str) -> list[str]:
    """Lower-cased words (see the module docstring for what counts as one)."""
    low = text.lower()
    tokens = NO_SPACE_TOKEN.findall(low) if lang in NO_SPACE_LANGS else low.split()
    return list(filter(None, map(str.strip, tokens, repeat(PUNCT))))


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


def _runs(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first position, count) of every distinct n-gram hash in `h`, from one unstable sort: the first
    position of a hash is the smallest index in its run of equal values, whatever order the sort left."""
    order = np.argsort(h)
    s = h[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first index of every run of equal hashes
    return np.minimum.reduceat(order, starts), np.diff(np.r_[starts, len(s)])


def _top_ngram(h: np.ndarray) -> tuple[int, int]:
    """(count, first position) of the most frequent n-gram hash; count 1 when nothing repeats. Among
    equally frequent n-grams the one that occurs first wins, as in datatrove's `Counter.most_common`,
    so the result never depends on the (per-process) hash values."""
    firsts, counts = _runs(h)
    top = counts.max()
    if top < 2:
        return 1, 0
    return int(top), int(firsts[counts == top].min())


def _later_occurrences(h: np.ndarray) -> np.ndarray:
    """Positions of every occurrence of an n-gram hash after its first."""
    firsts, _ = _runs(h)
    later = np.ones(len(h), dtype=bool)
    later[firsts] = False
    return np.flatnonzero(later)


def ngram_fractions(words: list[str], lens: np.ndarray, text_len: int, dup_floor: float = 0.0) -> list[float]:
    """Gopher's repetition fractions: top 2..4-gram and duplicated 5..10-gram character fractions.

    Words are mapped to their (per-process) string hash and n-grams to 64-bit rolling hashes of those, so
    each n costs one NumPy sort; only equality within one document matters, never the hash values (ties
    are broken by position).
    "Duplicated" characters are those of words covered by any repeated occurrence of an n-gram
    (overlaps counted once), which is the Gopher paper's definition. The covered words of repeated
    (n+1)-grams are a subset of those of repeated n-grams, so the fraction never grows with n: once it is
    at most `dup_floor` (the lowest duplicated-n-gram threshold), the longer n-grams keep that value as an
    upper bound instead of being sorted.
    """
    out = [0.0] * 9
    n = len(words)
    if n < 2:
        return out
    ids = np.fromiter(map(hash, words), dtype=np.int64, count=n).view(np.uint64)
    cum = np.concatenate(([0], np.cumsum(lens + 1)))
    denom = max(text_len, 1)
    h = ids
    for k in range(2, 11):
        if n < k:
            break
        h = h[:-1] * _HASH_MUL + ids[k - 1 :]
        if k <= 4:
            count, start = _top_ngram(h)
            if count > 1:
                out[k - 2] = count * (cum[start + k] - cum[start] - 1) / denom
            continue
        starts = _later_occurrences(h)
        if starts.size == 0:
            break  # no repeated k-gram means no repeated longer one either
        edges = np.bincount(starts, minlength=n + 1) - np.bincount(starts + k, minlength=n + 1)
        covered = np.cumsum(edges[:n]) > 0
        out[k - 2] = min(1.0, float(lens[covered].sum() + covered.sum()) / denom)
        if out[k - 2] <= dup_floor:
            out[k - 1 :] = [out[k - 2]] * (10 - k)
            break
    return out


def doc_stats(
    text: str, lang: str, c4: C4Config, short_line_length: int, dup_floor: float = 0.0,
    stop_words: frozenset[str] | None = None,
) -> DocStats:
    """All statistics of one document; the C4 line pass runs only when C4's rules apply to it. `stop_words`
    replaces the language's STOP_WORDS list; an empty set, like no list, makes the stop-word check not apply."""
    words = words_of(text, lang)
    n_words = len(words)
    no_space = lang in NO_SPACE_LANGS
    lens = np.fromiter(map(len, words), dtype=np.int64, count=n_words)
    if n_words and lang not in NO_AVG_WORD_LENGTH_LANGS:
        mean_word_len = float(lens.mean())
    else:
        mean_word_len = float("nan")
    n_alpha = len(ALPHA_WORD.findall(" ".join(words)))
    stop = STOP_WORDS.get(lang) if stop_words is None else stop_words
    n_stop = float(sum(map(stop.__contains__, words))) if stop else float("nan")

    lines = [s for s in (line.strip() for line in text.split("\n")) if s]
    n_bullet = n_ellipsis = n_punct = n_short = 0
    sentences = 0
    curly = False
    c4_lines = c4.enabled
    has_curly = "{" in text
    enough_sentences = c4.min_num_sentences if c4.min_num_sentences is not None else float("inf")
    for line in lines:
        if line.startswith(BULLETS):
            n_bullet += 1
        ends_sentence = line.endswith(TERMINAL_PUNCT)
        if line.endswith(ELLIPSES):
            n_ellipsis += 1
            ends_sentence = False
        n_punct += ends_sentence
        n_short += len(line) <= short_line_length
        # C4's line filter, used only to count the sentences a page keeps (and its curly-bracket drop).
        if not c4_lines or (c4.filter_no_terminal_punct and not ends_sentence):
            continue
        line_words = NO_SPACE_TOKEN.findall(line) if no_space else line.split()
        if len(line_words) < c4.min_words_per_line or max(map(len, line_words), default=0) > c4.max_word_length:
            continue
        low = line.lower()
        if c4.filter_javascript and "javascript" in low:
            continue
        if "{" in line:
            curly = True
        if c4.filter_policy and C4_POLICY.search(low):
            continue
        sentences += max(1, len(SENTENCE_END.findall(line)))
        if sentences >= enough_sentences and not has_curly:
            c4_lines = False  # the count can only pass the threshold now, and no line can fail the page
    n_dup_lines, dup_line_chars = _duplicates(lines)
    paras = [p for p in PARAGRAPH_BREAK.split(text.strip()) if p]
    n_dup_paras, dup_para_chars = _duplicates(paras)
    return DocStats(
        len(text), n_words, mean_word_len, n_alpha, n_stop,
        len(lines), n_bullet, n_ellipsis, n_punct, n_short, n_dup_lines, dup_line_chars, sum(map(len, lines)),
        len(paras), n_dup_paras, dup_para_chars, sentences, curly,
        *ngram_fractions(words, lens, len(text), dup_floor),
    )
