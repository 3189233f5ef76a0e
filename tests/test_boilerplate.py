"""C4-style boilerplate line removal: policy / cookie / JavaScript lines go, content lines stay."""
from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.clean.boilerplate import remove_boilerplate, remove_boilerplate_lines

ARTICLE = "The council approved the new harbour plan on Tuesday.\n\nWork on the pier starts in May."


@pytest.mark.parametrize(
    "line",
    [
        "We use cookies to improve your experience on our site. Accept",
        "This website uses cookies. By continuing you agree to our Privacy Policy and Terms of Use.",
        "Please enable JavaScript to view the comments.",
        "Privacy | Impressum | Cookie settings",
        "Diese Website verwendet Cookies, um Ihnen das beste Erlebnis zu bieten.",
        "Datenschutzerklärung",
        "Ce site utilise des cookies pour améliorer votre expérience.",
        "Este sitio web utiliza cookies para mejorar su experiencia.",
        "Для работы сайта необходимо включите JavaScript в настройках браузера.",
    ],
)
def test_boilerplate_lines_are_removed(line):
    text, removed = remove_boilerplate_lines(f"{line}\n{ARTICLE}\n{line}")
    assert (text, removed) == (ARTICLE, 2)


@pytest.mark.parametrize(
    "text",
    [
        ARTICLE,
        "We baked cookies for the harbour festival and sold them all.",
        "JavaScript is a programming language that runs in the browser.",
        "Privacy is a right that the court has protected for decades.",
        # a long paragraph that discusses a privacy policy is content, not page furniture
        "The regulator said the company changed its privacy policy " + "after the complaints of users " * 12 + ".",
    ],
)
def test_content_lines_are_untouched(text):
    assert remove_boilerplate_lines(text) == (text, 0)


def test_blank_lines_and_spacing_are_preserved():
    text = "  Indented first line.\n\n\nPrivacy Policy\nLast line with trailing space. "
    assert remove_boilerplate_lines(text) == ("  Indented first line.\n\n\nLast line with trailing space. ", 1)


def test_batch_removal_gives_the_per_text_results_and_leaves_untriggered_texts_alone():
    """The RE2 pre-selection must not miss a text or line Python's lowercased search would catch: upper case,
    other scripts, and U+0130, which only `str.lower` turns into an "i" (plus a combining dot) that can end a phrase."""
    texts = [
        f"Privacy Policy\n{ARTICLE}",
        ARTICLE,
        None,
        f"{ARTICLE}\nDIESE WEBSITE VERWENDET COOKIES.\n\nPRIVACY | IMPRESSUM",
        "НАШ САЙТ ИСПОЛЬЗУЕТ ФАЙЛЫ COOKIE.\nТекст статьи.",
        "Note legali\nTERMINI E CONDIZIONİ\nThe harbour plan.",
        "We baked cookies for the harbour festival.",
        "",
    ]
    cleaned, removed = remove_boilerplate(pa.array(texts, pa.string()))
    expected = [(t, 0) if t is None else remove_boilerplate_lines(t) for t in texts]
    assert cleaned.to_pylist() == [t for t, _ in expected]
    assert removed == sum(n for _, n in expected) == 5
