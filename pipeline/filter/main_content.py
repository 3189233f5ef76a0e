"""Main content of whole-page text with jusText, the second chance of a document a quality rule dropped.

FineWeb's and FineWeb-2's rules were designed for the main content trafilatura extracts from HTML. Web
documents that arrive as a whole page's text (menus, footers, one block element per line) fail their
line-structure rules although the article inside would pass. jusText (Pomikálek's algorithm: paragraph
length, stop-word density and the neighbouring paragraphs; trafilatura's fallback, and Pile-CC's
extractor) classifies every line of such a text as a paragraph of content or boilerplate. The lines go
to jusText's classifier as the paragraphs its HTML parser would make of them, and its context step runs
in linear time (`revise`); a test holds both to jusText's own functions.

One signal jusText takes from HTML is gone from text: link density, which marks a menu bad however short
its items. A run of menu-like lines (`_mark_menus`) stands in for it, and so does a short line that recurs
in the page (`_mark_repeated`: the page template's "Reply" under every comment).
"""
from __future__ import annotations

import collections
import functools
import re
from collections.abc import Iterable, Iterator

import justext
from justext.core import classify_paragraphs
from justext.paragraph import Paragraph
from justext.utils import normalize_whitespace

from pipeline.filter.text import TERMINALS

# lid.176 language code -> jusText stoplist (jusText names its stoplists by English language name).
JUSTEXT_STOPLISTS = {
    "af": "Afrikaans", "an": "Aragonese", "ar": "Arabic", "ast": "Asturian", "az": "Azerbaijani",
    "be": "Belarusian", "bg": "Bulgarian", "bn": "Bengali", "bpy": "Bishnupriya_Manipuri", "br": "Breton",
    "bs": "Bosnian", "ca": "Catalan", "ceb": "Cebuano", "cs": "Czech", "cv": "Chuvash", "cy": "Welsh",
    "da": "Danish", "de": "German", "el": "Greek", "en": "English", "eo": "Esperanto", "es": "Spanish",
    "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French", "fy": "West_Frisian",
    "ga": "Irish", "gl": "Galician", "gu": "Gujarati", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian",
    "ht": "Haitian", "hu": "Hungarian", "hy": "Armenian", "id": "Indonesian", "io": "Ido", "is": "Icelandic",
    "it": "Italian", "jv": "Javanese", "ka": "Georgian", "kk": "Kazakh", "kn": "Kannada", "ko": "Korean",
    "ku": "Kurdish", "ky": "Kyrgyz", "la": "Latin", "lb": "Luxembourgish", "lmo": "Lombard", "lt": "Lithuanian",
    "lv": "Latvian", "mk": "Macedonian", "ml": "Malayalam", "mr": "Marathi", "ms": "Malay", "mt": "Maltese",
    "nap": "Neapolitan", "nds": "Low_Saxon", "ne": "Nepali", "new": "Newar", "nl": "Dutch",
    "nn": "Norwegian_Nynorsk", "no": "Norwegian_Bokmal", "oc": "Occitan", "pl": "Polish", "pms": "Piedmontese",
    "pnb": "Western_Panjabi", "pt": "Portuguese", "qu": "Quechua", "ro": "Romanian", "ru": "Russian",
    "scn": "Sicilian", "sh": "Serbo_Croatian", "sk": "Slovak", "sl": "Slovenian", "sq": "Albanian",
    "sr": "Serbian", "su": "Sundanese", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "te": "Telugu",
    "tk": "Turkmen", "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek",
    "vi": "Vietnamese", "vo": "Volapuk", "wa": "Walloon", "war": "Waray_Waray", "yo": "Yoruba",
}


# A menu is a list of link texts ("Home", "Kontakt", "Mentions légales"): short lines without a stop word and
# without punctuation that ends or continues a sentence. Three in a row make a menu; fewer may be a heading
# and its subtitle. Verse and dialogue end their lines with punctuation or carry stop words, and lines
# without a word of two letters (ASCII diagrams, rules of dashes) are left to jusText's own classes.
MENU_RUN = 3
LONG_LINE = 200  # jusText's length_high: a paragraph this long may be content without its neighbours
# Every script's sentence-final marks end a sentence here too (`text.TERMINALS`): Armenian verse ends in '։'.
LINE_END_PUNCT = re.compile("[" + re.escape("".join(sorted(set(".!?:;,…、。！？)]\"'”’»」』") | TERMINALS))) + "]$")
LETTER_WORD = re.compile(r"[^\W\d_]{2,}")


@functools.cache
def _stoplist(lang: str) -> frozenset[str]:
    name = JUSTEXT_STOPLISTS.get(lang)
    return justext.get_stoplist(name) if name else frozenset()


class _Line(Paragraph):
    """One line of the text as the paragraph jusText's HTML parser and DOM walk make of `<p>line</p>`,
    without writing and parsing that HTML: never a heading, no links, text normalised once (jusText's
    `Paragraph.text` recomputes it on every read, about ten per paragraph while classifying)."""

    text = None  # shadows jusText's property: set once per line below

    def __init__(self, line: str):
        self.dom_path, self.xpath = "html.body.p", "/html[1]/body[1]/p[1]"
        self.text_nodes = [line]
        self.text = normalize_whitespace(line.strip())
        self.chars_count_in_links = 0
        self.tags_count = 0
        self.class_type = ""


def _menu_like(paragraph: Paragraph, stoplist: frozenset[str]) -> bool:
    return (
        paragraph.cf_class == "short"
        and paragraph.stopwords_count(stoplist) == 0
        and not LINE_END_PUNCT.search(paragraph.text)
        and LETTER_WORD.search(paragraph.text) is not None
    )


def _mark_menus(paragraphs: list[Paragraph], stoplist: frozenset[str]) -> None:
    """Classify every run of at least MENU_RUN menu-like lines bad, as jusText classifies the links of a menu
    in HTML, before the context step (so the short lines around a menu follow it)."""
    run: list[Paragraph] = []
    for paragraph in [*paragraphs, None]:
        if paragraph is not None and _menu_like(paragraph, stoplist):
            run.append(paragraph)
            continue
        if len(run) >= MENU_RUN:
            for item in run:
                item.cf_class = "bad"
        run = []


def _mark_repeated(paragraphs: list[Paragraph]) -> None:
    """Classify bad every short line that ends no sentence and occurs more than once in the page: the
    template's links repeat ("Antworten" under every comment, "Mehr erfahren" under every teaser, "Inhalt
    teilen" beside every picture), while an article seldom repeats a line. A refrain without punctuation
    goes with them: the cost of a second chance for a text the first pass dropped whole."""
    counts = collections.Counter(p.text for p in paragraphs)
    for paragraph in paragraphs:
        if paragraph.cf_class == "short" and counts[paragraph.text] > 1 and not LINE_END_PUNCT.search(paragraph.text):
            paragraph.cf_class = "bad"


def _nearest(classes: list[str], kinds: frozenset[str], order: range) -> list[str]:
    """For each index, the class of the nearest paragraph before it in `order` whose class is in `kinds`,
    or 'bad' at the edge (jusText's `_get_neighbour`)."""
    out, last = [""] * len(classes), "bad"
    for i in order:
        out[i] = last
        if classes[i] in kinds:
            last = classes[i]
    return out


def revise(paragraphs: list[Paragraph]) -> None:
    """jusText's `revise_paragraph_classification` for paragraphs that are never headings (its heading
    steps then do nothing), in linear time: jusText finds a short paragraph's neighbours by walking the
    block of short paragraphs around it, which is quadratic in a text of many short lines."""
    classes = [p.cf_class for p in paragraphs]
    forward, backward = range(len(classes)), range(len(classes) - 1, -1, -1)
    good_or_bad, not_short = frozenset(("good", "bad")), frozenset(("good", "bad", "neargood"))
    prev, next_ = _nearest(classes, good_or_bad, forward), _nearest(classes, good_or_bad, backward)
    prev_any, next_any = _nearest(classes, not_short, forward), _nearest(classes, not_short, backward)
    revised = list(classes)
    for i, c in enumerate(classes):  # a short paragraph takes its context's class
        if c != "short":
            continue
        if prev[i] == next_[i]:
            revised[i] = prev[i]
        elif (prev[i] == "bad" and prev_any[i] == "neargood") or (next_[i] == "bad" and next_any[i] == "neargood"):
            revised[i] = "good"
        else:
            revised[i] = "bad"
    # A near-good paragraph between two bad ones is bad, else good. Revised in order, so the one before it
    # is already good or bad; the next good or bad one is looked up among the unrevised classes.
    next_ = _nearest(revised, good_or_bad, backward)
    for i, c in enumerate(revised):
        if c == "neargood":
            before = revised[i - 1] if i else "bad"
            revised[i] = "bad" if (before, next_[i]) == ("bad", "bad") else "good"
    for paragraph, c in zip(paragraphs, revised):
        paragraph.class_type = c


def _main_content(text: str, lang: str) -> str:
    paragraphs = [_Line(line) for line in text.split("\n") if line.strip()]
    stoplist = _stoplist(lang)
    # Without a stoplist jusText's own command line switches to its language-independent mode: stop-word
    # density thresholds 0, so length and context alone decide.
    density = {} if stoplist else {"stopwords_low": 0, "stopwords_high": 0}
    classify_paragraphs(paragraphs, stoplist, **density)
    if stoplist:  # without stop words every short line would look like a menu item
        _mark_menus(paragraphs, stoplist)
    _mark_repeated(paragraphs)
    revise(paragraphs)
    return "\n".join(_once(p.text for p in paragraphs if not p.is_boilerplate))


def _once(lines: Iterable[str]) -> Iterator[str]:
    """The lines, a long one (content on its own) only the first time: a page shows a teaser above its
    article, or quotes a post in the reply below it. Short lines may repeat: a play's speaker names."""
    seen: set[str] = set()
    for line in lines:
        if len(line) >= LONG_LINE:
            if line in seen:
                continue
            seen.add(line)
        yield line


def extract(texts: list[str], langs: list[str]) -> list[str]:
    """The main content of each text (its lines taken as paragraphs, in the stoplist of its language);
    empty when jusText finds none."""
    return [_main_content(text, lang) for text, lang in zip(texts, langs)]
