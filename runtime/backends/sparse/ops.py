"""The ONNX operators edge-snn graphs use, in numpy: the executor's reference semantics for every node.

Each function takes ``(attributes, inputs)`` (inputs in node order, ``None``
for an omitted optional input) and returns the node's outputs. These run the
small nodes (step counters, BN table lookups, reshapes), fold constants at
load, and run anything the fast paths did not claim; the fast paths
(:mod:`.fusion`, :mod:`.conv`) must agree with them, which the tests check.
An operator not listed here is refused at load with :func:`unsupported`.
Convolutions are not here: :mod:`.conv` owns them.
"""

from __future__ import annotations

import numpy as np

from edge_snn.errors import UserError




def _binary(fn):
    return lambda attrs, inputs: (np.asarray(fn(inputs[0], inputs[1])),)


def _div(a, b):
    if np.issubdtype(np.result_type(a, b), np.integer):  # ONNX integer Div truncates toward zero
        q = np.abs(a) // np.abs(b)
        return (np.sign(a) * np.sign(b) * q).astype(np.result_type(a, b))
    return np.divide(a, b)


def _variadic(fn):
    def run(attrs, inputs):
        result = inputs[0]
        for x in inputs[1:]:
            result = fn(result, x)
        return (np.asarray(result),)
    return run


def _cast(attrs, inputs):
    from onnx import helper

    return (inputs[0].astype(helper.tensor_dtype_to_np_dtype(attrs["to"])),)


def _gather(attrs, inputs):
    data, indices = inputs
    return (np.take(data, indices.astype(np.int64), axis=attrs.get("axis", 0)),)


def _reshape(attrs, inputs):
    data, shape = inputs[0], [int(s) for s in inputs[1]]
    if not attrs.get("allowzero", 0):
        shape = [data.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return (data.reshape(shape),)


def _axes(attrs, inputs, position=1):
    if len(inputs) > position and inputs[position] is not None:
        return [int(a) for a in inputs[position]]
    return list(attrs.get("axes", []))


def _reduce_sum(attrs, inputs):
    data = inputs[0]
    axes = _axes(attrs, inputs)
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return (data,)
        axes = list(range(data.ndim))
    keep = bool(attrs.get("keepdims", 1))
    acc = np.float64 if np.issubdtype(data.dtype, np.floating) else data.dtype  # closer to the exact sum than float32
    return (np.asarray(np.sum(data, axis=tuple(axes), keepdims=keep, dtype=acc), dtype=data.dtype),)


def _unsqueeze(attrs, inputs):
    data, axes = inputs[0], _axes(attrs, inputs)
    rank = data.ndim + len(axes)
    out = data
    for a in sorted(a % rank for a in axes):
        out = np.expand_dims(out, a)
    return (out,)


def _squeeze(attrs, inputs):
    axes = _axes(attrs, inputs)
    return (np.squeeze(inputs[0], axis=tuple(axes) if axes else None),)


def _concat(attrs, inputs):
    return (np.concatenate([x for x in inputs if x is not None], axis=attrs["axis"]),)


def _split(attrs, inputs):
    data, axis = inputs[0], attrs.get("axis", 0)
    if len(inputs) > 1 and inputs[1] is not None:
        sizes = [int(s) for s in inputs[1]]
    elif "split" in attrs:
        sizes = list(attrs["split"])
    else:
        parts = attrs.get("num_outputs") or attrs["_outputs"]
        size = -(-data.shape[axis] // parts)
        sizes = [min(size, data.shape[axis] - i * size) for i in range(parts)]
    cuts = np.cumsum(sizes)[:-1]
    return tuple(np.split(data, cuts, axis=axis))


def _mod(attrs, inputs):
    a, b = inputs
    return (np.fmod(a, b) if attrs.get("fmod", 0) else np.mod(a, b),)


def _quantize_linear(attrs, inputs):
    """``saturate(round_half_even(x / scale) + zero_point)``, per tensor or per ``axis``."""
    x, scale = inputs[0], inputs[1]
    zero = inputs[2] if len(inputs) > 2 and inputs[2] is not None else np.zeros((), np.uint8)
    axis = attrs.get("axis", 1)
    scale_b, zero_b = _per_axis(scale, x, axis), _per_axis(zero, x, axis)
    info = np.iinfo(zero.dtype)
    q = np.rint(np.divide(x, scale_b, dtype=np.float32)) + zero_b.astype(np.float32)
    return (np.clip(q, info.min, info.max).astype(zero.dtype),)


def _dequantize_linear(attrs, inputs):
    """``(x - zero_point) * scale`` in float32, per tensor or per ``axis``."""
    x, scale = inputs[0], inputs[1]
    zero = inputs[2] if len(inputs) > 2 and inputs[2] is not None else np.zeros((), x.dtype)
    axis = attrs.get("axis", 1)
    shifted = (x.astype(np.int32) - _per_axis(zero, x, axis).astype(np.int32)).astype(np.float32)
    return (shifted * _per_axis(scale, x, axis).astype(np.float32),)


def _per_axis(values, x, axis):
    values = np.asarray(values)
    if values.ndim == 0 or values.size == 1 and values.ndim <= 1 and x.ndim == 0:
        return values.reshape(())
    shape = [1] * x.ndim
    shape[axis % x.ndim] = values.size
    return values.reshape(shape)


def _average_pool(attrs, inputs):
    from edge_snn.runtime.backends.sparse.pool import pool_geometry, pool_images

    x = np.asarray(inputs[0])
    geometry = pool_geometry(attrs, x.shape)
    out = np.empty(geometry[4], np.float32)
    pool_images([x], geometry, out)
    return (out,)


def _source_coordinates(out_size: int, in_size: int, mode: str, scale: float) -> np.ndarray:
    """Input coordinate of each output index along one axis (ONNX Resize ``coordinate_transformation_mode``)."""
    o = np.arange(out_size, dtype=np.float32)
    scale = np.float32(scale)
    if mode == "align_corners":
        return o * np.float32((in_size - 1) / (out_size - 1)) if out_size > 1 else np.zeros(1, np.float32)
    if mode == "asymmetric":
        return o / scale
    if mode in ("half_pixel", "pytorch_half_pixel"):
        if mode == "pytorch_half_pixel" and out_size == 1:
            return np.zeros(1, np.float32)
        return (o + np.float32(0.5)) / scale - np.float32(0.5)
    raise UserError(f"Resize coordinate_transformation_mode {mode!r} is not supported by the sparse backend "
                    "(align_corners, asymmetric, half_pixel, pytorch_half_pixel are)")


def _linear_axis(x: np.ndarray, axis: int, out_size: int, mode: str, scale: float) -> np.ndarray:
    in_size = x.shape[axis]
    src = np.clip(_source_coordinates(out_size, in_size, mode, scale), 0, in_size - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = (src - lo).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = out_size
    frac = frac.reshape(shape)
    a, b = np.take(x, lo, axis=axis), np.take(x, hi, axis=axis)
    return a + (b - a) * frac


def _resize(attrs, inputs):
    """Linear Resize (separable, one axis at a time) to ``sizes`` or ``scales``; edge-snn uses align_corners."""
    x = inputs[0]
    mode = attrs.get("mode", "nearest")
    transform = attrs.get("coordinate_transformation_mode", "half_pixel")
    if mode != "linear":
        raise UserError(f"Resize mode {mode!r} is not supported by the sparse backend (linear is)")
    sizes = inputs[3] if len(inputs) > 3 and inputs[3] is not None and inputs[3].size else None
    if sizes is None:  # scales given: they, not the rounded sizes, map coordinates
        scales = [float(s) for s in inputs[2]]
        sizes = [int(np.floor(d * s)) for d, s in zip(x.shape, scales)]
    else:
        sizes = [int(s) for s in sizes]
        scales = [s / d for s, d in zip(sizes, x.shape)]
    out = x
    for axis, (size, scale) in enumerate(zip(sizes, scales)):
        if scale != 1.0:
            if axis < x.ndim - 2:
                raise UserError("the sparse backend resizes only the last two axes; re-export the model")
            out = _linear_axis(out, axis, size, transform, scale)
    return (np.ascontiguousarray(out, dtype=x.dtype),)


def _slice(attrs, inputs):
    data, starts, ends = inputs[0], inputs[1], inputs[2]
    axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
    steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for a, b, e, s in zip(axes, starts, ends, steps):
        index[int(a) % data.ndim] = slice(int(b), int(e), int(s))
    return (data[tuple(index)],)


def _clip(attrs, inputs):
    x = inputs[0]
    lo = inputs[1] if len(inputs) > 1 and inputs[1] is not None else None
    hi = inputs[2] if len(inputs) > 2 and inputs[2] is not None else None
    if lo is not None:
        x = np.maximum(x, lo.astype(x.dtype))
    if hi is not None:
        x = np.minimum(x, hi.astype(x.dtype))
    return (np.asarray(x),)


def _constant(attrs, inputs):
    from onnx import numpy_helper

    if "value" not in attrs:
        raise UserError("Constant nodes other than 'value' tensors are not supported by the sparse backend")
    return (numpy_helper.to_array(attrs["value"]),)


OPS = {
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply), "Div": _binary(_div),
    "Greater": _binary(np.greater), "Less": _binary(np.less), "Equal": _binary(np.equal),
    "Min": _variadic(np.minimum), "Max": _variadic(np.maximum), "Mod": _mod,
    "Relu": lambda attrs, inputs: (np.maximum(inputs[0], np.zeros((), inputs[0].dtype)),),
    "Identity": lambda attrs, inputs: (inputs[0],),
    "Cast": _cast, "Gather": _gather, "Reshape": _reshape, "ReduceSum": _reduce_sum, "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze, "Concat": _concat, "Split": _split, "AveragePool": _average_pool, "Resize": _resize,
    "Slice": _slice, "Clip": _clip, "QuantizeLinear": _quantize_linear, "DequantizeLinear": _dequantize_linear, "Constant": _constant,
}
CONVOLUTIONS = ("Conv", "ConvTranspose")


def unsupported(node, source: str) -> UserError:
    return UserError(f"{source}: operator {node.op_type} (node {node.name or '?'}) is not supported by the sparse "
                     f"backend; run this model with --backend onnxruntime")


def run_node(node, inputs: list, source: str = "model") -> tuple:
    """Evaluate one node with the reference implementations above."""
    from edge_snn.runtime.model_file import node_attributes

    fn = OPS.get(node.op_type)
    if fn is None or node.domain not in ("", "ai.onnx"):
        raise unsupported(node, source)
    attrs = node_attributes(node)
    attrs["_outputs"] = len(node.output)
    return fn(attrs, inputs)
