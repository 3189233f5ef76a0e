"""Out-of-range settings fail at load, naming the full key and the range, before any stage or run starts."""
from __future__ import annotations

import dataclasses
import fnmatch
import re
import types
import typing

import pytest

from pipeline import config
from pipeline.stages.config import RANGES as PIPELINE_RANGES, PipelineConfig
from trainer import config as trainer_config
from pipeline.stages.ablation import AblationConfig

# Settings any integer suits: they only seed hashes or torch's generator.
ANY_VALUE = {"tokenize.seed", "holdout.seed", "train.seed", "seed"}
CHECKED_ELSEWHERE = ("state.",)  # the scheduler's lock settings, checked together in pipeline/lock.py


def _numeric_keys(obj, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += _numeric_keys(value, f"{prefix}{f.name}.")
            continue
        tp = hints[f.name]
        options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
        if int in options or float in options:
            keys.append(prefix + f.name)
    return keys


@pytest.mark.parametrize("override, message", [
    ("dedupe.threshold=7", "dedupe.threshold must be within (0, 1], not 7"),
    ("dedupe.num_perm=-3", "dedupe.num_perm must be at least 1, not -3"),
    ("clean.reader.max_line_bytes=-1", "clean.reader.max_line_bytes must be at least 1, not -1"),
    ("tokenize.val_fraction=1.5", "tokenize.val_fraction must be within [0, 1], not 1.5"),
    ("filter.english.gopher_repetition.dup_line_frac=1.5",
     "filter.english.gopher_repetition.dup_line_frac must be within [0, 1], not 1.5"),
])
def test_an_out_of_range_pipeline_setting_fails_naming_its_key_and_range(override, message):
    with pytest.raises(config.ConfigError) as e:
        config.load(PipelineConfig, None, [override])
    assert str(e.value) == message


@pytest.mark.parametrize("override, message", [
    ("data.batch_size=-16", "data.batch_size must be at least 1, not -16"),
    ("steps=-1", "steps must be at least 1, not -1"),
    ("model.dropout=1", "model.dropout must be within [0, 1), not 1"),
    ("optim.lr=0", "optim.lr must be above 0, not 0"),
])
def test_an_out_of_range_trainer_setting_fails_naming_its_key_and_range(override, message):
    with pytest.raises(config.ConfigError) as e:
        trainer_config.load("tiny", None, [override])
    assert str(e.value) == message


def test_a_yaml_file_with_an_out_of_range_setting_fails_naming_the_file_and_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dedupe:\n  threshold: 7\n")
    with pytest.raises(config.ConfigError, match=r"c\.yaml: dedupe\.threshold must be within \(0, 1\], not 7$"):
        config.load(PipelineConfig, path)


def test_range_bounds_and_unset_optional_settings_are_accepted():
    cfg = config.load(PipelineConfig, None, ["dedupe.threshold=1", "dedupe.num_perm=1", "dedupe.bands=null",
                                             "filter.english.gopher_quality.min_doc_words=null"])
    assert (cfg.dedupe.threshold, cfg.dedupe.num_perm, cfg.dedupe.bands) == (1.0, 1, None)
    assert trainer_config.load("tiny", None, ["model.dropout=0", "eval.every=0"]).eval.every == 0


@pytest.mark.parametrize("key", [k for k in _numeric_keys(AblationConfig())
                                 if k not in ANY_VALUE and not k.startswith(CHECKED_ELSEWHERE)])
def test_every_numeric_setting_refuses_a_negative_value(key):
    """The trainer's section of an ablation is checked as the trainer's own config, so under its own keys."""
    trainer_key = key.removeprefix("train.")
    with pytest.raises(ValueError, match=rf"^{re.escape(trainer_key)} must be"):
        if key.startswith("train."):
            trainer_config.load(None, None, [f"{trainer_key}=-1"])
        else:
            config.load(AblationConfig, None, [f"{key}=-1"])


def test_every_pipeline_range_names_a_setting():
    keys = _numeric_keys(PipelineConfig())
    assert [p for p in PIPELINE_RANGES if not fnmatch.filter(keys, p)] == []
    assert [p for p in trainer_config.RANGES if not fnmatch.filter(_numeric_keys(trainer_config.TrainConfig()), p)] == []
