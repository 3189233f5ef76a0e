"""Typed configs: defaults, YAML, then --set; typos and bad types fail naming the key."""
from __future__ import annotations

import pytest

from pipeline import config
from pipeline.stages.config import PipelineConfig


def test_yaml_then_overrides_apply_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dedupe:\n  threshold: 0.7\ntokenize:\n  vocab_size: 1000\n")
    cfg = config.load(PipelineConfig, path, ["tokenize.vocab_size=2048", "filter.languages=en,de"])
    assert cfg.dedupe.threshold == 0.7
    assert cfg.tokenize.vocab_size == 2048
    assert cfg.filter.languages == ["en", "de"]
    assert cfg.clean.reader.text_field == "text"  # untouched defaults survive


@pytest.mark.parametrize(
    "override, message",
    [("dedupe.treshold=0.7", "dedupe.treshold"), ("tokenize.vocab_size=big", "tokenize.vocab_size"),
     ("nosuch.key=1", "nosuch"), ("dedupe.verify=maybe", "dedupe.verify")],
)
def test_bad_overrides_fail_naming_the_key(override, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(PipelineConfig, None, [override])


def test_yaml_must_be_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(config.ConfigError, match="mapping"):
        config.load(PipelineConfig, path)
