"""Every rule that asks whether a line ends a sentence knows every script's sentence-final marks (Unicode's
Sentence_Terminal property), and English lines end sentences exactly where they did."""
from __future__ import annotations

import pytest
import regex

from pipeline.filter import FilterConfig, main_content, rules
from pipeline.filter.config import C4Config
from pipeline.filter.text import LANG_TERMINALS, SENTENCE_TERMINAL, TERMINALS, batch_stats, doc_stats
from synthetic import EN, failing

# Three sentences per language, one a line, each ending in its script's full stop.
SENTENCES = {
    "hy": ("Հին փարոսը կանգնած էր ժայռի եզրին ավելի քան հարյուր տարի", "։",
           "Նավաստիները գիշերը փնտրում էին նրա լույսը տուն վերադառնալու համար",
           "Աշնանը փոթորիկը եկավ բայց լույսը չմարեց և բոլոր նավակները վերադարձան"),
    "am": ("አሮጌው የብርሃን ማማ ከመቶ ዓመት በላይ በገደሉ ጫፍ ላይ ቆሞ ነበር", "።",
           "መርከበኞች በሌሊት ወደ ቤታቸው የሚወስደውን መንገድ ለማግኘት ብርሃኑን ይፈልጉ ነበር",
           "በጥቅምት ወር ማዕበሉ ሲመጣ ብርሃኑ አልጠፋም እና ሁሉም ጀልባዎች ወደ ባህር ዳርቻ ተመለሱ"),
    "my": ("မီးပြတိုက်ဟောင်းသည် ကမ်းပါးစွန်းတွင် နှစ်ပေါင်းတစ်ရာကျော် ရပ်တည်ခဲ့သည်", "။",
           "ညအခါ သင်္ဘောသားများသည် အိမ်ပြန်လမ်းကို ရှာရန် ၎င်း၏အလင်းကို ရှာဖွေကြသည်",
           "အောက်တိုဘာလတွင် မုန်တိုင်းကျရောက်သောအခါ အလင်းမငြိမ်းခဲ့ပါ"),
    "hi": ("पुराना प्रकाशस्तंभ सौ साल से अधिक समय तक चट्टान के किनारे खड़ा रहा", "।",
           "रात में गुजरने वाले नाविक घर का रास्ता खोजने के लिए उसकी रोशनी ढूंढते थे",
           "अक्टूबर में जब तूफान आया तो रोशनी नहीं बुझी और सभी नावें किनारे पर लौट आईं"),
    "bo": ("འོད་སྒྲོན་རྙིང་པ་དེ་བྲག་གི་མཐའ་ལ་ལོ་བརྒྱ་ལྷག་ཙམ་བཞེངས་ཡོད", "།",
           "མཚན་མོར་གྲུ་པ་རྣམས་ཀྱིས་ཁྱིམ་དུ་ལོག་པའི་ལམ་འཚོལ་ཆེད་དེའི་འོད་ལ་བལྟས",
           "ཟླ་བ་བཅུ་པར་རླུང་དམར་བྱུང་དུས་འོད་དེ་མ་ཤི་བར་གྲུ་ཚང་མ་འགྲམ་དུ་ལོག"),
    "km": ("ប៉មភ្លើងចាស់បានឈរនៅលើគែមច្រាំងថ្មអស់រយៈពេលជាងមួយរយឆ្នាំ", "។",
           "នៅពេលយប់ពួកនាវិកបានស្វែងរកពន្លឺរបស់វាដើម្បីរកផ្លូវទៅផ្ទះវិញ",
           "នៅខែតុលានៅពេលព្យុះមកដល់ពន្លឺមិនបានរលត់ទេហើយទូកទាំងអស់បានត្រឡប់មកច្រាំងវិញ"),
    "si": ("පැරණි ප්‍රදීපාගාරය වසර සියයකට වැඩි කාලයක් කඳු ශිඛරයේ කෙළවරේ සිටගෙන සිටියේය", ".",
           "රාත්‍රියේදී ඒ අසලින් ගිය නාවිකයෝ නිවසට යන මග සොයා ගැනීමට එහි ආලෝකය සෙව්වෝය",
           "ඔක්තෝබර් මාසයේ කුණාටුව පැමිණි විට ආලෝකය නිවී ගියේ නැත සියලු බෝට්ටු වෙරළට පැමිණියේය"),
    "mn": ("ᠡᠨᠡ ᠭᠡᠷᠡᠯ ᠲᠤ ᠶᠢᠨ ᠠᠶᠠᠭ᠎ᠠ ᠵᠠᠭᠤᠨ ᠵᠢᠯ ᠦᠨ ᠳᠠᠷᠤᠢ ᠬᠠᠳᠠ ᠶᠢᠨ ᠡᠷᠭᠢ ᠳᠡᠭᠡᠷ᠎ᠡ ᠪᠠᠶᠢᠭᠰᠠᠨ", "᠃",
           "ᠰᠦᠨᠢ ᠳᠠᠯᠠᠢ ᠶᠢᠨ ᠬᠦᠮᠦᠰ ᠭᠡᠷ ᠲᠦ ᠪᠡᠨ ᠬᠦᠷᠬᠦ ᠵᠠᠮ ᠢ ᠡᠷᠢᠵᠦ ᠲᠡᠭᠦᠨ ᠦ ᠭᠡᠷᠡᠯ ᠢ ᠬᠠᠢᠵᠠᠢ",
           "ᠠᠷᠪᠠᠳᠤᠭᠠᠷ ᠰᠠᠷ᠎ᠠ ᠳᠤ ᠱᠠᠭᠤᠷᠭ᠎ᠠ ᠢᠷᠡᠬᠦ ᠳᠦ ᠭᠡᠷᠡᠯ ᠤᠨᠲᠠᠷᠠᠭᠰᠠᠨ ᠦᠭᠡᠢ"),  # Unicode's alone: no list names it
}


def text_of(lang: str, marked: bool = True) -> str:
    """The language's three sentences, one a line, with or without their final marks."""
    first, mark, *rest = SENTENCES[lang]
    return "\n".join(line + (mark if marked else "") for line in (first, *rest))


LANGS = sorted(SENTENCES)


@pytest.mark.parametrize("lang", LANGS)
def test_a_line_ending_in_the_scripts_full_stop_ends_a_sentence_in_every_line_count(lang):
    """The counts FineWeb's punctuation ratio (terminal), C4's line test and short prose (punct) read."""
    s = doc_stats(text_of(lang), lang, C4Config(), 30)
    assert (s.n_lines, s.n_terminal_end_lines, s.n_punct_end_lines, s.first_line_open) == (3, 3, 3, False)
    bare = doc_stats(text_of(lang, marked=False), lang, C4Config(), 30)
    assert (bare.n_terminal_end_lines, bare.n_punct_end_lines, bare.first_line_open) == (0, 0, True)


@pytest.mark.parametrize("lang", LANGS)
def test_fineweb_line_punct_ratio_keeps_lines_ending_in_the_scripts_full_stop(lang):
    assert "fineweb_line_punct_ratio" not in failing(text_of(lang), lang)
    assert "fineweb_line_punct_ratio" in failing(text_of(lang, marked=False), lang)


@pytest.mark.parametrize("lang", LANGS)
def test_c4_terminal_punctuation_line_test_keeps_and_counts_the_scripts_sentences(lang):
    c4 = C4Config(filter_no_terminal_punct=True, min_num_sentences=None)
    assert doc_stats(text_of(lang), lang, c4, 30).c4_sentences == 3
    assert doc_stats(text_of(lang, marked=False), lang, c4, 30).c4_sentences == 0
    two_in_a_line = text_of(lang).replace("\n", " ", 1)
    assert doc_stats(two_in_a_line, lang, C4Config(min_num_sentences=None), 30).c4_sentences == 3


@pytest.mark.parametrize("lang", LANGS)
def test_short_prose_is_recognised_by_the_scripts_full_stop(lang):
    rs = FilterConfig().rules_for(lang)
    texts = [text_of(lang), text_of(lang, marked=False)]
    s = rules.Stats(batch_stats(texts, [lang] * 2, rs.c4, rs.fineweb.short_line_length)._asdict())
    assert rules.short_prose(s, rs.gopher_quality.short_prose_floor(lang)).tolist() == [True, False]


@pytest.mark.parametrize("lang", LANGS)
def test_main_content_does_not_take_the_scripts_sentences_for_a_menu(lang):
    first, mark, *_ = SENTENCES[lang]
    short = " ".join(first.split()[:3])
    assert main_content.LINE_END_PUNCT.search(short + mark)
    assert not main_content.LINE_END_PUNCT.search(short)


def test_the_marks_are_unicodes_sentence_terminals():
    assert set(SENTENCE_TERMINAL) <= TERMINALS
    assert all(regex.fullmatch(r"\p{Sentence_Terminal}", ch) for ch in SENTENCE_TERMINAL)
    assert {"\u0589", "\u1362", "\u104b", "\u0964", "\u17d4", "\u1803", "\u0f0d", "\u0f0e"} <= TERMINALS


def test_english_lines_end_sentences_where_they_did():
    """The ASCII marks are the former list's, so no English line changes its count; a semicolon ends a
    sentence (a question) only in Greek."""
    former = ".!?\"'”’»」』)。！？｡؟۔।॥։።။"
    assert set(former) <= TERMINALS
    assert {ch for ch in TERMINALS if ch.isascii()} == set(".!?\"')")
    assert ";" not in TERMINALS and ";" in LANG_TERMINALS["el"]
    lines = "The keeper climbed the stairs;\nHe lit the lamp:\nThe storm came.\nWas it late?\n(It was)\n\"Go!\""
    s = doc_stats(lines, "en", C4Config(), 30)
    assert (s.n_terminal_end_lines, s.n_punct_end_lines) == (4, 4)
    assert doc_stats(EN, "en", C4Config(min_num_sentences=None), 30).c4_sentences == 6


def test_a_greek_question_ends_a_sentence_in_greek_only():
    question = "Πού είναι ο παλιός φάρος που στεκόταν στην άκρη του γκρεμού;"
    assert doc_stats(question, "el", C4Config(), 30).n_punct_end_lines == 1
    assert doc_stats(question.replace(";", "\u037e"), "el", C4Config(), 30).n_punct_end_lines == 1
    assert doc_stats(question, "en", C4Config(), 30).n_punct_end_lines == 0


def test_invisible_format_characters_after_the_full_stop_do_not_unfinish_a_line():
    """Right-to-left text often carries a bidirectional mark after its full stop."""
    for mark in ("\u200f", "\u200e", "\u061c", "\u200b", "\ufeff"):
        line = "This line ends a sentence." + mark
        assert batch_stats([line], ["en"], C4Config(), 30).n_terminal_end_lines[0] == 1, repr(mark)


@pytest.mark.parametrize("line", ["Բարեւ ձեզ, սա նախադասություն է:", "ਇਹ ਪੰਜਾਬੀ ਦਾ ਇੱਕ ਵਾਕ ਹੈ |", "यह हिंदी का वाक्य है||",
                                  "ይህ የአማርኛ ዓረፍተ ነገር ነው፡፡"])
def test_a_scripts_typed_stand_in_for_its_full_stop_ends_a_line_of_that_script(line):
    assert batch_stats([line], ["xx"], C4Config(), 30).n_terminal_end_lines[0] == 1


@pytest.mark.parametrize("line", ["The list follows:", "a | b |", "Ends with wordspaces፡፡"])
def test_the_stand_ins_end_no_line_of_another_script(line):
    assert batch_stats([line], ["en"], C4Config(), 30).n_terminal_end_lines[0] == 0
