"""Typed configs: defaults, YAML, then --set; typos and bad types fail naming the key."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline import config
from pipeline.stages.config import PipelineConfig
from synthetic import REPO


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


@pytest.mark.parametrize("text, where, problem", [
    ("dedupe:\n  threshold: 0.7\n   verify: true\n", "line 3, column 10", "mapping values are not allowed here"),
    ("filter:\n  languages: [en, de\n", "line 3, column 1", "expected ',' or ']'"),
    ("dedupe:\n\tthreshold: 0.7\n", "line 2, column 1", "cannot start any token"),
])
def test_broken_yaml_fails_naming_the_file_the_line_and_the_problem(tmp_path, text, where, problem):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as failure:
        config.load(PipelineConfig, path)
    assert str(failure.value).startswith(f"{path}, {where}: ") and problem in str(failure.value)
    assert "\n" not in str(failure.value)


def test_a_job_given_broken_yaml_prints_one_line_naming_the_file_and_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "bad.yaml"
    path.write_text("clean:\n  reader:\n    text_field: body\n    id_field: key: x\n")
    job = Path(__file__).resolve().parents[1] / "jobs" / "clean.py"
    proc = subprocess.run([sys.executable, str(job), "--input", str(tmp_path), "--output", str(tmp_path / "out"),
                           "--config", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"config error: {path}, line 4, column 18: mapping values are not "
                                                "allowed here"], proc.stderr[-3000:]


def test_every_stage_jobs_help_lists_each_key_of_its_section_and_of_audit_with_what_it_means():
    from pipeline.cli import parser
    from pipeline.config import describe_keys
    from pipeline.stages import STAGES

    for stage in STAGES:
        text = parser(stage).format_help()
        for section in (stage, "audit"):
            for line in describe_keys(getattr(PipelineConfig(), section), f"{section}."):
                assert line in text, (stage, line)
    dedupe_help = parser("dedupe").format_help()
    assert '  dedupe.partitions = 0\n      Number of parts of clusters/' in dedupe_help
    assert "  dedupe.threshold = 0.8\n      Jaccard of shingle sets" in dedupe_help  # documented on the base class


def test_the_trainers_help_lists_its_keys_with_defaults_and_meanings():
    proc = subprocess.run([sys.executable, "trainer/main.py", "--help"], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '  data.on_bad_shard = "fail"\n      A training shard that fails its sha256' in proc.stdout
    assert "  model.tie_embeddings = true\n      the output projection shares" in proc.stdout


def _undocumented_keys(cfg) -> list[str]:
    """The keys `--help` (describe_keys) lists with a default but no line saying what they mean."""
    lines = config.describe_keys(cfg)
    return [line.split(" = ", 1)[0].strip() for line, after in zip(lines, lines[1:] + [""])
            if not line.startswith("   ") and " = " in line and not after.startswith("      ")]


def test_every_pipeline_setting_is_documented_in_help():
    assert _undocumented_keys(PipelineConfig()) == []


def test_every_trainer_setting_is_documented_in_help():
    from trainer.config import TrainConfig

    assert _undocumented_keys(TrainConfig()) == []
