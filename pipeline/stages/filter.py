"""filter: language ID, quality rules and PII placeholders over the clean stage's documents, and an alarm for
the languages it keeps far less often than the rest."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
from pyspark.accumulators import AccumulatorParam
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipeline import spark_io, stagedir
from pipeline.filter import adaptive, langid, quality
from pipeline.filter.batch import filter_batch, filter_counters
from pipeline.filter.config import FilterConfig
from pipeline.stagedir import Route
from pipeline.stages.stage import Output, Stage, document_routes


SCORE_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)  # of an at-risk language's scores: is its threshold the cause?
AT_RISK_REASONS = 3  # drop reasons listed per language at risk


def first_pass(spark: SparkSession, input_uri: str, cfg: FilterConfig) -> dict[str, dict[str, np.ndarray]]:
    """The run's per-language bin counts (`adaptive.first_pass_bins`) over every part; only the counts,
    summed by Spark, reach the driver."""

    def bins(batches):
        for batch in batches:
            yield adaptive.first_pass_bins(batch, cfg)

    df = spark_io.read_stage(spark, input_uri, transform=bins, schema=spark_io.spark_schema(adaptive.BINS_SCHEMA))
    return adaptive.histograms(tuple(row) for row in df.groupBy("what", "lang", "bin").agg(F.sum("n").alias("n")).collect())


class _Histograms(AccumulatorParam):
    """Per-language counts (score histograms, numbers of documents) summed across tasks."""

    def zero(self, value):
        return {}

    def addInPlace(self, a, b):
        for lang, hist in b.items():
            a[lang] = a[lang] + hist if lang in a else hist
        return a


def histogram_quantiles(hist: np.ndarray, quantiles=SCORE_QUANTILES) -> dict[str, float]:
    """{"p10": score, ...} of the scores counted in `hist`, each taken at its bin's centre."""
    n = int(hist.sum())
    cumulative = np.cumsum(hist)
    return {f"p{round(100 * q)}": round(float((np.searchsorted(cumulative, max(1, int(np.ceil(q * n)))) + 0.5)
                                              / langid.SCORE_BINS), 6)
            for q in quantiles}


def languages_at_risk(languages: dict[str, dict], hists: dict[str, np.ndarray], cfg: FilterConfig) -> dict[str, dict]:
    """The languages of at least `cfg.at_risk_min_docs` documents that keep under `cfg.at_risk_keep_ratio`
    times the run's keep rate, with their largest drop reasons and score quantiles. With `cfg.languages`
    set, only the selected languages count, for the rate too: dropping the others is what was asked."""
    considered = {lang: c for lang, c in languages.items() if not cfg.languages or lang in cfg.languages}
    totals = {lang: c["kept"] + sum(c["dropped"].values()) + sum(c["rejected"].values()) for lang, c in considered.items()}
    documents = sum(totals.values())
    if documents == 0:
        return {}
    run_rate = sum(c["kept"] for c in considered.values()) / documents
    out = {}
    for lang, c in considered.items():
        n = totals[lang]
        if n < cfg.at_risk_min_docs or c["kept"] / n >= cfg.at_risk_keep_ratio * run_rate:
            continue
        reasons = Counter(c["dropped"]) + Counter(c["rejected"])
        hist = hists.get("" if lang == stagedir.UNKNOWN_LANGUAGE else lang)
        out[lang] = {
            "documents": n, "kept": c["kept"], "keep_rate": round(c["kept"] / n, 4),
            "drop_reasons": dict(reasons.most_common(AT_RISK_REASONS)),
            "score_quantiles": histogram_quantiles(hist) if hist is not None and hist.sum() else {},
        }
    return out


def describe_at_risk(stats: dict) -> str:
    """The console lines of the filter stage's languages at risk; empty when there are none."""
    at_risk = stats.get("languages_at_risk")
    if not at_risk:
        return ""
    lines = [f"[filter] {len(at_risk)} language(s) at risk: kept far less often than the run's "
             f"{100 * stats['kept'] / stats['input']:.1f} % (filter/stats.json languages_at_risk)"]
    for lang, r in at_risk.items():
        reasons = ", ".join(f"{reason} {n:,}" for reason, n in r["drop_reasons"].items())
        scores = " ".join(f"{q} {v:.3f}" for q, v in r["score_quantiles"].items())
        lines.append(f"  {lang}: kept {r['kept']:,} of {r['documents']:,} ({100 * r['keep_rate']:.1f} %); "
                     f"dropped {reasons}" + (f"; lang_score {scores}" if scores else ""))
    return "\n".join(lines)


class Filter(Stage):
    name = "filter"

    def check(self) -> None:
        try:  # before the old output is touched
            if self.cfg.filter.langid_model:
                langid.check_model(self.cfg.filter.langid_model)
            if self.cfg.filter.quality.enabled:
                quality.check_model(self.cfg.filter.quality)
        except ValueError as e:
            raise stagedir.StageError(str(e)) from None

    def prepare(self) -> None:
        """The adaptive thresholds, from a first pass over the run's own documents (module docs)."""
        filter_cfg = self.cfg.filter
        self.added = [("lang", pa.string()), ("lang_score", pa.float32())]
        if filter_cfg.quality.enabled:
            self.added.append(("quality_score", pa.float32()))
        self.learnt: dict[str, dict] = {}
        self.hists = None
        if adaptive.needed(filter_cfg):
            first = first_pass(self.spark, self.input_uri, filter_cfg)
            self.hists = first["score"]
            filter_cfg, self.learnt = adaptive.adapt(filter_cfg, first)
        self.filter_cfg = filter_cfg
        sc = self.spark.sparkContext
        self.counters = {"pii_email": sc.accumulator(0), "pii_ip": sc.accumulator(0),
                         "main_content_extracted": sc.accumulator(0)}
        self.vouched = sc.accumulator({}, _Histograms())  # per language, documents kept by their words
        # Without a first pass the scores are counted here; a retried task may add its part twice, which
        # moves the quantiles of an alarm little.
        self.main_hists = sc.accumulator({}, _Histograms()) if self.hists is None else None

    def routes(self) -> dict[str, Route]:
        return document_routes(spark_io.stage_schema(self.input_uri).names + [name for name, _ in self.added], self.cfg)

    def transform(self) -> spark_io.Transform:
        filter_cfg, counters, main_hists, vouched = self.filter_cfg, self.counters, self.main_hists, self.vouched
        schema = pa.schema(list(spark_io.stage_schema(self.input_uri)) + self.added
                           + [("_status", pa.string()), ("_reason", pa.string()), ("_main_content", pa.bool_())])

        def annotate(batches):
            for batch in batches:
                out = filter_batch(batch, filter_cfg)
                counts = filter_counters(out)
                for name, acc in counters.items():
                    acc.add(counts.get(name, 0))
                vouched.add(adaptive.vouched_by_words(out, filter_cfg))
                if main_hists is not None:
                    langs = out.column("lang").to_numpy(zero_copy_only=False)
                    scores = out.column("lang_score").to_numpy(zero_copy_only=False)
                    main_hists.add({lang: langid.score_histogram(scores[langs == lang]) for lang in set(langs.tolist())})
                yield out.cast(schema)

        return annotate

    def finish(self, output: Output) -> dict:
        hists = self.hists if self.hists is not None else self.main_hists.value
        at_risk = languages_at_risk(output.written.by_language(), hists, self.cfg.filter)
        return {
            "pii": {"email": self.counters["pii_email"].value, "ip": self.counters["pii_ip"].value},
            "main_content_extracted": self.counters["main_content_extracted"].value,
            "document_schema": stagedir.DOCUMENT_SCHEMA,
            **{key: value for key, value in self.learnt.items() if key != "lang_words"},
            **({"lang_words": self.lang_words_stats()} if "lang_words" in self.learnt else {}),
            "languages_at_risk": at_risk,
        }

    def lang_words_stats(self) -> dict[str, dict]:
        """stats.json's `lang_words`: per language, the median share of its commonest words, whether the
        second look applied, and how many documents under the minimum score it kept."""
        kept = self.vouched.value
        return {lang: {**s, "vouched": int(kept.get(lang, 0))} for lang, s in self.learnt["lang_words"].items()}

    @classmethod
    def notes(cls, stats: dict) -> str:
        return describe_at_risk(stats)


STAGE = Filter
