"""Static TensorRT readiness check of an ONNX file for one target, without a GPU.

``edge-snn check model.onnx --target orin-nx-16gb`` answers "will TensorRT on
that device take this graph, and will it run the way we think?" before the file
is copied to the device. It reads the graph (:mod:`.graph`), compares it with
the parser table of the target's TensorRT version (:mod:`.tables`) and with
TensorRT's explicit-quantization rules, and, when asked, lists the nodes the
DLA would hand back to the GPU (:mod:`.dla`).

Every finding has a level: ``error`` (TensorRT will refuse the graph, or the
graph breaks an edge-snn deployment rule such as static shapes), ``warning``
(it builds, but not as intended: a Conv left in float, a layer falling back
from DLA to GPU), ``info`` (context). The report is ``ok`` when there are no
errors. Messages say what to change.

The check is static: it cannot see tactic choices or what the builder fuses;
``trtexec --onnx=... --verbose`` on the device has the last word.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import onnx

from edge_snn.errors import UserError
from edge_snn.runtime.contract import PREFIX
from edge_snn.targets import dla as dla_mod
from edge_snn.runtime.model_file import node_attributes
from edge_snn.targets.graph import Graph, load_graph, node_label
from edge_snn.targets.profiles import PRECISIONS, Target
from edge_snn.targets.tables import (data_inputs, outputs_checked, pick_trt_version, trt_data, trt_table,
                                     version_key)

Level = Literal["error", "warning", "info"]
_ORDER = {"error": 0, "warning": 1, "info": 2}
_PLAIN_TYPES = {"FP32", "FP16", "BF16", "INT32", "INT64", "BOOL"}  # judged per op; others judged per tensor
_QDQ = ("QuantizeLinear", "DequantizeLinear")
_LINEAR = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# Where per-channel weight scales must lie: the output-channel axis of the weight tensor.
# Conv weights are [C_out, C_in/g, kH, kW]; ConvTranspose weights are [C_in, C_out/g, kH, kW].
_WEIGHT_AXIS = {"Conv": 0, "ConvTranspose": 1}
_RESIZE_COORD = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
_RESIZE_NEAREST = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}


@dataclass(frozen=True)
class Finding:
    """One thing the check found: how bad, a stable code, where, and what to do."""

    level: Level
    code: str
    message: str
    node: str | None = None

    def format(self) -> str:
        where = f" {self.node}:" if self.node else ""
        return f"{self.level:<7} [{self.code}]{where} {self.message}"


@dataclass(frozen=True)
class CheckReport:
    """Result of :func:`check_model`; ``ok`` means no errors."""

    model: Path
    target: str
    tensorrt: str | None
    table: str | None
    opset: int
    node_count: int
    precision: str
    dla_core: int | None
    findings: tuple[Finding, ...]
    dla_fallback_counts: tuple[tuple[str, int], ...] = ()

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        trt = f"TensorRT {self.tensorrt} (table {self.table})" if self.tensorrt else "no TensorRT"
        dla = f", DLA core {self.dla_core}" if self.dla_core is not None else ""
        lines = [f"check {self.model} for {self.target}: {trt}, opset {self.opset}, {self.node_count} nodes, "
                 f"precision {self.precision}{dla}"]
        lines += ["  " + f.format() for f in sorted(self.findings, key=lambda f: _ORDER[f.level])]
        verdict = "OK" if self.ok else "FAIL"
        lines.append(f"result: {verdict} ({len(self.errors)} errors, {len(self.warnings)} warnings)")
        return "\n".join(lines)


def check_model(onnx_path: str | Path, target: Target, *, precision: str | None = None,
                dla_core: int | None = None, use_dla: bool = False, strict_dla: bool = False) -> CheckReport:
    """Check ``onnx_path`` against ``target``'s TensorRT (and DLA) rules.

    ``precision`` (default: the target's ``defaults.precision``) matters for the
    INT8 and DLA rules. ``use_dla=True`` or a ``dla_core`` adds the DLA fallback
    analysis (core 0 unless given); fallbacks are warnings, or errors with
    ``strict_dla=True``. A path that is not ONNX, an unknown precision or a DLA
    request on a target without DLA is a :class:`UserError`.
    """
    precision = precision or target.defaults.precision
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if use_dla or dla_core is not None or strict_dla:
        dla_core = 0 if dla_core is None else dla_core
        if target.dla.cores == 0:
            raise UserError(f"target {target.name} has no DLA: drop --dla-core, or pick a target with DLA "
                            "(orin-nx-16gb, agx-orin-64gb)")
        if not 0 <= dla_core < target.dla.cores:
            raise UserError(f"--dla-core {dla_core} does not exist on {target.name}: it has cores "
                            f"0..{target.dla.cores - 1}")
    g = load_graph(onnx_path)
    findings: list[Finding] = []
    add = findings.append

    if g.checker_error:
        add(Finding("error", "onnx-invalid", f"the ONNX checker rejects the model ({g.checker_error}); "
                    "re-export it, TensorRT's parser assumes a valid graph"))
    if g.inference_error:
        add(Finding("warning", "shape-inference", f"ONNX shape inference failed ({g.inference_error}), so type "
                    "and shape checks below see only part of the graph"))
    _check_io(g, add)

    table_version = None
    if target.defaults.backend == "tensorrt" and g.metadata.get(PREFIX + "precision") == "int8-integer":
        add(Finding("error", "int8-integer-form", "this is the int8-integer form (ConvInteger with uint8/int8 tensors, "
                    "for ONNX Runtime's CPU integer kernels), which TensorRT does not build: export the quantized "
                    "checkpoint again with --int8-form qdq (TensorRT's explicit quantization)"))
    elif target.defaults.backend == "tensorrt" and target.tensorrt:
        table_version = pick_trt_version(target.tensorrt)
        if version_key(table_version) != version_key(target.tensorrt):
            add(Finding("info", "table-version", f"no parser table for TensorRT {target.tensorrt}; using the "
                        f"{table_version} table (the closest older one)"))
        table = trt_table(table_version)
        _check_opset(g, table.opset_min, table.opset_max, table.version, add)
        _check_tensor_types(g, add)
        _check_ops(g, table.ops, table.version, add)
        _check_qdq(g, precision, add)
        limit = int(trt_data()["limits"]["node_count_warning"])
        if len(g.nodes) > limit:
            add(Finding("warning", "node-count", f"{len(g.nodes)} nodes is above {limit}: "
                        + trt_data()["limits"]["node_count_why"]))
    else:
        add(Finding("info", "not-tensorrt", f"target {target.name} runs {target.defaults.backend}; the TensorRT "
                    "parser and quantization rules were not checked"))

    counts: tuple[tuple[str, int], ...] = ()
    if dla_core is not None:
        counts = _check_dla(g, precision, dla_core, strict_dla, add)
    return CheckReport(model=g.path, target=target.name, tensorrt=target.tensorrt, table=table_version,
                       opset=g.opset, node_count=len(g.nodes), precision=precision, dla_core=dla_core,
                       findings=tuple(findings), dla_fallback_counts=counts)


Add = Callable[[Finding], None]


def _check_io(g: Graph, add: Add) -> None:
    """Static shapes on every graph input and output; no initializer posing as an input."""
    graph = g.model.graph
    for kind, values in (("input", graph.input), ("output", graph.output)):
        for vi in values:
            if vi.name in g.initializers:
                continue
            info = g.info(vi.name)
            if info.shape is None:
                add(Finding("error", "dynamic-shape", f"graph {kind} '{vi.name}' has no shape: re-export with "
                            "fixed input sizes (torch.onnx.export without dynamic_axes)"))
                continue
            for axis, dim in enumerate(info.shape):
                if not (isinstance(dim, int) and dim > 0):
                    what = f"'{dim}'" if isinstance(dim, str) else "unknown"
                    add(Finding("error", "dynamic-shape", f"graph {kind} '{vi.name}' has a dynamic dimension {what} "
                                f"at axis {axis} (shape {_shape_text(info.shape)}): edge-snn deploys static shapes "
                                "(DLA needs them, and state tensors must match); re-export without dynamic_axes"))
    for vi in graph.input:
        if vi.name in g.initializers:
            add(Finding("error", "initializer-input", f"initializer '{vi.name}' is also listed as a graph input, "
                        "so TensorRT treats it as a runtime input, not a constant weight: re-export with "
                        "keep_initializers_as_inputs=False"))


def _check_opset(g: Graph, lo: int, hi: int, version: str, add: Add) -> None:
    if not lo <= g.opset <= hi:
        fix = (f"re-export with opset_version={hi} (or lower)" if g.opset > hi
               else f"convert it with onnx.version_converter.convert_version(model, {lo})")
        add(Finding("error", "opset", f"default-domain opset {g.opset} is outside TensorRT {version}'s "
                    f"parser range {lo}..{hi}: {fix}"))


def _check_tensor_types(g: Graph, add: Add) -> None:
    """Types TensorRT cannot compute in, judged once per tensor (the parser table judges the rest per op)."""
    io = {vi.name for vi in [*g.model.graph.input, *g.model.graph.output]}
    used = {name for node in g.nodes for name in [*node.input, *node.output] if name} | io
    for name in sorted(used):
        info = g.info(name)
        t = info.type_name
        if t is None or t in _PLAIN_TYPES:
            continue
        where = _where(g, name)
        if t == "FP64":
            if name in g.initializers:
                add(Finding("warning", "float64", f"initializer '{name}' is float64; the parser casts it down to "
                            "float32, clamping to +-FLT_MAX: store it as float32", where))
            else:
                add(Finding("error", "float64", f"tensor '{name}' is float64; TensorRT has no float64 layers: "
                            "export in float32 (model.float() before torch.onnx.export)", where))
        elif t == "UINT8":
            if name in io or _qdq_related(g, name):
                continue  # UINT8 is allowed as network I/O; Q/DQ tensors are judged by _check_qdq
            add(Finding("error", "uint8", f"tensor '{name}' is uint8 inside the graph; TensorRT takes UINT8 only "
                        "as a network input or output: cast to float right after the input", where))
        elif t in ("INT8", "INT4", "FP8", "FP4"):
            if _qdq_related(g, name):
                continue
            add(Finding("error", "quantized-type", f"tensor '{name}' is {t} outside QuantizeLinear/"
                        "DequantizeLinear; TensorRT uses quantized types only through Q/DQ: quantize with Q/DQ "
                        "pairs (brevitas QAT export)", where))
        else:
            add(Finding("error", "dtype-unsupported", f"tensor '{name}' has type {t}, which TensorRT does not "
                        "support: use float32/float16, int32/int64 or bool", where))


def _check_ops(g: Graph, ops: dict[str, dict], version: str, add: Add) -> None:
    const_inputs = trt_data()["const_inputs"]
    for i, node in enumerate(g.nodes):
        label = node_label(node, i)
        if node.domain not in ("", "ai.onnx"):
            add(Finding("error", "custom-op", f"{node.op_type} is in domain '{node.domain}', which the TensorRT "
                        "parser does not know: it needs a TensorRT plugin, or replace it with standard ONNX ops",
                        label))
            continue
        entry = ops.get(node.op_type)
        if entry is None or not entry.get("supported"):
            why = f" ({entry['restrictions']})" if entry and entry.get("restrictions") else ""
            add(Finding("error", "op-unsupported", f"{node.op_type} is not supported by the TensorRT {version} ONNX "
                        f"parser{why}: rewrite it with supported ops or add a plugin", label))
            continue
        allowed = set(entry.get("types", ()))
        checked = [node.input[k] for k in data_inputs(node.op_type, len(node.input))]
        if outputs_checked(node.op_type):
            checked += list(node.output)
        bad: dict[str, list[str]] = {}
        for name in checked:
            t = g.info(name).type_name if name else None
            if t in _PLAIN_TYPES and t not in allowed:
                bad.setdefault(t, []).append(f"'{name}'")
        for t, names in bad.items():
            add(Finding("error", "dtype-unsupported", f"{node.op_type} on {t} ({', '.join(names)}): the TensorRT "
                        f"{version} parser supports {node.op_type} for {', '.join(sorted(allowed))} only; "
                        "insert a Cast or change the export", label))
        for k in const_inputs.get(node.op_type, ()):
            if k < len(node.input) and node.input[k] and not g.folds_to_constant(node.input[k]):
                add(Finding("warning", "const-input", f"input {k} ('{node.input[k]}') of {node.op_type} is computed "
                            f"at run time; TensorRT {version} needs it as a build-time constant ("
                            f"{entry.get('restrictions', 'see the parser table')}): make it an initializer", label))
        _check_attributes(g, node, label, add)


def _check_attributes(g: Graph, node: onnx.NodeProto, label: str, add: Add) -> None:
    a = node_attributes(node)
    problems: list[str] = []
    if node.op_type == "Resize":
        mode = a.get("mode", "nearest")
        coord = a.get("coordinate_transformation_mode", "half_pixel")
        if mode not in ("nearest", "linear"):
            problems.append(f"mode '{mode}' (supported: nearest, linear)")
        if coord not in _RESIZE_COORD:
            problems.append(f"coordinate_transformation_mode '{coord}' (supported: {', '.join(sorted(_RESIZE_COORD))})")
        if mode == "nearest" and a.get("nearest_mode", "round_prefer_floor") not in _RESIZE_NEAREST:
            problems.append(f"nearest_mode '{a['nearest_mode']}'")
        if a.get("antialias", 0):
            problems.append("antialias=1")
        if a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            problems.append(f"keep_aspect_ratio_policy '{a['keep_aspect_ratio_policy']}' (only stretch)")
    elif node.op_type in ("AveragePool", "MaxPool", "LpPool"):
        if any(d != 1 for d in a.get("dilations", [])):
            problems.append(f"dilations {list(a['dilations'])} (must be all ones)")
        kernel = a.get("kernel_shape", [])
        if len(kernel) not in (2, 3):
            problems.append(f"a {len(kernel)}-D window (2D or 3D pooling only)")
        if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
            problems.append("the Indices output")
    elif node.op_type == "TopK" and a.get("sorted", 1) != 1:
        problems.append("sorted=0")
    elif node.op_type == "ScatterND" and a.get("reduction", "none") != "none":
        problems.append(f"reduction '{a['reduction']}'")
    for p in problems:
        add(Finding("error", "attr-unsupported", f"{node.op_type} with {p} is not supported by TensorRT: "
                    "change the export to a supported setting", label))


def _check_qdq(g: Graph, precision: str, add: Add) -> None:
    """TensorRT explicit quantization: signed INT8, zero point 0, positive scales, per-channel only on weights."""
    any_qdq = False
    for i, node in enumerate(g.nodes):
        label = node_label(node, i)
        if node.op_type in _QDQ:
            any_qdq = True
            _check_qdq_node(g, node, label, add)
        elif node.op_type == "Clip" and node.input and _producer_op(g, node.input[0]) == "DequantizeLinear":
            add(Finding("warning", "qdq-clip", f"Clip reads the dequantized tensor '{node.input[0]}': TensorRT "
                        "cannot fuse it into the quantized layer, so it runs as a separate float layer; the "
                        "QuantizeLinear already saturates to [-128, 127]*scale, so fold the clip range into the "
                        "scale or move the Clip before the QuantizeLinear", label))
        elif node.op_type in _LINEAR and len(node.input) > 1:
            data_q = _producer_op(g, node.input[0]) == "DequantizeLinear"
            weight_q = _producer_op(g, node.input[1]) == "DequantizeLinear"
            if data_q != weight_q:
                have, lack = ("weights", "input") if weight_q else ("input", "weights")
                add(Finding("warning", "qdq-partial", f"{node.op_type} has a DequantizeLinear on its {have} but not "
                            f"on its {lack}, so TensorRT runs it in float, not INT8: quantize both (or neither)",
                            label))
    if not any_qdq and precision == "int8":
        add(Finding("info", "no-qdq", "no QuantizeLinear/DequantizeLinear nodes: an INT8 build of this graph needs "
                    "calibration (implicit quantization, deprecated in TensorRT 10); export the QAT model with Q/DQ, "
                    "or build with --precision fp16"))


def _check_qdq_node(g: Graph, node: onnx.NodeProto, label: str, add: Add) -> None:
    op = node.op_type
    a = node_attributes(node)
    x = node.input[0]
    scale = node.input[1] if len(node.input) > 1 else ""
    zp = node.input[2] if len(node.input) > 2 else ""
    # The integer side of the pair: Q's output, DQ's input.
    int_type = g.info(node.output[0] if op == "QuantizeLinear" else x).type_name
    if zp:
        int_type = g.info(zp).type_name or int_type
    elif op == "QuantizeLinear" and "output_dtype" not in a:
        int_type = "UINT8"  # ONNX default when y_zero_point is absent
    if int_type == "UINT8":
        add(Finding("error", "qdq-uint8", f"{op} quantizes to UINT8 (asymmetric); TensorRT's explicit quantization "
                    "is signed INT8 with zero point 0: export signed int8 quantizers (brevitas Int8ActPerTensorFloat, "
                    "a zero point of type int8 equal to 0)", label))
    elif int_type is not None and int_type not in ("INT8", "FP8", "INT4", "FP4"):
        add(Finding("error", "qdq-type", f"{op} uses {int_type} as its quantized type; TensorRT supports INT8 "
                    "(and FP8/INT4/FP4 on newer GPUs): quantize to int8", label))
    if zp:
        value = g.value(zp)
        if value is None:
            add(Finding("error", "qdq-zero-point", f"{op} zero point '{zp}' is not a constant; TensorRT needs a "
                        "constant zero point of 0: make it an initializer", label))
        elif np.any(value != 0):
            add(Finding("error", "qdq-zero-point", f"{op} zero point '{zp}' is {_brief(value)}; TensorRT's "
                        "quantization is symmetric and needs all zero points 0: use symmetric quantizers", label))
    scale_value = g.value(scale) if scale else None
    if not scale or scale_value is None:
        add(Finding("error", "qdq-scale", f"{op} scale '{scale}' is not a constant; TensorRT needs build-time "
                    "scales: make it an initializer", label))
        return
    if not np.all(np.isfinite(scale_value)) or np.any(scale_value <= 0):
        add(Finding("error", "qdq-scale", f"{op} scale '{scale}' is {_brief(scale_value)}; scales must be finite "
                    "and > 0: recalibrate or retrain the quantizer", label))
    if scale_value.size <= 1:
        return
    rank = len(g.info(x).shape or ()) or None
    axis = int(a.get("axis", 1))
    axis = axis + rank if (rank and axis < 0) else axis
    weights = g.folds_to_constant(x)  # int8 weights, or float weights through QuantizeLinear
    if not weights:
        if op == "DequantizeLinear" and _producer_op(g, x) == "QuantizeLinear":
            return  # reported on its QuantizeLinear
        add(Finding("error", "qdq-activation-per-channel", f"{op} quantizes the activation '{x}' per channel "
                    f"(axis {axis}, {scale_value.size} scales); TensorRT quantizes activations per tensor only: "
                    "use one scale per activation tensor", label))
        return
    dq = node if op == "DequantizeLinear" else next(
        (c for c in g.consumers.get(node.output[0], []) if c.op_type == "DequantizeLinear"), None)
    for consumer in g.consumers.get(dq.output[0], []) if dq is not None else []:
        want = _WEIGHT_AXIS.get(consumer.op_type)
        if want is None or len(consumer.input) < 2 or consumer.input[1] != dq.output[0]:
            continue
        if axis != want:
            add(Finding("error", "qdq-axis", f"{op} quantizes the {consumer.op_type} weights '{x}' along axis "
                        f"{axis}; TensorRT needs per-channel weight scales on the output-channel axis, which is "
                        f"axis {want} for {consumer.op_type}: re-export with axis={want}", label))


def _check_dla(g: Graph, precision: str, core: int, strict: bool, add: Add) -> tuple[tuple[str, int], ...]:
    level: Level = "error" if strict else "warning"
    if precision not in dla_mod.DLA_PRECISIONS:
        add(Finding(level, "dla-precision", f"DLA runs FP16 or INT8 only; at precision {precision} every layer runs "
                    "on the GPU: use --precision fp16 or int8"))
        return ()
    fallbacks, unconfirmed = dla_mod.dla_placement(g, precision)
    for code, found, what in (("dla-fallback", fallbacks, "would run on the GPU"),
                              ("dla-unconfirmed", unconfirmed, "may or may not run on the DLA with TensorRT 10.3")):
        groups: dict[tuple[str, str, str], list[str]] = {}
        for fb in found:
            groups.setdefault((fb.op_type, fb.reason, fb.hint), []).append(fb.node)
        for (op, reason, hint), nodes in groups.items():
            more = f" (also {', '.join(nodes[1:4])}{', ...' if len(nodes) > 4 else ''})" if len(nodes) > 1 else ""
            add(Finding(level, code, f"{len(nodes)} {op} node(s) {what}{more}: {reason}. Fix: {hint}", nodes[0]))
    counts: dict[str, int] = {}
    for fb in fallbacks:
        counts[fb.op_type] = counts.get(fb.op_type, 0) + 1
    total = len(g.nodes)
    if fallbacks:
        by_op = ", ".join(f"{op} x{n}" for op, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        add(Finding(level, "dla-summary",
                    f"{len(fallbacks)} of {total} nodes would fall back from DLA core {core} to the GPU ({by_op}); "
                    "each DLA<->GPU boundary adds a copy and a new DLA loadable (at most 16 per core): build with "
                    "--allowGPUFallback, or keep the whole graph on the GPU"
                    + (f"; the placement of {len(unconfirmed)} more is unconfirmed" if unconfirmed else "")))
    elif unconfirmed:
        add(Finding(level, "dla-summary", f"no node is predicted to fall back from DLA core {core}, but the placement "
                    f"of {len(unconfirmed)} of {total} nodes is unconfirmed for TensorRT 10.3 (see dla-unconfirmed)"))
    else:
        add(Finding("info", "dla-summary", f"all {total} nodes look DLA-able on core {core} (static estimate: confirm "
                    "with trtexec --useDLACore and --verbose on the device)"))
    return tuple(sorted(counts.items()))


def _qdq_related(g: Graph, name: str) -> bool:
    """True if ``name`` is a Q output, a DQ input, or a Q/DQ zero point (the quantized side of a pair)."""
    if _producer_op(g, name) == "QuantizeLinear":
        return True
    return any(c.op_type in _QDQ and (c.op_type == "DequantizeLinear" and c.input[0] == name
                                      or (len(c.input) > 2 and c.input[2] == name))
               for c in g.consumers.get(name, []))


def _producer_op(g: Graph, name: str) -> str | None:
    node = g.producer.get(name)
    return node.op_type if node is not None else None


def _where(g: Graph, name: str) -> str | None:
    node = g.producer.get(name) or next(iter(g.consumers.get(name, [])), None)
    return None if node is None else g.label(node)


def _shape_text(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _brief(value: np.ndarray) -> str:
    flat = np.asarray(value).ravel()
    text = ", ".join(f"{v:g}" for v in flat[:4]) + (", ..." if flat.size > 4 else "")
    return f"[{text}]" if flat.size != 1 else text


__all__ = ["CheckReport", "Finding", "check_model"]
