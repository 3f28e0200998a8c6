"""The two support tables edge-snn ships: TensorRT's ONNX parser and the Orin DLA.

``data/trt_onnx_ops.json`` lists, per TensorRT version, the opset range and
each ONNX operator's support and tensor types; a version may be stored as a
``base`` version plus ``overrides`` (10.3 is 10.15 minus what the changelog
says arrived later). ``data/dla_ops.json`` lists which ops the DLA runs and
their limits. Both name their sources and what is unconfirmed; this module
only reads and resolves them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class TrtTable:
    """The ONNX parser of one TensorRT version."""

    version: str
    opset_min: int
    opset_max: int
    ops: dict[str, dict[str, Any]]
    sources: tuple[str, ...]
    unconfirmed: tuple[str, ...]


def version_key(version: str) -> tuple[int, int]:
    """``"10.3.0.26"`` -> ``(10, 3)``; what table lookups compare."""
    parts = version.strip().split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise ValueError(f"not a TensorRT version: {version!r}") from None


@lru_cache(maxsize=None)
def _load(name: str) -> dict[str, Any]:
    text = (resources.files("edge_snn.targets") / "data" / name).read_text(encoding="utf-8")
    return json.loads(text)


def trt_data() -> dict[str, Any]:
    """The raw parser table (versions plus the op-position and limit settings)."""
    return _load("trt_onnx_ops.json")


def dla_data() -> dict[str, Any]:
    """The raw DLA table."""
    return _load("dla_ops.json")


def trt_versions() -> list[str]:
    """TensorRT versions the parser table covers, oldest first."""
    return sorted(trt_data()["versions"], key=version_key)


def pick_trt_version(version: str) -> str:
    """The covered version to use for ``version``: the same major.minor, else the newest older one.

    Newer minor releases only add parser support, so the newest older table is
    conservative. A version older than every table gets the oldest table.
    """
    want = version_key(version)
    covered = trt_versions()
    older = [v for v in covered if version_key(v) <= want]
    return older[-1] if older else covered[0]


@lru_cache(maxsize=None)
def trt_table(version: str) -> TrtTable:
    """The resolved table of a covered ``version`` (one of :func:`trt_versions`)."""
    versions = trt_data()["versions"]
    entry = versions[version]
    ops: dict[str, dict[str, Any]] = {}
    if "base" in entry:
        ops.update(trt_table(entry["base"]).ops)
    ops.update(entry.get("ops", {}))
    ops.update(entry.get("overrides", {}))
    return TrtTable(version=version, opset_min=int(entry["opset_min"]), opset_max=int(entry["opset_max"]),
                    ops=ops, sources=tuple(entry.get("sources", ())), unconfirmed=tuple(entry.get("unconfirmed", ())))


def data_inputs(op_type: str, n_inputs: int) -> list[int]:
    """Indices of the inputs whose type the parser table's ``types`` describe (data, not shapes/axes)."""
    spec = trt_data()["data_inputs"]
    if op_type in spec["all"]:
        return list(range(n_inputs))
    indices = spec.get(op_type, spec["_default"])
    return [i for i in indices if i < n_inputs]


def outputs_checked(op_type: str) -> bool:
    """Whether the op's output type must also be one of its ``types`` (not so for comparisons, Shape, ...)."""
    return op_type not in trt_data()["outputs_not_checked"]
