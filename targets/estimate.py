"""Roofline floor: the least time one call of an ONNX graph can take on a target.

A call of an exported edge-snn graph processes all T timesteps it was unrolled
over, so everything here is **per call**; the per-timestep figure is the call
divided by T (read from the ``edge_snn.timesteps`` metadata when present).

Work, from the graph after ONNX shape inference (MAC = multiply-accumulate,
counted as 2 operations like NVIDIA's TOPS figures):

- Conv: MACs = N * C_out * H_out * W_out * (C_in / groups) * k_h * k_w
- ConvTranspose: MACs = N * C_in * H_in * W_in * (C_out / groups) * k_h * k_w
  (every input pixel is scattered through the whole kernel)
- Gemm / MatMul: MACs = output elements * K
- pooling: output elements * window area; Reduce*: input elements
- data movement (Concat, Split, Slice, Gather, Cast, Transpose, Pad, ...): 0
- shape-only ops (Reshape, Squeeze, Unsqueeze, Identity, Q/DQ, ...): free
- everything else (elementwise, comparisons, Resize): 1 op per output element

Bytes moved: every weight once per call at the precision's size, plus every
non-free node reading its non-constant inputs and writing its outputs (float
tensors at the precision's size, integer tensors at their own size).

    compute_s = ops / peak_ops_per_s(engine, precision)
    memory_s  = bytes / bandwidth_bytes_per_s
    floor_s   = max(compute_s, memory_s)        (the larger term is the bound)

Assumptions that make it a floor, not a prediction: every op runs at the
engine's dense peak for the chosen precision, memory streams at peak bandwidth,
and compute and memory overlap perfectly. One caveat runs the other way: the
traffic term counts each node separately, and TensorRT's layer fusion (Conv +
elementwise) can keep some activations out of memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from edge_snn.errors import UserError
from edge_snn.runtime.model_file import node_attributes
from edge_snn.targets.graph import Graph, load_graph
from edge_snn.targets.profiles import PRECISIONS, Target

TIMESTEPS_KEY = "edge_snn.timesteps"
PRECISION_BYTES = {"int8": 1, "fp16": 2, "fp32": 4}
_FLOAT_TYPES = {"FP32", "FP16", "BF16", "FP64"}
_TYPE_BYTES = {"INT64": 8, "INT32": 4, "INT16": 2, "UINT16": 2, "INT8": 1, "UINT8": 1, "BOOL": 1,
               "FP8": 1, "UINT32": 4, "UINT64": 8, "INT4": 1, "UINT4": 1, "FP4": 1}
_FREE = {"Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Constant", "Shape", "Size",
         "QuantizeLinear", "DequantizeLinear", "ConstantOfShape", "Dropout"}
_MOVE_ONLY = {"Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND", "Cast", "CastLike",
              "Transpose", "Pad", "Expand", "Tile", "DepthToSpace", "SpaceToDepth"}


@dataclass(frozen=True)
class Estimate:
    """Per-call work, traffic and roofline floor of one graph on one engine of a target."""

    model: Path
    target: str
    engine: str
    precision: str
    timesteps: int | None
    macs: int
    ops: int
    weight_bytes: int
    activation_bytes: int
    peak_ops_per_s: float
    bandwidth_bytes_per_s: float
    ops_by_type: tuple[tuple[str, int], ...] = ()
    uncounted: tuple[str, ...] = ()

    @property
    def bytes_moved(self) -> int:
        return self.weight_bytes + self.activation_bytes

    @property
    def compute_s(self) -> float:
        return self.ops / self.peak_ops_per_s

    @property
    def memory_s(self) -> float:
        return self.bytes_moved / self.bandwidth_bytes_per_s

    @property
    def floor_s(self) -> float:
        """Least seconds per call: max(compute_s, memory_s)."""
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        """"compute" or "memory": which term sets the floor."""
        return "compute" if self.compute_s >= self.memory_s else "memory"

    @property
    def per_timestep_s(self) -> float | None:
        return None if not self.timesteps else self.floor_s / self.timesteps

    def format(self) -> str:
        t = (f"the graph is unrolled over T={self.timesteps} timesteps" if self.timesteps
             else f"T unknown: no '{TIMESTEPS_KEY}' metadata")
        peak_unit = "TOPS" if self.precision == "int8" else "TFLOPS"
        lines = [
            f"roofline floor of {self.model} on {self.target} {self.engine.upper()} at {self.precision} "
            f"(per call; {t})",
            f"  work:     {_si(self.macs, 'MAC')}, {_si(self.ops, 'op')} in all (1 MAC = 2 ops)",
            f"  traffic:  weights {_si(self.weight_bytes, 'B')} + activations {_si(self.activation_bytes, 'B')} "
            f"= {_si(self.bytes_moved, 'B')}",
            f"  compute:  {_si(self.compute_s, 's')} at {self.peak_ops_per_s / 1e12:g} {peak_unit} peak",
            f"  memory:   {_si(self.memory_s, 's')} at {self.bandwidth_bytes_per_s / 1e9:g} GB/s peak",
        ]
        if self.floor_s > 0:
            lines.append(f"  floor:    {_si(self.floor_s, 's')} per call ({self.bound}-bound), at most "
                         f"{1.0 / self.floor_s:,.0f} calls/s")
        else:
            lines.append("  floor:    0 s (nothing countable in the graph)")
        if self.per_timestep_s is not None:
            lines.append(f"            {_si(self.per_timestep_s, 's')} per timestep")
        if self.ops_by_type:
            top = ", ".join(f"{op} {n / max(self.ops, 1):.0%}" for op, n in self.ops_by_type[:5])
            lines.append(f"  ops by type: {top}")
        if self.uncounted:
            names = ", ".join(self.uncounted[:5]) + (", ..." if len(self.uncounted) > 5 else "")
            lines.append(f"  not counted ({len(self.uncounted)} nodes with unknown shapes): {names}")
        return "\n".join(lines)


def estimate_floor(onnx_path: str | Path, target: Target, precision: str | None = None, *,
                   engine: str | None = None) -> Estimate:
    """Roofline floor of one call of ``onnx_path`` on ``target``.

    ``precision`` defaults to the target's ``defaults.precision``; ``engine``
    ("gpu", "dla" for one DLA core, "cpu") to the target's main engine. A file
    that is not valid ONNX, or an engine/precision the target lacks, is a
    :class:`UserError`.
    """
    precision = precision or target.defaults.precision
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    engine = engine or target.main_engine
    peak = target.peak_ops_per_s(engine, precision)
    g = load_graph(onnx_path)
    if g.checker_error:
        raise UserError(f"{g.path} is not a valid ONNX model ({g.checker_error}): run `edge-snn check` on it")
    macs, ops, act_bytes, by_type, uncounted = _count(g, precision)
    return Estimate(model=g.path, target=target.name, engine=engine, precision=precision,
                    timesteps=_timesteps(g), macs=macs, ops=ops, weight_bytes=_weight_bytes(g, precision),
                    activation_bytes=act_bytes, peak_ops_per_s=peak,
                    bandwidth_bytes_per_s=target.memory.bandwidth_bytes_per_s,
                    ops_by_type=tuple(sorted(by_type.items(), key=lambda kv: -kv[1])), uncounted=tuple(uncounted))


def _timesteps(g: Graph) -> int | None:
    raw = g.metadata.get(TIMESTEPS_KEY)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"{g.path}: metadata '{TIMESTEPS_KEY}' is {raw!r}, not an integer: fix the export") from None
    return value if value > 0 else None


def _weight_bytes(g: Graph, precision: str) -> int:
    total = 0
    for name, init in g.initializers.items():
        info = g.info(name)
        n = int(np.prod(init.dims, dtype=np.int64)) if len(init.dims) else 1
        total += n * _tensor_bytes(info.type_name, precision)
    return total


def _tensor_bytes(type_name: str | None, precision: str) -> int:
    if type_name is None or type_name in _FLOAT_TYPES:
        return PRECISION_BYTES[precision]
    return _TYPE_BYTES.get(type_name, 4)


def _count(g: Graph, precision: str) -> tuple[int, int, int, dict[str, int], list[str]]:
    macs = ops = traffic = 0
    by_type: dict[str, int] = {}
    uncounted: list[str] = []
    for node in g.nodes:
        if node.op_type in _FREE:
            continue
        outputs = [g.info(o) for o in node.output if o]
        if any(o.numel is None for o in outputs):
            uncounted.append(g.label(node))
            continue
        node_macs, node_ops = _work(g, node, sum(o.numel or 0 for o in outputs))
        if node_ops is None:
            uncounted.append(g.label(node))
            continue
        macs += node_macs
        ops += node_ops
        if node_ops:
            by_type[node.op_type] = by_type.get(node.op_type, 0) + node_ops
        for name in [*node.input, *node.output]:
            if not name or g.folds_to_constant(name):
                continue
            info = g.info(name)
            traffic += (info.numel or 0) * _tensor_bytes(info.type_name, precision)
    return macs, ops, traffic, by_type, uncounted


def _work(g: Graph, node: onnx.NodeProto, out_numel: int) -> tuple[int, int | None]:
    """(MACs, ops) of one node; ops None when an input shape needed for it is unknown."""
    op = node.op_type
    a = node_attributes(node)
    if op in ("Conv", "ConvTranspose"):
        w = g.info(node.input[1]).static_shape
        x = g.info(node.input[0]).numel
        if w is None or (op == "ConvTranspose" and x is None):
            return 0, None
        per_point = int(w[1] * np.prod(w[2:], dtype=np.int64))  # (C_in/g or C_out/g) * k_h * k_w
        node_macs = (out_numel if op == "Conv" else x) * per_point  # type: ignore[operator]
        bias = out_numel if len(node.input) > 2 and node.input[2] else 0
        return node_macs, 2 * node_macs + bias
    if op in ("Gemm", "MatMul"):
        shape = g.info(node.input[0]).static_shape
        if shape is None:
            return 0, None
        k = shape[-2] if (op == "Gemm" and a.get("transA", 0)) else shape[-1]
        node_macs = out_numel * k
        bias = out_numel if op == "Gemm" and len(node.input) > 2 and node.input[2] else 0
        return node_macs, 2 * node_macs + bias
    if op in ("AveragePool", "MaxPool", "LpPool"):
        return 0, out_numel * int(np.prod(a.get("kernel_shape", [1]), dtype=np.int64))
    if op.startswith("Reduce") or op.startswith("Global"):
        x = g.info(node.input[0]).numel
        return (0, None) if x is None else (0, x)
    if op in _MOVE_ONLY:
        return 0, 0
    return 0, out_numel


def _si(value: float, unit: str) -> str:
    """``1.37e9, "MAC"`` -> ``"1.37 GMAC"``; ``2.1e-4, "s"`` -> ``"210 us"``."""
    if value == 0:
        return f"0 {unit}"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "u"),
                           (1e-9, "n")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"
