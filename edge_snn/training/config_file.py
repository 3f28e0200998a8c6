"""Experiment config files: TOML whose keys are :class:`TrainConfig` field names.

``edge-snn train --config configs/ddd17_deeplab.toml`` reads the file, then
applies every option given *explicitly* on the command line on top of it::

    value = command line (if given)  >  config file (if set)  >  TrainConfig default

A file is flat (no tables), so it reads like the dataclass it fills::

    arch = "dl-vgg9"
    timesteps = 20
    milestones = [0.5, 0.8]

Unknown keys and values of the wrong type are refused with the key, the file
and the accepted form, rather than silently training something else.
"""

from __future__ import annotations

import os
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from edge_snn.errors import UserError
from edge_snn.training.config import TrainConfig, upgrade_legacy_keys


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in fields(TrainConfig)}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce(key: str, value: Any, kind: Any, source: str) -> Any:
    """``value`` as the field's type, or a UserError saying what was expected."""
    if kind is bool:
        ok, want = isinstance(value, bool), "true or false"
    elif kind is int:
        ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif kind is float:
        ok, want = _is_number(value), "a number"
        value = float(value) if ok else value
    elif kind is str:
        ok, want = isinstance(value, str), "a string"
    elif typing.get_origin(kind) is tuple:  # tuple[float, ...]
        ok, want = isinstance(value, (list, tuple)) and all(_is_number(v) for v in value), "a list of numbers"
        value = tuple(float(v) for v in value) if ok else value
    else:  # a field type this loader does not know: a bug, not a user error
        raise TypeError(f"TrainConfig.{key} has unsupported type {kind!r}")
    if not ok:
        hint = ("; width is the input width in pixels, the channel multiplier is width_mult"
                if key == "width" and _is_number(value) else "")
        raise UserError(f"{source}: {key} must be {want}, got {value!r}{hint}")
    return value


def validate(values: dict, source: str = "config") -> dict:
    """Check keys against TrainConfig fields and coerce each value to its field's type."""
    types = _field_types()
    values = upgrade_legacy_keys(values)
    tables = [k for k, v in values.items() if isinstance(v, dict)]
    if tables:
        raise UserError(f"{source}: [{tables[0]}] is a table; config files are flat - write its keys at the top level")
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise UserError(f"{source}: unknown key {unknown[0]!r}; valid keys are: {', '.join(types)}")
    return {k: _coerce(k, v, types[k], source) for k, v in values.items()}


def load_config_file(path: str | os.PathLike) -> dict:
    """Read a TOML config: ``{field: value}`` for the keys it sets (validated, coerced)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist; see configs/ for examples") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read config file {path}: {err}") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"config file {path} is not valid TOML: {err}") from None
    return validate(values, source=str(path))


def merge(file_values: dict, cli_values: dict) -> TrainConfig:
    """TrainConfig from a config file's values overridden by the options given on the command line.

    ``cli_values`` maps field names to values, with None meaning "not given"
    (the command line declares every option with default None for this reason);
    only given ones override the file. Fields set in neither keep their defaults.
    """
    given = {k: v for k, v in cli_values.items() if v is not None}
    merged = {**validate(file_values), **validate(given, source="command line")}
    return TrainConfig(**merged)
