"""Main content of whole-page text with jusText, the second chance of a document a quality rule dropped.

FineWeb's and FineWeb-2's rules were designed for the main content trafilatura extracts from HTML. Web
documents that arrive as a whole page's text (menus, footers, one block element per line) fail their
line-structure rules although the article inside would pass. jusText (Pomikálek's algorithm: paragraph
length, stop-word density and the neighbouring paragraphs; trafilatura's fallback, and Pile-CC's
extractor) classifies every line of such a text as a paragraph of content or boilerplate.
"""
from __future__ import annotations

import functools
import html

import justext
from justext.core import ParagraphMaker, classify_paragraphs, html_to_dom, preprocessor, revise_paragraph_classification
from justext.paragraph import Paragraph

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


@functools.cache
def _stoplist(lang: str) -> frozenset[str]:
    name = JUSTEXT_STOPLISTS.get(lang)
    return justext.get_stoplist(name) if name else frozenset()


class _FixedTextParagraph(Paragraph):
    """A paragraph whose text is joined and whitespace-normalised once: jusText's `Paragraph.text`
    recomputes it on every read (about ten per paragraph while classifying), although it no longer
    changes once the page is parsed, and that was most of the extraction's cost."""

    text = functools.cached_property(Paragraph.text.fget)


class _ParagraphMaker(ParagraphMaker):
    """jusText's DOM-to-paragraphs walk, building `_FixedTextParagraph`s (the body is jusText's own)."""

    def _start_new_pragraph(self):
        if self.paragraph and self.paragraph.contains_text():
            self.paragraphs.append(self.paragraph)
        self.paragraph = _FixedTextParagraph(self.path)


def _paragraphs(page: bytes, stoplist: frozenset[str], **density) -> list[Paragraph]:
    """`justext.justext` step by step (same functions, same defaults), with the paragraphs above."""
    dom = preprocessor(html_to_dom(page, encoding="utf-8"))
    paragraphs = _ParagraphMaker.make_paragraphs(dom)
    classify_paragraphs(paragraphs, stoplist, **density)
    revise_paragraph_classification(paragraphs)
    return paragraphs


def _main_content(text: str, lang: str) -> str:
    page = "".join(f"<p>{html.escape(line)}</p>" for line in text.split("\n") if line.strip())
    stoplist = _stoplist(lang)
    # Without a stoplist jusText's own command line switches to its language-independent mode: stop-word
    # density thresholds 0, so length and context alone decide.
    density = {} if stoplist else {"stopwords_low": 0, "stopwords_high": 0}
    paragraphs = _paragraphs(f"<html><body>{page}</body></html>".encode(), stoplist, **density)
    return "\n".join(p.text for p in paragraphs if not p.is_boilerplate)


def extract(texts: list[str], langs: list[str]) -> list[str]:
    """The main content of each text (its lines taken as paragraphs, in the stoplist of its language);
    empty when jusText finds none."""
    return [_main_content(text, lang) for text, lang in zip(texts, langs)]
