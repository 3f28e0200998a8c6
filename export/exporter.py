"""``edge-snn export``: a checkpoint to a self-describing ONNX graph with explicit state.

The graph runs ``T`` timesteps of one frame per call, from the state it is
given to the state it returns (names and shapes: :mod:`edge_snn.runtime.contract`).
``time-major`` unrolls the step function T times; ``layer-major`` runs each
convolution once over all T steps (time folded into the batch) and unrolls
only the LIF recurrence. Both are recorded from the model's own body (see
:mod:`edge_snn.export.graph`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper

from edge_snn.errors import UserError
from edge_snn.export.graph import INT64, GraphBuilder, OnnxOps, Sym
from edge_snn.export.weights import FloatWeights, int8_weights
from edge_snn.models.base import LAYOUTS
from edge_snn.models.bntt import BEYOND_POLICIES
from edge_snn.runtime import contract as C
from edge_snn.runtime.encoding import default_input_range
from edge_snn.runtime.files import file_sha256, write_bytes_atomic

OPSET = 17
MIN_SIZE = 8  # pixels: below this the two pooling stages leave nothing to segment


@dataclass(frozen=True)
class ExportOptions:
    """What to export. ``height``/``width`` default to the training size in the checkpoint.

    bn_beyond: how steps past the trained T are normalized (``error``: the
        runtime refuses them; ``last``/``cycle``, see :mod:`edge_snn.models.bntt`).
    int8_form: how a quantized checkpoint's convs are written: ``qdq`` (TensorRT's
        explicit quantization, :mod:`edge_snn.export.qdq`) or ``integer`` (ONNX
        Runtime's CPU integer kernels, :mod:`edge_snn.export.integer`).
    """

    timesteps: int = 20
    layout: str = "time-major"
    batch: int = 1
    height: int | None = None
    width: int | None = None
    bn_beyond: str = "error"
    dla: bool = False  # the DLA-resident form (export/dla.py): one frame per call, DLA-native layers only
    int8_form: str = "qdq"


def _validate(model, ckpt: dict, options: ExportOptions) -> None:
    if not model.spiking:
        raise UserError("this checkpoint holds an ANN twin; export needs a spiking model")
    if options.layout not in LAYOUTS:
        raise UserError(f"unknown --layout {options.layout!r}; choose one of {', '.join(LAYOUTS)}")
    if options.bn_beyond not in BEYOND_POLICIES:
        raise UserError(f"unknown --bn-beyond {options.bn_beyond!r}; choose one of {', '.join(BEYOND_POLICIES)}")
    if options.timesteps < 1 or options.batch < 1:
        raise UserError(f"--timesteps and --batch must be at least 1, got {options.timesteps} and {options.batch}")
    for name, value in (("--height", options.height), ("--width", options.width)):
        if value is not None and value < MIN_SIZE:
            raise UserError(f"{name} must be at least {MIN_SIZE} pixels, got {value}")
    trained = model.timesteps
    if options.timesteps > trained and options.bn_beyond == "error":
        raise UserError(
            f"--timesteps {options.timesteps} exceeds the {trained} steps the checkpoint was trained with "
            f"(BNTT holds one batch norm per step); export at most {trained} steps per call, or pass "
            f"--bn-beyond last|cycle to say how later steps are normalized"
        )
    if options.timesteps < trained and trained % options.timesteps:
        divisors = [d for d in range(1, trained + 1) if trained % d == 0]
        raise UserError(f"--timesteps {options.timesteps} does not divide the {trained} steps of a frame, so a frame "
                        f"cannot be run in whole calls; choose one of {', '.join(map(str, divisors))}")


def build_graph(model, ckpt: dict, options: ExportOptions, *, weights=None, sha256: str = "") -> tuple[onnx.ModelProto, OnnxOps]:
    """Record the model's time loop as an ONNX model (not yet checked or saved)."""
    _validate(model, ckpt, options)
    data = ckpt.get("data", {})
    height = options.height if options.height is not None else int(data.get("height", 64))
    width = options.width if options.width is not None else int(data.get("width", 64))
    model = model.eval()
    model.set_bn_beyond(options.bn_beyond)
    if options.dla:
        from edge_snn.export.dla import spike_gains, validate_dla_export

        validate_dla_export(model, options)
    weights = weights or _weights_for(model, dla=options.dla, int8_form=options.int8_form)
    g = GraphBuilder(spike_gains=spike_gains(model.lif.threshold) if options.dla else ())
    ops = OnnxOps(g, weights, dla=options.dla)
    T, B = options.timesteps, options.batch
    input_shape = (T, B, model.in_channels, height, width)
    g.add_input(C.INPUT, input_shape)
    g.add_input(C.STATE_IN + C.STEP, (1,), INT64)
    spec = model.state_spec(B, height, width)
    for name, shape in spec.items():
        g.add_input(C.STATE_IN + name, shape)
    x = Sym(g, C.INPUT, input_shape)
    step = Sym(g, C.STATE_IN + C.STEP, (1,), INT64)
    tensors = {name: Sym(g, C.STATE_IN + name, shape) for name, shape in spec.items()}
    with torch.no_grad():
        logits, tensors, done = model.unroll(ops, x, tensors, 0 if options.dla else step, options.layout)
    g.add_output(logits, C.LOGITS)
    g.add_output(step + done if options.dla else done, C.STATE_OUT + C.STEP)  # DLA: the only INT64 node
    for name in spec:
        g.add_output(tensors[name], C.STATE_OUT + name)
    if not options.dla:  # the DLA form drops spike counts (no DLA-native exact reduction)
        counts = [ops.spike_counts[name] for name in model.spiking_layers]
        unsqueezed = [g.node("Unsqueeze", [c.name, g.const([0], np.int64)])[0] for c in counts]
        g.add_output(Sym(g, g.node("Concat", unsqueezed, axis=0)[0], (len(counts),)), C.SPIKE_COUNTS)

    encoding = data.get("encoding", "poisson")
    contract = C.ModelContract(
        format_version=C.FORMAT_VERSION, architecture=model.arch, timesteps=T, timesteps_trained=model.timesteps,
        bn_beyond=options.bn_beyond, layout=options.layout, encoding=encoding, input_shape=input_shape,
        input_range=tuple(data.get("input_range") or default_input_range(encoding)),
        class_names=tuple(data.get("class_names") or [str(i) for i in range(model.num_classes)]),
        leak=model.lif.leak, threshold=model.lif.threshold,
        state=tuple(C.StateTensor(C.STEP, (1,), "int64") for _ in [0]) + tuple(C.StateTensor(n, s) for n, s in spec.items()),
        spike_layers=tuple(model.spiking_layers), precision=weights.precision, checkpoint_sha256=sha256,
        layers=tuple(model.conv_layers(height, width)), binning=data.get("binning"),
        form=C.FORM_DLA if options.dla else C.FORM_STANDARD,
    )
    graph = helper.make_graph(g.nodes, f"{model.arch}_{options.layout}_T{T}", g.inputs, g.outputs, g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edge-snn",
                              producer_version=__import__("edge_snn").__version__)
    proto.ir_version = 8  # readable by the ONNX Runtime and TensorRT releases JetPack 6 ships
    helper.set_model_props(proto, contract.to_metadata())
    return proto, ops


def check_graph(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Full ``onnx.checker`` and strict shape inference; returns the inferred model."""
    onnx.checker.check_model(proto, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)
    graph_inputs = {i.name for i in proto.graph.input}
    leaked = [t.name for t in proto.graph.initializer if t.name in graph_inputs]
    if leaked:
        raise AssertionError(f"initializers listed as graph inputs: {leaked[:5]}")
    return inferred


def save_onnx_atomic(proto: onnx.ModelProto, path: str | os.PathLike) -> None:
    write_bytes_atomic(path, proto.SerializeToString())


def export_checkpoint(checkpoint: str | os.PathLike, output: str | os.PathLike, options: ExportOptions, *, model=None) -> dict:
    """Export a checkpoint file to ``output``; returns a summary (nodes, bytes, contract)."""
    from edge_snn.runtime.files import check_output_file
    from edge_snn.training.checkpoint import open_checkpoint

    check_output_file(output, "--output")
    ckpt = open_checkpoint(checkpoint)
    model = model if model is not None else ckpt.model()
    weights = _weights_for(model, dla=options.dla, int8_form=options.int8_form)
    proto, _ = build_graph(model, ckpt.raw, options, weights=weights, sha256=file_sha256(checkpoint))
    check_graph(proto)
    summary = {"path": str(output), "nodes": len(proto.graph.node), "layout": options.layout,
               "timesteps": options.timesteps, "form": C.FORM_DLA if options.dla else C.FORM_STANDARD}
    if options.dla and getattr(model, "quantized", False):
        from edge_snn.export.dla import write_calibration_cache

        summary.update(write_calibration_cache(proto, weights, output))
    save_onnx_atomic(proto, output)
    summary["bytes"] = Path(output).stat().st_size
    return summary


def _weights_for(model, *, dla: bool = False, int8_form: str = "qdq"):
    """Float weights, or INT8 weights for a Brevitas-quantized model: implicit for the DLA form, else ``int8_form``."""
    names = {m: n for n, m in model.named_modules()}
    if dla and int8_form != "qdq":
        raise UserError(f"--dla and --int8-form {int8_form} do not go together: the DLA form is TensorRT's; "
                        "drop --int8-form (or --dla for an ONNX Runtime CPU model)")
    if getattr(model, "quantized", False) and dla:
        from edge_snn.export.dla import DlaInt8Weights

        return DlaInt8Weights(names)
    if getattr(model, "quantized", False) or int8_form != "qdq":
        return int8_weights(model, names, int8_form)
    return FloatWeights(names)
