"""Typed dataclass configs: defaults in code, a YAML file on top, then `--set key=value` on top of that.

One loader serves the pipeline and the trainer. Unknown keys, badly typed values and values out of their
range fail with a message that names the key, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    pass


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML-parsed value to the annotated type, or raise naming the key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: cannot be {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v for v in (s.strip() for s in value.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item = args[0] if args else Any
        out = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return out if origin is list else tuple(out)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build `cls` from a (possibly partial) mapping; missing keys keep their defaults."""
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]!s}; valid keys: {', '.join(prefix + k for k in types_)}"
        )
    base = cls()
    kwargs = {}
    for name, tp in types_.items():
        if name in data:
            current = getattr(base, name)
            if dataclasses.is_dataclass(tp) and isinstance(data[name], dict):
                kwargs[name] = merge(current, data[name], prefix=f"{prefix}{name}.")
            else:
                kwargs[name] = _coerce(data[name], tp, prefix + name)
    return dataclasses.replace(base, **kwargs)


def merge(obj: T, data: dict[str, Any], prefix: str = "") -> T:
    """Return a copy of dataclass `obj` with the keys in `data` replaced (recursively)."""
    types_ = _field_types(type(obj))
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]}; valid keys: {', '.join(prefix + k for k in types_)}"
        )
    kwargs = {}
    for name, value in data.items():
        tp = types_[name]
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            kwargs[name] = merge(current, value, prefix=f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, prefix + name)
    return dataclasses.replace(obj, **kwargs)


_INTERVAL = re.compile(r"([\[(])(\S+), (\S+)([\])])")


def _leaves(obj: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _leaves(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, value


def _show(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def check_ranges(obj: Any, ranges: dict[str, str]) -> None:
    """Raise ConfigError naming the first setting of dataclass `obj` outside its interval.

    `ranges` maps dotted keys, as a config file writes them, to intervals such as "(0, 1]" or "[1, inf)"; a
    `*` in a key matches any name, so one entry covers a setting of every rule set. The first matching entry
    applies. None passes: an optional setting left unset switches its check off.
    """
    for key, value in _leaves(obj):
        interval = next((r for pattern, r in ranges.items() if fnmatch.fnmatchcase(key, pattern)), None)
        if interval is None or value is None:
            continue
        low_bracket, low, high, high_bracket = _INTERVAL.fullmatch(interval).groups()
        lo, hi = float(low), float(high)
        inside = (lo <= value if low_bracket == "[" else lo < value) and (value <= hi if high_bracket == "]" else value < hi)
        if inside:
            continue
        if hi == float("inf"):
            bound = f"at least {low}" if low_bracket == "[" else f"above {low}"
        else:
            bound = f"within {interval}"
        raise ConfigError(f"{key} must be {bound}, not {_show(value)}")


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """Turn ["a.b=1", "c=x,y"] into the nested mapping {"a": {"b": 1}, "c": "x,y"} (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
        node[parts[-1]] = value
    return out


def _yaml_problem(e: yaml.YAMLError) -> str:
    """PyYAML's error in one line: where, what, and where the construct it was in began."""
    mark = getattr(e, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    said = f"{where}{getattr(e, 'problem', None) or e}"
    context, start = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and start:
        said += f" ({context} that starts at line {start.line + 1}, column {start.column + 1})"
    return " ".join(said.split())


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML file at `path`; a file that is not valid YAML fails in one line naming the file and line."""
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}, {_yaml_problem(e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def load(cls: type[T], path: str | Path | None = None, overrides: Iterable[str] = (), base: T | None = None) -> T:
    """Defaults (or `base`), then the YAML file at `path`, then `--set` overrides."""
    obj = base if base is not None else cls()
    if path:
        data = read_yaml(path)  # its errors name the file
        try:
            obj = merge(obj, data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    return merge(obj, parse_overrides(overrides))


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False)


def field_docs(cls: type) -> dict[str, str]:
    """{field name: its documentation} of a dataclass: the comment lines right above the field and the
    comment after it, read from the class's source, so `--help` says what the code says."""
    import inspect
    import io
    import tokenize as tok

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    comments = {t.start[0]: t.string.lstrip("#").strip()
                for t in tok.generate_tokens(io.StringIO(source).readline) if t.type == tok.COMMENT}
    field_line = re.compile(r"^(\s+)(\w+)\s*:")
    names = {f.name for f in dataclasses.fields(cls)}
    indent, docs, above = None, {}, []
    for number, line in enumerate(lines[1:], start=2):
        stripped = line.strip()
        m = field_line.match(line)
        if stripped.startswith("#"):
            above.append(comments.get(number, ""))
            continue
        if m and m.group(2) in names and (indent is None or m.group(1) == indent):
            indent = m.group(1)
            docs[m.group(2)] = " ".join(above + ([comments[number]] if number in comments else [])).strip()
        above = []
    return docs


def describe_keys(obj: Any, prefix: str = "") -> list[str]:
    """`--help` lines for every key of a config dataclass: `key = default`, then what it means."""
    import textwrap

    out = []
    docs = {}
    for base in reversed(type(obj).__mro__):  # a subclass's comment on a field wins
        if dataclasses.is_dataclass(base):
            docs.update({k: v for k, v in field_docs(base).items() if v})
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            if docs.get(f.name):
                out.append(f"  {prefix}{f.name}.*: {docs[f.name]}")
            out += describe_keys(value, f"{prefix}{f.name}.")
            continue
        out.append(f"  {prefix}{f.name} = {json.dumps(value, default=lambda v: dataclasses.asdict(v))}")
        if docs.get(f.name):
            out += textwrap.wrap(docs[f.name], 100, initial_indent="      ", subsequent_indent="      ",
                                 break_on_hyphens=False)
    return out
