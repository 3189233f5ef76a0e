"""Regenerate `stop_words.json`: for every language of wordfreq, a stop-word list as strong as Gopher's.

Gopher's rule asks for two of eight English words (the, be, to, of, and, that, have, with), which together
make 16% of English running text. A list that covers less of a language's text is a stricter test: a short
Turkish sentence seldom holds two of Turkish's ten commonest function words, as Turkish marks with suffixes
much of what English marks with words. So each language gets its most frequent words, in wordfreq's "best"
list, until they cover as much of its text as Gopher's list covers of English, and at least as many words
(eight). Only entries that are one word as the filter splits text (`words_of`) count; English keeps Gopher's
own list, and Korean has none (wordfreq's Korean entries are particles, never a whitespace-separated word).

wordfreq is not a dependency of corpusforge; run this with it installed:

    pip install wordfreq==3.1.1 && python -m pipeline.filter.stop_words_build
"""
from __future__ import annotations

import json
import unicodedata
from importlib.metadata import version
from pathlib import Path

from pipeline.filter.text import GOPHER_STOP_WORDS, words_of

OUTPUT = Path(__file__).with_name("stop_words.json")
WORDLIST = "best"
SKIPPED = {"en": "Gopher's own list", "ko": "entries are particles, never a whitespace-separated Korean word"}
LID176_CODE = {"nb": "no", "fil": "tl"}  # wordfreq code -> the code lid.176 predicts


def is_word(entry: str) -> bool:
    """A word of letters (and combining marks): no digits, punctuation, symbols or spaces."""
    return any(c.isalpha() for c in entry) and not any(unicodedata.category(c)[0] in "NPSZ" for c in entry)


def build() -> dict:
    import wordfreq

    english = wordfreq.get_frequency_dict("en", wordlist=WORDLIST)
    target = sum(english[w] for w in GOPHER_STOP_WORDS)
    lists, coverage = {}, {}
    for source in sorted(wordfreq.available_languages(wordlist=WORDLIST)):
        if source in SKIPPED:
            continue
        lang = LID176_CODE.get(source, source)
        frequencies = wordfreq.get_frequency_dict(source, wordlist=WORDLIST)
        words, covered = [], 0.0
        for entry, frequency in sorted(frequencies.items(), key=lambda kv: (-kv[1], kv[0])):
            if not is_word(entry) or words_of(entry, lang) != [entry]:
                continue
            words.append(entry)
            covered += frequency
            if covered >= target and len(words) >= len(GOPHER_STOP_WORDS):
                break
        lists[lang], coverage[lang] = words, round(covered, 4)
    return {
        "source": {
            "library": f"wordfreq {version('wordfreq')}, wordlist '{WORDLIST}' (https://github.com/rspeer/wordfreq)",
            "licence": "wordfreq's data: CC BY-SA 4.0 (its README); these lists are derived from it",
            "rule": "most frequent words until they cover as much text as Gopher's English list covers of "
                    "English, and at least as many words",
            "generated_by": "python -m pipeline.filter.stop_words_build",
            "skipped": SKIPPED,
        },
        "target_coverage": round(target, 4),
        "coverage": coverage,
        "lists": lists,
    }


def main() -> None:
    OUTPUT.write_text(json.dumps(build(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
