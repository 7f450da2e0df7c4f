"""One config system: typed frozen dataclasses, YAML files, dotted overrides, one loader and validator.

A config is a frozen dataclass. Each field carries its docstring as a string literal right under it
(the attribute-docstring convention; `field_docs` reads them for --help and the docs) and, where a
value is bounded, `setting(default, min=..., max=..., above=..., choices=...)` metadata:

    @dataclass(frozen=True)
    class OptimConfig:
        iters: int = setting(1000, min=1)
        \"\"\"Optimizer steps in the whole run.\"\"\"

`load(OptimConfig, "optim.yaml", ["iters=2000"])` reads the YAML with `yaml.safe_load`, applies the
dotted overrides (each value parsed for its field's type: text for strings, YAML for the rest) and
checks types, ranges, NaN and unknown keys, raising EasyOccError with one line that names the key.
Torch-free, so the runtime and the ROS node use it too.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
import types
import typing
from pathlib import Path

import yaml
from easyocc.runtime.contract.errors import EasyOccError

_BOUNDS = ("min", "max", "above", "choices")


def setting(default=dataclasses.MISSING, *, default_factory=dataclasses.MISSING, **bounds):
    """A dataclass field with bounds the loader checks: min/max (inclusive), above (exclusive), choices."""
    unknown = sorted(set(bounds) - set(_BOUNDS))
    if unknown:
        raise TypeError(f"setting(): unknown bound(s) {', '.join(unknown)}")
    return dataclasses.field(default=default, default_factory=default_factory, metadata=bounds)


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """{field name: its docstring} from the string literal under each field in the class source."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body
        for node, after in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


@functools.cache
def field_types(cls) -> dict:
    return typing.get_type_hints(cls)


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _unknown_key(key: str, section: str, known, label: str = "config") -> EasyOccError:
    where = f"known under {section}" if section else "known"
    noun = "config key" if label == "config" else label
    return EasyOccError(f"unknown {noun} '{key}'; {where}: {', '.join(known)}")


def _type_name(hint) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _optional(hint):
    """(inner type, True) for `X | None`, else (hint, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _convert(value, hint, key: str, label: str = "config"):
    """`value` (from YAML) as `hint`; raises EasyOccError naming `key`."""
    hint, nullable = _optional(hint)
    if value is None:
        if nullable:
            return None
        raise EasyOccError(f"{label} {key}: expected {_type_name(hint)}, got null")
    origin = typing.get_origin(hint)
    if is_section(hint):
        if isinstance(value, hint):
            return value
        return build(hint, value, key, label)
    if isinstance(hint, type) and hasattr(hint, "from_dict"):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise EasyOccError(f"{label} {key}: expected a mapping for {hint.__name__}, got {value!r}")
        return hint.from_dict(value)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise EasyOccError(f"{label} {key}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            items = [_convert(v, args[0] if args else typing.Any, f"{key}[{i}]", label) for i, v in enumerate(value)]
        else:
            if len(value) != len(args):
                raise EasyOccError(f"{label} {key}: expected a list of {len(args)}, got {list(value)!r}")
            items = [_convert(v, a, f"{key}[{i}]", label) for i, (v, a) in enumerate(zip(value, args))]
        return tuple(items) if origin is tuple else items
    if hint is typing.Any:
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise EasyOccError(f"{label} {key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise EasyOccError(f"{label} {key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise EasyOccError(f"{label} {key}: expected int, got {value!r}")
    if hint is float:
        if isinstance(value, bool):
            raise EasyOccError(f"{label} {key}: expected float, got {value!r}")
        try:
            number = float(value)  # YAML 1.1 reads 1e-3 as a string
        except (TypeError, ValueError):
            raise EasyOccError(f"{label} {key}: expected float, got {value!r}") from None
        if not math.isfinite(number):
            raise EasyOccError(f"{label} {key}: {number} is not a finite number")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise EasyOccError(f"{label} {key}: expected a string, got {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, (str, Path)):
            raise EasyOccError(f"{label} {key}: expected a path, got {value!r}")
        return Path(value)
    raise TypeError(f"{label} {key}: unsupported field type {hint!r}")


def _check_bounds(value, bounds: dict, key: str, label: str = "config") -> None:
    if not bounds:
        return
    items = value if isinstance(value, (tuple, list)) else (value,)
    for item in items:
        if "choices" in bounds and item not in bounds["choices"]:
            raise EasyOccError(f"{label} {key}: {item!r} is not one of {', '.join(map(str, bounds['choices']))}")
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            continue
        if "min" in bounds and item < bounds["min"]:
            raise EasyOccError(f"{label} {key}: {item} is below the minimum {bounds['min']}")
        if "max" in bounds and item > bounds["max"]:
            raise EasyOccError(f"{label} {key}: {item} is above the maximum {bounds['max']}")
        if "above" in bounds and not item > bounds["above"]:
            raise EasyOccError(f"{label} {key}: {item} must be greater than {bounds['above']}")


def check(config) -> None:
    """Check the `setting` bounds of an existing config (call it from __post_init__ so that direct
    construction is validated by the same rules as loading)."""
    for f in dataclasses.fields(config):
        _check_bounds(getattr(config, f.name), dict(f.metadata), f.name)


def build(cls, data, where: str = "", label: str = "config"):
    """An instance of the config dataclass `cls` from a mapping (missing keys take their defaults).

    `where` is the dotted section the mapping sits at ('' for the top level) and `label` the noun of
    the messages ('config', or 'parameter' for the ROS node)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EasyOccError(f"{label} {where or 'file'}: expected a mapping, got {data!r}")
    fields = _fields(cls)
    hints = field_types(cls)
    values = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else str(name)
        if name not in fields:
            raise _unknown_key(key, where, fields, label)
        values[name] = _convert(value, hints[name], key, label)
        _check_bounds(values[name], dict(fields[name].metadata), key, label)
    return cls(**values)


def _field_hint(cls, parts: list[str], key: str):
    """The type hint of the field at dotted `parts` under `cls` (typing.Any below a free-form mapping)."""
    hint = cls
    for depth, part in enumerate(parts):
        inner, _ = _optional(hint)
        if is_section(inner):
            fields = _fields(inner)
            if part not in fields:
                raise _unknown_key(key, ".".join(parts[:depth]), fields)
            hint = field_types(inner)[part]
        elif inner is dict or typing.get_origin(inner) is dict or inner is typing.Any:
            hint = typing.Any
        elif isinstance(inner, type) and hasattr(inner, "from_dict"):
            hint = typing.Any
        else:
            raise EasyOccError(f"config override {key}: '{'.'.join(parts[:depth])}' is not a section")
    return hint


def parse_value(text: str, hint):
    """An override's text for a field of type `hint`: the text itself for strings, YAML otherwise."""
    inner, nullable = _optional(hint)
    if inner in (str, Path):
        return None if nullable and text.strip() in ("", "null", "~") else text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def set_value(cls, data: dict, key: str, value) -> dict:
    """data[a][b] = value for the dotted `key` 'a.b' of `cls` (unknown keys refused; levels created)."""
    parts = key.split(".")
    _field_hint(cls, parts, key)
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None or is_section(type(child)):
            child = to_dict(child) if child is not None else {}
            node[part] = child
        if not isinstance(child, dict):
            raise EasyOccError(f"config override {key}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value
    return data


def apply_overrides(cls, data: dict, overrides) -> dict:
    """`data` with each 'dotted.key=value' applied (later ones win); keys are checked against `cls`."""
    for override in overrides:
        key, sep, text = str(override).partition("=")
        key = key.strip()
        if not sep or not key:
            raise EasyOccError(f"config override '{override}' must look like key=value (e.g. optim.lr=1e-3)")
        set_value(cls, data, key, parse_value(text, _field_hint(cls, key.split("."), key)))
    return data


def read_yaml(path) -> dict:
    """The mapping in a YAML config file; one-line errors naming the file (safe_load: no Python tags)."""
    path = Path(path)
    if not path.is_file():
        raise EasyOccError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise EasyOccError(f"config file {path}: invalid YAML{line} ({problem})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EasyOccError(f"config file {path}: cannot read ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EasyOccError(f"config file {path}: expected a mapping of keys, got {type(data).__name__}")
    return data


def load(cls, path=None, overrides=(), values: dict | None = None):
    """`cls` from an optional YAML file, then `values` ({dotted key: typed value}, e.g. from command-line
    flags), then 'dotted.key=value' overrides; later ones win."""
    data = read_yaml(path) if path else {}
    for key, value in (values or {}).items():
        set_value(cls, data, key, value)
    return build(cls, apply_overrides(cls, data, overrides))


def to_dict(config) -> dict:
    """A config as plain YAML/JSON types: nested dataclasses as mappings, tuples as lists, Paths as text."""

    def plain(value):
        if is_section(type(value)):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if hasattr(value, "to_dict"):
            return plain(value.to_dict())
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return plain(config)


def is_section(cls) -> bool:
    """A config dataclass (a docstring per field), as opposed to a value type with from_dict (GridSpec)."""
    return isinstance(cls, type) and dataclasses.is_dataclass(cls) and bool(field_docs(cls))


def to_yaml(config) -> str:
    """The effective config as YAML (what --print-config prints)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=None, width=120)


def describe(cls, prefix: str = "") -> list[str]:
    """One line per leaf field: 'key (type, default D, bounds): docstring', nested sections flattened."""
    lines = []
    docs = field_docs(cls)
    defaults = cls() if _all_defaulted(cls) else None
    for name, f in _fields(cls).items():
        hint = field_types(cls)[name]
        key = f"{prefix}{name}"
        if is_section(hint):
            lines += describe(hint, f"{key}.")
            continue
        default = to_dict(getattr(defaults, name)) if defaults is not None else None
        bounds = ", ".join(f"{k} {v}" for k, v in f.metadata.items() if k in _BOUNDS)
        extra = f", {bounds}" if bounds else ""
        lines.append(f"{key} ({_type_name(hint)}, default {default!r}{extra}): {docs.get(name, '')}")
    return lines


def _all_defaulted(cls) -> bool:
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls)
    )
