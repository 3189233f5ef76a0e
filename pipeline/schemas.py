"""The versioned JSON Schemas in `schemas/` (the data contract of docs/DESIGN.md), loaded by name.

Names carry their version (`manifest.v1`): a breaking change adds a v2 file, so readers of v1 output keep
working. jsonschema is a test dependency only; `validate` imports it when called.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


@functools.lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """The schema `schemas/<name>.json`, e.g. load_schema("stats.v1")."""
    path = SCHEMA_DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SCHEMA_DIR.glob("*.json")))
        raise FileNotFoundError(f"no schema {name!r} in {SCHEMA_DIR} (have: {known})")
    return json.loads(path.read_text(encoding="utf-8"))


def schema_names() -> list[str]:
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.json"))


@functools.lru_cache(maxsize=None)
def validator(name: str):
    """A draft 2020-12 validator for one schema (built once per name: validating many rows stays cheap)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


def validate(instance: Any, name: str) -> None:
    """Raise jsonschema.ValidationError when `instance` does not match schema `name`."""
    validator(name).validate(instance)
