"""Single-node ONNX graphs run by ONNX Runtime: the reference every sparse kernel is held to."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def ort_single_node(op: str, inputs: dict[str, np.ndarray], constants: dict[str, np.ndarray] | None = None,
                    outputs: int = 1, out_elem: int = TensorProto.FLOAT, **attrs) -> list[np.ndarray]:
    """Run one ``op`` node on ``inputs`` (graph inputs) and ``constants`` (initializers), in that order."""
    constants = constants or {}
    names = list(inputs) + list(constants)
    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
            np.dtype(np.int8): TensorProto.INT8, np.dtype(np.bool_): TensorProto.BOOL}
    graph_inputs = [helper.make_tensor_value_info(n, elem[v.dtype], list(v.shape)) for n, v in inputs.items()]
    outs = [f"y{i}" for i in range(outputs)]
    node = helper.make_node(op, [n if n else "" for n in names], outs, **attrs)
    graph = helper.make_graph([node], "one", graph_inputs, [helper.make_tensor_value_info(o, out_elem, None) for o in outs],
                              [numpy_helper.from_array(v, n) for n, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def reference_conv(x: np.ndarray, weight: np.ndarray, bias=None, *, pads=(0, 0, 0, 0), strides=(1, 1), dilations=(1, 1)):
    """ONNX Runtime's Conv of ``x [N, C, H, W]``."""
    constants = {"w": weight.astype(np.float32)}
    if bias is not None:
        constants["b"] = bias.astype(np.float32)
    kh, kw = weight.shape[2:]
    return ort_single_node("Conv", {"x": x.astype(np.float32)}, constants, pads=list(pads), strides=list(strides),
                           dilations=list(dilations), kernel_shape=[kh, kw])[0]


def taps_inside(x: np.ndarray, kernel, pads, strides, dilations, out_hw) -> int:
    """Brute force: (nonzero input, kernel tap) pairs that land on an output position."""
    c, h, w = x.shape
    total = 0
    for ci, ih, iw in zip(*np.nonzero(x)):
        for kh in range(kernel[0]):
            for kw in range(kernel[1]):
                oh, rh = divmod(ih + pads[0] - kh * dilations[0], strides[0])
                ow, rw = divmod(iw + pads[1] - kw * dilations[1], strides[1])
                total += rh == 0 and rw == 0 and 0 <= oh < out_hw[0] and 0 <= ow < out_hw[1]
    return total
