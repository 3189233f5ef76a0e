"""The layers of docs/DESIGN.md, checked on every import statement (those inside functions too)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from synthetic import REPO

# Modules that orchestrate the others: the command lines, the report, the demo, the scoring helpers and the
# ablation (which runs stages and then the trainer, through its public entry point).
TOP = {"pipeline.cli", "pipeline.report", "pipeline.demo", "pipeline.evaluate", "pipeline.stages.ablation"}


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _is_spark_module(name: str) -> bool:
    return name.rsplit(".", 1)[-1].endswith("_spark") or name.rsplit(".", 1)[-1] == "spark_io"


def _layer(name: str) -> int:
    """0: plain Python over documents and batches; 1: Spark algorithms; 2: stages; 3: command lines."""
    if name in TOP:
        return 3
    if name == "pipeline.stages" or name.startswith("pipeline.stages."):
        return 2
    return 1 if _is_spark_module(name) else 0


def _violations(module: str, imported: set[str]) -> list[str]:
    mine = _layer(module)
    bad = []
    for name in sorted(imported):
        if name.split(".")[0] == "pyspark" and mine == 0:
            bad.append(f"{name} (Spark, in a plain module)")
        elif name.startswith("pipeline."):
            # `from pipeline.x import y` names module pipeline.x.y or an attribute y of pipeline.x
            target = next((m for m in (name, name.rsplit(".", 1)[0]) if m in PIPELINE), None)
            if target is not None and _layer(target) > mine and not (mine == 2 and target == "pipeline.stages"):
                bad.append(f"{target} (layer {_layer(target)} above {mine})")
        elif name.split(".")[0] == "trainer" and mine < 3:
            bad.append(f"{name} (the trainer, from the pipeline)")
    return bad


PIPELINE = _modules("pipeline")
TRAINER = _modules("trainer")


@pytest.mark.parametrize("module", sorted(PIPELINE))
def test_no_pipeline_module_imports_a_layer_above_it(module):
    assert _violations(module, _imports(PIPELINE[module])) == []


@pytest.mark.parametrize("module", sorted(TRAINER))
def test_the_trainer_imports_no_spark_and_no_stage(module):
    forbidden = [name for name in _imports(TRAINER[module])
                 if name.split(".")[0] == "pyspark" or (name.startswith("pipeline.") and
                                                        (_layer(name) > 0 or name.startswith("pipeline.stages")))]
    assert forbidden == []


def test_the_checker_sees_a_spark_import_inside_a_function(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from pyspark.sql import functions as F\n    import pipeline.stages.dedupe\n")
    assert _violations("pipeline.filter.example", _imports(source)) == [
        "pipeline.stages.dedupe (layer 2 above 0)", "pyspark.sql (Spark, in a plain module)",
        "pyspark.sql.functions (Spark, in a plain module)"]
