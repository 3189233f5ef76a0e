"""The filter's second chance for whole-page text: its jusText main content, checked again."""
from __future__ import annotations

import justext
import pytest

from pipeline.filter import FilterConfig, filter_batch, filter_counters
from pipeline.filter import batch as filter_batch_module
from pipeline.filter import main_content
from synthetic import DE, EN, batch_of

ARTICLE = [
    "The old lighthouse stood at the edge of the cliff for more than a century, and sailors who passed the "
    "headland at night looked for its beam to find their way home. It was built by the harbour board in the "
    "year the railway reached the town, and it has been painted white ever since.",
    "In the spring of that year the keeper and his daughter painted the tower white again. They carried the "
    "paint up the narrow stairs one bucket at a time, and the work took them most of a month, because the "
    "wind off the sea was too strong on many of the days they had planned for it.",
    "When the storm came in October, the light did not fail. The fishing boats that had been caught outside "
    "the harbour followed it through the rocks, and every crew reached the shore with their nets. The town "
    "still remembers that night, and the keeper's logbook is kept in the museum by the quay.",
]
MENU = ["Home", "News", "Events", "About us", "Visit the lighthouse", "Opening hours", "Tickets", "Shop",
        "Gallery", "Contact", "Log in", "Search", "Share on Facebook", "Share on Twitter", "Newsletter",
        "Privacy policy", "Cookie settings", "Terms of use", "Imprint", "Sitemap", "Careers", "Press",
        "© 2024 The Lighthouse Society"]
PAGE = "\n".join(MENU[:12] + ARTICLE + MENU[12:])  # a whole page's text: one block element per line


@pytest.fixture
def extract_calls(monkeypatch) -> list[list[str]]:
    """The texts each call of the real `main_content.extract` received."""
    calls: list[list[str]] = []
    real = main_content.extract

    def recording(texts, langs):
        calls.append(list(texts))
        return real(texts, langs)

    monkeypatch.setattr(filter_batch_module.main_content, "extract", recording)
    return calls


def test_whole_page_is_kept_with_its_main_content_only_with_the_switch():
    off = filter_batch(batch_of(PAGE), FilterConfig(main_content=False)).to_pylist()[0]
    assert (off["_status"], off["_reason"], off["_main_content"]) == ("dropped", "fineweb_line_punct_ratio", False)

    on = filter_batch(batch_of(PAGE), FilterConfig()).to_pylist()[0]
    assert (on["_status"], on["_reason"], on["_main_content"], on["lang"]) == ("kept", None, True, "en")
    assert on["text"] == "\n".join(ARTICLE)
    assert not set(on["text"].split("\n")) & set(MENU)


def test_a_page_of_only_menu_lines_stays_dropped_with_its_text_and_first_reason():
    menu_page = "\n".join(MENU * 3)
    row = filter_batch(batch_of(menu_page), FilterConfig()).to_pylist()[0]
    assert (row["_status"], row["_reason"], row["_main_content"]) == ("dropped", "gopher_rep_dup_line_frac", False)
    assert row["text"] == menu_page


def test_a_clean_document_is_untouched_and_never_extracted(extract_calls):
    text = "\n\n".join(ARTICLE)
    row = filter_batch(batch_of(text, EN), FilterConfig()).to_pylist()[0]
    assert (row["_status"], row["_main_content"], row["text"]) == ("kept", False, text)
    assert extract_calls == []


def test_reasons_extraction_cannot_fix_are_not_retried(extract_calls):
    short_page = "\n".join(MENU[:5] + ["A lighthouse stood on the cliff by the sea."])
    out = filter_batch(batch_of(short_page, DE, PAGE), FilterConfig(languages=["en"])).to_pylist()
    assert [r["_reason"] for r in out] == ["gopher_min_words", "language_not_selected", None]
    assert extract_calls == [[PAGE]]


def test_a_page_whose_menus_in_another_language_lower_its_language_score_is_kept_with_its_article():
    page = "\n".join(MENU * 3 + DE.split("\n\n") + MENU)  # English menus around a German article
    without = filter_batch(batch_of(page), FilterConfig(main_content=False)).to_pylist()[0]
    assert (without["_status"], without["_reason"]) == ("dropped", "lang_score_below_min")
    row = filter_batch(batch_of(page), FilterConfig()).to_pylist()[0]
    assert (row["_status"], row["lang"], row["_main_content"]) == ("kept", "de", True)
    assert row["lang_score"] >= 0.65 and not set(row["text"].split("\n")) & set(MENU)


def test_pii_placeholders_survive_the_html_round_trip():
    page = PAGE.replace("museum by the quay.", "museum by the quay; write to keeper@lighthouse.org for a visit.")
    row = filter_batch(batch_of(page), FilterConfig()).to_pylist()[0]
    assert row["_main_content"] and "write to <EMAIL> for a visit." in row["text"]


def test_counters_count_documents_kept_with_their_main_content():
    out = filter_batch(batch_of(PAGE, "\n".join(MENU * 3), EN), FilterConfig())
    counts = filter_counters(out)
    assert counts["main_content_extracted"] == 1
    assert counts["kept"] == 2 and sum(v for k, v in counts.items() if k.startswith("dropped:")) == 1


def test_language_without_a_stoplist_is_extracted_by_length_and_context():
    """jusText's language-independent mode (stop-word thresholds 0); with its default thresholds and an
    empty stoplist every paragraph would be boilerplate."""
    assert "gd" not in main_content.JUSTEXT_STOPLISTS
    assert main_content.extract([PAGE], ["gd"]) == ["\n".join(ARTICLE)]


def test_every_mapped_stoplist_exists_in_justext():
    assert set(main_content.JUSTEXT_STOPLISTS.values()) <= justext.get_stoplists()


NAV = ["Home", "News", "Events", "Gallery", "Tickets", "Contact"]  # link texts: no stop word, no punctuation


def test_a_menu_between_paragraphs_is_boilerplate_though_its_neighbours_are_content(monkeypatch):
    """jusText gives short lines their neighbours' class; in HTML a menu's link density marks it bad first,
    and in text a run of menu-like lines stands in for that."""
    page = "\n".join(ARTICLE[:1] + NAV + ARTICLE[1:])
    assert main_content.extract([page], ["en"]) == ["\n".join(ARTICLE)]
    monkeypatch.setattr(main_content, "MENU_RUN", len(NAV) + 1)
    assert main_content.extract([page], ["en"]) == [page]  # context alone keeps it


def test_verse_headings_and_short_runs_between_paragraphs_stay_content():
    verse = ["Bright star,", "Cold sea,", "Dark waves,", "Salt foam."]  # no stop word, but punctuated
    heading = ["Lighthouse Keeper", "Harbour Storm"]  # menu-like lines, but too few for a menu
    page = "\n".join(ARTICLE[:1] + verse + ARTICLE[1:2] + heading + ARTICLE[2:])
    assert main_content.extract([page], ["en"]) == [page]


def test_lines_without_a_word_are_no_menu():
    diagram = ["+----+----+", "| 12 | 40 |", "+----+----+"]
    page = "\n".join(ARTICLE[:1] + diagram + ARTICLE[1:])
    paragraphs = [main_content._Line(line) for line in page.split("\n")]
    main_content.classify_paragraphs(paragraphs, main_content._stoplist("en"))
    main_content._mark_menus(paragraphs, main_content._stoplist("en"))
    assert [p.cf_class for p in paragraphs[1:4]] == ["short"] * 3


def test_a_short_line_repeated_in_the_page_is_its_templates():
    """The "Reply" under every comment: jusText's context would keep it between two paragraphs of content."""
    page = "\n".join([ARTICLE[0], "Reply", ARTICLE[1], "Reply", ARTICLE[2], "Reply"])
    assert main_content.extract([page], ["en"]) == ["\n".join(ARTICLE)]
    once = "\n".join([ARTICLE[0], "Reply", ARTICLE[1], ARTICLE[2]])
    assert main_content.extract([once], ["en"]) == [once]


def test_a_repeated_short_line_that_ends_a_sentence_stays():
    dialogue = "\n".join([ARTICLE[0], "HILDA.", ARTICLE[1], "HILDA.", ARTICLE[2]])  # a play's speaker names
    assert main_content.extract([dialogue], ["en"]) == [dialogue]


def test_a_paragraph_the_page_shows_twice_is_main_content_once():
    """A teaser above its article, a post quoted in the reply below it."""
    page = "\n".join([ARTICLE[0], *NAV, *ARTICLE])
    assert main_content.extract([page], ["en"]) == ["\n".join(ARTICLE)]


def test_main_content_is_extracted_in_the_language_of_the_pages_long_lines():
    """English navigation around a German article: whole, the page reads as English, and jusText given
    English stop words would find no German paragraph good."""
    page = "\n".join(MENU * 3 + DE.split("\n\n") + MENU)
    menus_only = "\n".join(MENU)
    cfg = FilterConfig()
    assert filter_batch_module.content_languages([page, menus_only], ["en", "fr"], cfg) == ["de", "fr"]


JA_CHAPTER = [  # lines of a script written without spaces: prose by their full stops, not their length
    "灯台は百年以上もの間、崖の端に立っていた。夜に岬を通る船乗りたちは、家への道を見つけるためにその光を探した。",
    "その年の春、灯台守と娘は塔をもう一度白く塗った。二人は狭い階段をバケツ一つずつ運び上げ、仕事にはほぼ一か月かかった。",
    "十月に嵐が来たとき、灯は消えなかった。港の外で嵐に遭った漁船はその光を頼りに岩の間を抜け、どの船も網と共に岸へ戻った。",
]


def test_a_chapter_is_not_rescued_as_its_one_paragraph_in_another_language():
    chapter = "\n".join(["第一章", "目次", *JA_CHAPTER * 6, ARTICLE[0], *["次へ", "戻る"] * 3])
    for cfg in (FilterConfig(), FilterConfig(main_content_min_share=0.0)):  # the language check alone holds too
        row = filter_batch(batch_of(chapter), cfg).to_pylist()[0]
        assert (row["_status"], row["lang"], row["_main_content"], row["text"]) == ("dropped", "ja", False, chapter)


def test_main_content_keeping_too_little_of_the_prose_leaves_the_first_decision():
    """jusText cuts long lines with few stop words (a product's specifications): prose the page had."""
    specs = [f"Lighthouse lamp model LX-20{i}, brass housing, 400 mm lens, 12 V halogen bulb, rotating base, "
             "white paint, coastal grade steel bolts, marine varnish, copper wiring, glass dome, spare fuses, "
             "wall bracket." for i in range(4)]
    page = "\n".join(MENU[:12] + ARTICLE[:1] + specs + MENU[12:])
    assert main_content.extract([page], ["en"]) == [ARTICLE[0]]
    assert filter_batch_module.kept_share(PAGE, "\n".join(ARTICLE)) == 1.0  # menus are no prose
    assert 0.2 < filter_batch_module.kept_share(page, ARTICLE[0]) < 0.5
    default = filter_batch(batch_of(page), FilterConfig()).to_pylist()[0]
    assert (default["_status"], default["_main_content"], default["text"]) == ("dropped", False, page)
    lenient = filter_batch(batch_of(page), FilterConfig(main_content_min_share=0.2)).to_pylist()[0]
    assert (lenient["_status"], lenient["_main_content"], lenient["text"]) == ("kept", True, ARTICLE[0])


def test_main_content_min_share_must_be_a_share():
    with pytest.raises(ValueError, match="main_content_min_share"):
        FilterConfig(main_content_min_share=1.5)
