"""A language-ID model given by path (`filter.langid_model`): GlotLID-style labels, checks, the filter stage."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import config as config_lib
from pipeline.filter import FilterConfig, filter_batch, langid, quality_train_spark
from pipeline.filter.config import language_code
from pipeline import stages
from pipeline.stages.config import PipelineConfig
from pipeline.stagedir import StageError
from synthetic import DE, EN, ZH, batch_of

# Ecuadorian Kichwa, which lid.176 does not know (it is unsure between its Quechua and Spanish).
QUG = ("Ñukanchik llaktaka urkukunapak chawpipimi kan. Tutamanta tukuy runakuna chakraman rinkuna, sarata, "
       "papata, chuchukatapash tarpunkapak. Wawakunaka yachana wasiman rinkuna, chaypimi kichwa shimita, kastilla "
       "shimitapash yachakunkuna. Chishi pachaka mamakunaka mikunata yanunkuna, taytakunaka wakrakunata, "
       "llamakunatapash kamankuna. Raymi punllakunapika tukuy ayllukuna tantanakunkuna, takinkuna, tushunkunapash, "
       "kushilla kawsankapak.")


def train_fasttext(out_dir: Path, examples: list[tuple[str, str]]) -> str:
    """A real fastText classifier over `examples` (label, text), trained as jobs/train_quality.py trains."""
    data = out_dir / "train.txt"
    data.write_text("".join(f"__label__{label} {text}\n" for label, text in examples * 4), encoding="utf-8")
    params = {"epoch": 50, "lr": 0.5, "minn": 2, "maxn": 4, "dim": 16, "seed": 1}
    quality_train_spark.fit(str(data), str(out_dir), params, quantize=False)
    return str(out_dir / "model.bin")


@pytest.fixture(scope="module")
def glotlid_style_model(tmp_path_factory) -> str:
    """A language-ID model whose labels name language and script, as GlotLID's and OpenLID's do."""
    texts = {"eng_Latn": EN, "deu_Latn": DE, "cmn_Hani": ZH, "qug_Latn": QUG}
    examples = [(label, s) for label, text in texts.items() for s in re.split(r"(?<=[.。])\s*", text) if s]
    return train_fasttext(tmp_path_factory.mktemp("glotlid"), examples)


def test_a_glotlid_style_model_names_languages_by_lid176_code_and_keeps_the_label_of_one_lid176_lacks(glotlid_style_model):
    assert filter_batch(batch_of(QUG), FilterConfig()).to_pylist()[0]["_reason"] == "lang_score_below_min"  # lid.176
    cfg = FilterConfig(langid_model=glotlid_style_model)
    out = filter_batch(batch_of(EN, DE, ZH, QUG), cfg).to_pylist()
    assert [r["lang"] for r in out] == ["en", "de", "zh", "qug_Latn"]
    assert [r["_status"] for r in out] == ["kept"] * 4  # Kichwa: no stop-word list, so that check does not apply
    assert all(r["lang_score"] >= cfg.min_lang_score for r in out)


# The lighthouse text of synthetic.EN in Croatian: lid.176 splits it between hr, sh, bs and sr.
HR = ("Stari svjetionik stajao je na rubu litice više od stotinu godina. Mornari koji su noću prolazili pokraj rta "
      "tražili su njegovo svjetlo kako bi pronašli put kući. U proljeće te godine čuvar i njegova kći ponovno su "
      "obojili toranj u bijelo.")


def test_varieties_of_one_macrolanguage_share_it_and_lid176s_wikipedia_code_als_means_alemannic():
    assert {langid.macrolanguage(code) for code in ("hr", "bs", "sr", "sh")} == {"sh"}
    assert langid.macrolanguage("id") == langid.macrolanguage("ms") == "ms"
    assert langid.macrolanguage("nn") == langid.macrolanguage("no") == "no"
    assert langid.macrolanguage("als") != "sq" and langid.macrolanguage("als_Latn") == "sq_Latn"  # GlotLID's is ISO's
    assert langid.macrolanguage("en") == "en" and langid.macrolanguage("qug_Latn") == "qu_Latn"


def test_a_page_split_between_varieties_of_one_macrolanguage_scores_their_summed_probability():
    labels, probs = langid.get_model().predict(HR, k=langid.MACRO_CANDIDATES)
    codes = [language_code(label) for label in labels]
    langs, scores = langid.identify(pa.array([HR]), 1000)
    assert langs == ["hr"] and probs[0] < 0.9  # the model is unsure which variety it is
    expected = sum(p for code, p in zip(codes, probs) if langid.macrolanguage(code) == "sh")
    assert abs(scores[0] - expected) < 1e-6 and scores[0] > 0.95
    english, = langid.identify(pa.array([EN]), 1000)[1]
    assert abs(english - langid.get_model().predict(EN.replace("\n", " "), k=1)[1][0]) < 1e-6  # no macrolanguage


def test_a_language_id_model_that_is_missing_or_names_no_language_is_refused(tmp_path):
    missing = str(tmp_path / "glotlid.bin")
    with pytest.raises(ValueError, match=f"{missing} does not exist"):
        langid.check_model(missing)
    quality_model = train_fasttext(tmp_path, [("keep", EN), ("junk", "buy cheap buy cheap click here now")])
    with pytest.raises(ValueError, match="labels such as __label__.* name no language"):
        langid.check_model(quality_model)
    langid.check_model(str(langid.lid176_path()))


def test_filter_stage_identifies_with_the_configured_model_and_refuses_a_bad_one_before_writing(
    spark, glotlid_style_model, tmp_path
):
    docs = [{"id": f"d{i}", "text": text, "source": "test"} for i, text in enumerate((EN, DE, ZH, QUG))]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    cfg = config_lib.load(PipelineConfig, overrides=[f"filter.langid_model={glotlid_style_model}"])
    stages.run("clean", spark, str(tmp_path / "in"), str(tmp_path / "clean"), cfg)
    stats = stages.run("filter", spark, str(tmp_path / "clean"), str(tmp_path / "filter"), cfg)
    assert stats["kept"] == 4
    kept = pq.read_table(tmp_path / "filter" / "data").to_pylist()
    assert {r["id"]: r["lang"] for r in kept} == {"d0": "en", "d1": "de", "d2": "zh", "d3": "qug_Latn"}

    bad = config_lib.load(PipelineConfig, overrides=[f"filter.langid_model={tmp_path / 'missing.bin'}"])
    with pytest.raises(StageError, match="missing.bin does not exist"):
        stages.run("filter", spark, str(tmp_path / "clean"), str(tmp_path / "filter"), bad)
    assert len(pq.read_table(tmp_path / "filter" / "data")) == 4  # the committed output is untouched


def test_glotlid_and_openlid_labels_read_as_lid176_codes_where_lid176_knows_the_language():
    labels = ["__label__en", "__label__deu_Latn", "__label__eng_Latn", "__label__cmn_Hani", "__label__zho_Hant",
              "__label__gla_Latn", "__label__qug_Latn"]
    assert [language_code(label) for label in labels] == ["en", "de", "en", "zh", "zh", "gd", "qug_Latn"]


def test_languages_and_per_language_settings_may_name_languages_as_glotlid_does():
    cfg = config_lib.load(FilterConfig, overrides=[
        "languages=[deu_Latn, qug_Latn]", "per_language.deu_Latn.gopher_quality.min_doc_words=30",
    ])
    assert cfg.languages == ["de", "qug_Latn"]
    assert cfg.rules_for("de").gopher_quality.min_doc_words == 30
