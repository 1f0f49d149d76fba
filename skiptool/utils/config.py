"""YAML configs validated into dataclasses.

Every config in skiptool is a dataclass with defaults. `load_config` reads a YAML file, applies
`key.sub=value` overrides, rejects unknown keys and values of the wrong type with a message naming
the file and key, and `to_yaml` prints the fully resolved config (`--print-config`).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from skiptool.utils.errors import SkiptoolError

T = TypeVar("T")


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SkiptoolError(f"{path}: config file not found; check the path given to --conf/--config")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SkiptoolError(f"{path}: malformed YAML{where} ({problem}); fix the file and rerun") from None
    except UnicodeDecodeError:
        raise SkiptoolError(f"{path}: not UTF-8 text; save the config as UTF-8") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SkiptoolError(f"{path}: a config must be a YAML mapping of key: value, got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: Mapping[str, Any] | None = None) -> T:
    """Build `cls` from its defaults, then the YAML file `path`, then dotted `overrides`."""
    data = read_yaml(path) if path else {}
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return from_dict(cls, data, source=str(path) if path else "config")


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "config", prefix: str = "") -> T:
    if not isinstance(data, Mapping):
        raise SkiptoolError(f"{source}: '{prefix.rstrip('.') or cls.__name__}' must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        known = ", ".join(sorted(fields))
        raise SkiptoolError(f"{source}: unknown key '{prefix}{unknown[0]}'; known keys here: {known}")
    values = {k: _coerce(hints[k], v, source, prefix + k) for k, v in data.items()}
    try:
        obj = cls(**values)
    except (TypeError, ValueError) as e:
        raise SkiptoolError(f"{source}: {e}") from None
    return obj


def _coerce(tp: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value or {}, source, key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, source, key)
            except SkiptoolError as e:
                errors.append(str(e))
        raise SkiptoolError(errors[0])
    if origin is typing.Literal:
        if value not in args:
            raise SkiptoolError(f"{source}: key '{key}' must be one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise SkiptoolError(f"{source}: key '{key}' must be a list, got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(item, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise SkiptoolError(f"{source}: key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    name = getattr(tp, "__name__", str(tp))
    raise SkiptoolError(f"{source}: key '{key}' must be of type {name}, got {value!r}")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Any) -> str:
    def plain(x):
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    return yaml.safe_dump(plain(to_dict(cfg)), sort_keys=False, default_flow_style=None)


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """Turn ['a.b=3', 'c=true'] into {'a.b': 3, 'c': True}, values parsed as YAML scalars."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SkiptoolError(f"override '{pair}' must look like key=value (e.g. optim.lr=0.001)")
        key, raw = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw) if raw else ""
    return out
