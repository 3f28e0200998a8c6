"""Which nodes of a graph the Orin DLA would hand back to the GPU, and why.

TensorRT places every layer it can on the DLA core it was asked for and, with
``--allowGPUFallback``, runs the rest on the GPU. Each DLA<->GPU boundary costs a
copy and a separate DLA loadable (16 per core at most), so a spiking graph
whose neurons fall back after every convolution gains little from the DLA.
This module predicts the fallbacks from the ONNX graph alone, using the layer
list and limits in ``data/dla_ops.json``, which follows NVIDIA's Orin DLA
operator support matrix (Deep-Learning-Accelerator-SW ``operators/README.md``):

- ops the matrix lists as "Reconstruction" (Gather, ReduceSum, Identity, ...)
  or "See RFE" (not exposed through TensorRT: Flatten, Squeeze, Unsqueeze,
  Cast, Mod, ...), and ops it does not list;
- integer or bool data tensors (DLA computes FP16/INT8 only; the int64 step
  counter and everything it touches);
- native layers outside their limits (kernel, stride, dilation, padding, channel
  counts, window sizes, concat axis) or with run-time shapes;
- comparisons (``Greater`` in the LIF neuron) unless they are INT8 with their
  output cast right away;
- Resize modes other than nearest with integer scales or half-pixel bilinear.

Ops where the matrix (written for TensorRT 8.5/8.6) and the current developer
guide disagree (Min, Div, Pow, the INT8 comparisons Greater/Less, Q/DQ) are
*unconfirmed* for TensorRT 10.3: reported as their own warning, never as
DLA-able. It is a static prediction; ``trtexec --useDLACore=N
--allowGPUFallback --verbose`` prints the real placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import onnx

from edge_snn.runtime.model_file import node_attributes
from edge_snn.targets.graph import Graph
from edge_snn.targets.tables import data_inputs, dla_data

DLA_PRECISIONS = ("fp16", "int8")
_INT_TYPES = {"INT32", "INT64", "BOOL", "UINT8", "INT16", "UINT16", "UINT32", "UINT64"}
_COMPARISONS = ("Greater", "Less", "Equal")


@dataclass(frozen=True)
class Fallback:
    """One node that would run on the GPU: where, why, and how to avoid it."""

    node: str
    op_type: str
    reason: str
    hint: str


def dla_fallbacks(g: Graph, precision: str) -> list[Fallback]:
    """Every node of ``g`` predicted to fall back from DLA to GPU at ``precision`` ("fp16" or "int8")."""
    return dla_placement(g, precision)[0]


def dla_placement(g: Graph, precision: str) -> tuple[list[Fallback], list[Fallback]]:
    """(nodes predicted to fall back to the GPU, nodes whose DLA placement in TensorRT 10.3 is unconfirmed)."""
    table = dla_data()
    layers: dict[str, dict[str, Any]] = table["layers"]
    hints: dict[str, str] = table["hints"]
    max_dim = int(table["general"]["max_dim"])
    # Casts that finish a DLA-able comparison ride along with it.
    riding_casts: set[int] = set()
    comparison_reason: dict[int, str | None] = {}
    for node in g.nodes:
        if node.op_type in _COMPARISONS:
            reason = _comparison_reason(g, node, precision)
            comparison_reason[id(node)] = reason
            if reason is None:
                riding_casts.update(id(c) for c in g.consumers.get(node.output[0], []))
    out: list[Fallback] = []
    unconfirmed: list[Fallback] = []
    for node in g.nodes:
        op = node.op_type
        layer = layers.get(op)
        status = layer["status"] if layer else None
        if status == "free" or id(node) in riding_casts:
            continue
        if op in _COMPARISONS:
            reason = comparison_reason[id(node)]
            if reason:
                out.append(Fallback(g.label(node), op, reason, hints["Greater"].format(op=op)))
            elif layer and layer.get("unconfirmed"):
                unconfirmed.append(Fallback(g.label(node), op, layer["note"],
                                            hints["unconfirmed"].format(op=op, note=layer["note"])))
            continue
        if layer is None:
            out.append(Fallback(g.label(node), op, f"the DLA has no layer for {op}", _op_hint(hints, op)))
            continue
        if status == "fallback":
            hint = hints[op].format(op=op) if op in hints else hints["fallback"].format(op=op, why=layer["why"])
            out.append(Fallback(g.label(node), op, layer["why"], hint))
            continue
        int_type = _integer_type(g, node)
        if int_type:
            out.append(Fallback(g.label(node), op, f"it moves {int_type} tensors", hints["int"].format(dtype=int_type)))
            continue
        reason, hint = _layer_reason(g, node, layer, hints, max_dim)
        if reason:
            out.append(Fallback(g.label(node), op, reason, hint))
        elif status == "unconfirmed":
            unconfirmed.append(Fallback(g.label(node), op, layer["note"],
                                        hints["unconfirmed"].format(op=op, note=layer["note"])))
    return out, unconfirmed


def _op_hint(hints: dict[str, str], op: str) -> str:
    if op in hints:
        return hints[op].format(op=op)
    if op.startswith("Reduce"):
        return hints["ReduceSum"].format(op=op)
    return hints["unknown"].format(op=op)


def _comparison_reason(g: Graph, node: onnx.NodeProto, precision: str) -> str | None:
    """None if the comparison can stay on DLA: INT8 inputs and every consumer a Cast."""
    if precision != "int8":
        return f"DLA runs {node.op_type} only in INT8, and this build is {precision}"
    for name in node.input:
        if name and not g.folds_to_constant(name):
            producer = g.producer.get(name)
            if producer is None or producer.op_type != "DequantizeLinear":
                return "its inputs are not INT8 (no DequantizeLinear in front of them)"
    consumers = g.consumers.get(node.output[0], [])
    if not consumers or any(c.op_type != "Cast" for c in consumers):
        return "its bool output is not cast to FP16/INT8 right away"
    return None


def _integer_type(g: Graph, node: onnx.NodeProto) -> str | None:
    """The first integer/bool type among the node's data inputs and outputs, if any."""
    names = [node.input[k] for k in data_inputs(node.op_type, len(node.input))] + list(node.output)
    for name in names:
        t = g.info(name).type_name if name else None
        if t in _INT_TYPES:
            return t
    return None


def _layer_reason(g: Graph, node: onnx.NodeProto, layer: dict[str, Any], hints: dict[str, str],
                  max_dim: int) -> tuple[str | None, str]:
    op = node.op_type
    for name in [*node.input[:1], *node.output]:
        shape = g.info(name).static_shape if name else None
        if shape and len(shape) >= 3 and max(shape[-3:]) > max_dim:
            return (f"a tensor has a dimension above {max_dim}",
                    hints["limits"].format(limit=f"dims up to {max_dim}"))
    limits = layer.get("limits", {})
    if layer["status"] == "resize":
        return _resize_reason(g, node, limits, hints)
    if op in ("Conv", "ConvTranspose", "AveragePool", "MaxPool"):
        found = _window_limits(g, node, limits)
        if found:
            detail, limit = found
            return f"{detail} is outside the DLA {layer['layer']} limits", hints["limits"].format(limit=limit)
    if op == "Concat" and "axis" in limits:
        rank = len(g.info(node.output[0]).shape or ()) or 4
        axis = int(node_attributes(node).get("axis", 1))
        axis = axis + rank if axis < 0 else axis
        if axis != limits["axis"]:
            return (f"it concatenates along axis {axis}",
                    hints["limits"].format(limit="concatenation along channels (axis 1) only"))
    if "requires" in layer:
        runtime = [name for name in node.input[1:] if name and not g.folds_to_constant(name)]
        if runtime:
            what = layer["requires"]
            return f"its {what} is computed at run time", hints["shape"].format(what=what)
    return None, ""


def _window_limits(g: Graph, node: onnx.NodeProto, limits: dict[str, list[int]]) -> tuple[str, str] | None:
    """First attribute of a Conv/ConvTranspose/Pool outside the DLA range, as (detail, allowed range)."""
    a = node_attributes(node)
    values: dict[str, list[int]] = {}
    if node.op_type in ("Conv", "ConvTranspose"):
        w = g.info(node.input[1]).static_shape if len(node.input) > 1 else None
        kernel = list(a.get("kernel_shape", w[2:] if w else []))
        values["kernel"] = kernel
        values["dilation"] = list(a.get("dilations", [1] * len(kernel)))
        groups = int(a.get("group", 1))
        values["groups"] = [groups]
        if w:
            c_out = w[0] if node.op_type == "Conv" else w[1] * groups
            c_in = w[1] * groups if node.op_type == "Conv" else w[0]
            values["channels"] = [c_in, c_out]
    else:
        kernel = list(a.get("kernel_shape", []))
        values["window"] = kernel
    values["stride"] = list(a.get("strides", [1] * len(kernel)))
    values["padding"] = list(a.get("pads", [0] * 2 * len(kernel)))
    if "spatial_dims" in limits and len(kernel) != limits["spatial_dims"][0]:
        return f"a {len(kernel)}-D {node.op_type}", "2-D (NCHW) layers only"
    for key, (lo, hi) in limits.items():
        if key == "spatial_dims" or key not in values:
            continue
        bad = [v for v in values[key] if not lo <= v <= hi]
        if bad:
            return f"{key} {values[key]}", f"{key} in [{lo}, {hi}]"
    return None


def _resize_reason(g: Graph, node: onnx.NodeProto, limits: dict[str, Any],
                   hints: dict[str, str]) -> tuple[str | None, str]:
    a = node_attributes(node)
    mode = a.get("mode", "nearest")
    coord = a.get("coordinate_transformation_mode", "half_pixel")
    hint = hints["Resize"]
    if mode == "linear":
        if coord not in limits["linear_coordinate_modes"]:
            return f"bilinear Resize with {coord} coordinates", hint
        return None, ""
    if mode != "nearest":
        return f"{mode} Resize", hint
    src = g.info(node.input[0]).static_shape
    dst = g.info(node.output[0]).static_shape
    if not src or not dst or len(src) != 4 or len(dst) != 4:
        return "nearest Resize whose shapes are not static 4-D", hint
    lo, hi = limits["nearest_scale"]
    if src[:2] != dst[:2] or any(d % s or not lo <= d // s <= hi for s, d in zip(src[2:], dst[2:])):
        return f"nearest Resize from {list(src)} to {list(dst)} (not an integer H/W scale in [{lo}, {hi}])", hint
    return None, ""
