"""Small real ONNX graphs shaped like edge-snn's exports, built with onnx.helper.

The ``snn_model`` fixture builds a two-timestep spiking graph that uses every op our exported
Spiking-DeepLab/FCN graphs use: Split/Squeeze of the frame stack, dilated Conv
(dilation 2 and 12), a per-timestep BN scale looked up with Gather by an int64
step counter, the LIF step (Mul, Add, Greater, Cast, Sub), AveragePool 3x3/2
pad 1 (count_include_pad=1), ConvTranspose, Div by T, Min, Resize (linear,
align_corners), Slice, Concat, Reshape, ReduceSum, Identity. With
``quantized=True`` every Conv/ConvTranspose gets Q/DQ on its input and weights
(signed int8, zero point 0, per-channel weight scales on the output-channel
axis), as brevitas exports them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _init(name: str, value, dtype=np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


class _Builder:
    def __init__(self, quantized: bool):
        self.quantized = quantized
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(0)

    def const(self, name, value, dtype=np.float32) -> str:
        self.inits.append(_init(name, value, dtype))
        return name

    def node(self, op, inputs, outputs, name, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))
        return outputs[0]

    def qdq_act(self, x: str, tag: str) -> str:
        """Per-tensor INT8 fake-quant of an activation."""
        if not self.quantized:
            return x
        s = self.const(f"{tag}_s", 0.05)
        z = self.const(f"{tag}_z", 0, np.int8)
        q = self.node("QuantizeLinear", [x, s, z], [f"{tag}_q"], f"{tag}_Q")
        return self.node("DequantizeLinear", [q, s, z], [f"{tag}_dq"], f"{tag}_DQ")

    def weight(self, name: str, shape, axis: int, stored_int8: bool) -> str:
        w = self.rng.normal(0, 0.2, size=shape).astype(np.float32)
        if not self.quantized:
            return self.const(name, w)
        channels = shape[axis]
        scale = np.full(channels, 0.01, np.float32)
        s = self.const(f"{name}_s", scale)
        z = self.const(f"{name}_z", np.zeros(channels), np.int8)
        if stored_int8:  # int8 weights + DequantizeLinear
            wq = self.const(f"{name}_int8", np.clip(np.round(w / 0.01), -127, 127), np.int8)
        else:  # float weights + QuantizeLinear -> DequantizeLinear
            wf = self.const(name, w)
            wq = self.node("QuantizeLinear", [wf, s, z], [f"{name}_q"], f"{name}_Q", axis=axis)
        return self.node("DequantizeLinear", [wq, s, z], [f"{name}_dq"], f"{name}_DQ", axis=axis)


def build_snn_model(*, quantized: bool = False, timesteps: int = 2, opset: int = OPSET) -> onnx.ModelProto:
    """A valid (onnx.checker) two-timestep spiking segmentation graph; see the module docstring."""
    b = _Builder(quantized)
    T = timesteps
    frames = helper.make_tensor_value_info("frames", TensorProto.FLOAT, [T, 1, 3, 16, 16])
    step = helper.make_tensor_value_info("step", TensorProto.INT64, [1])
    mem_in = helper.make_tensor_value_info("mem1", TensorProto.FLOAT, [1, 8, 16, 16])

    parts = [f"f{t}" for t in range(T)]
    b.node("Split", ["frames", b.const("split_sizes", [1] * T, np.int64)], parts, "split_time", axis=0)
    x0 = b.node("Squeeze", [parts[0], b.const("axes0", [0], np.int64)], ["x0"], "squeeze_t0")
    # conv1: 3 -> 8, dilation 2 (DeepLab's 256-channel stage)
    w1 = b.weight("w1", [8, 3, 3, 3], axis=0, stored_int8=True)
    c0 = b.node("Conv", [b.qdq_act(x0, "a1"), w1], ["c0"], "conv1", dilations=[2, 2], pads=[2, 2, 2, 2],
                kernel_shape=[3, 3])
    # BNTT: one scale vector per timestep, picked by the step counter
    g0 = b.node("Gather", [b.const("bn_table", np.ones((T, 8))), "step"], ["g0"], "bn_lookup", axis=0)
    g0u = b.node("Unsqueeze", [g0, b.const("axes23", [2, 3], np.int64)], ["g0u"], "bn_unsqueeze")
    bn = b.node("Mul", [c0, g0u], ["bn0"], "bn_scale")
    # LIF step: U = leak * U + I; spike = U > theta; U -= theta * spike
    leak = b.node("Mul", ["mem1", b.const("leak", 0.99)], ["m_leak"], "lif_leak")
    u = b.node("Add", [leak, bn], ["u"], "lif_integrate")
    theta = b.const("theta", 1.0)
    spk_b = b.node("Greater", [u, theta], ["spk_b"], "lif_fire")
    spk = b.node("Cast", [spk_b], ["spk"], "lif_cast", to=TensorProto.FLOAT)
    reset = b.node("Mul", [spk, theta], ["reset"], "lif_reset_amount")
    b.node("Sub", [u, reset], ["mem1_out"], "lif_reset")
    # pool, dilation-12 conv, transposed conv back to full size
    p0 = b.node("AveragePool", [spk], ["p0"], "pool1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                count_include_pad=1)
    w2 = b.weight("w2", [8, 8, 3, 3], axis=0, stored_int8=False)
    c1 = b.node("Conv", [b.qdq_act(p0, "a2"), w2], ["c1"], "conv2", dilations=[12, 12], pads=[12, 12, 12, 12],
                kernel_shape=[3, 3])
    w3 = b.weight("w3", [8, 4, 3, 3], axis=1, stored_int8=True)
    ct = b.node("ConvTranspose", [b.qdq_act(c1, "a3"), w3], ["ct"], "upsample", strides=[2, 2],
                pads=[1, 1, 1, 1], output_padding=[1, 1], kernel_shape=[3, 3])
    d = b.node("Div", [ct, b.const("T", float(T))], ["d"], "mean_over_T")
    mn = b.node("Min", [d, b.const("cap", 10.0)], ["mn"], "cap")
    # bilinear upsampling with align_corners, as the paper's decoder
    r = b.node("Resize", [c1, "", "", b.const("sizes", [1, 8, 16, 16], np.int64)], ["r"], "resize",
               mode="linear", coordinate_transformation_mode="align_corners")
    rs = b.node("Slice", [r, b.const("starts", [0], np.int64), b.const("ends", [4], np.int64),
                          b.const("axes1", [1], np.int64)], ["rs"], "slice")
    cat = b.node("Concat", [mn, rs], ["cat"], "concat", axis=1)
    rh = b.node("Reshape", [cat, b.const("shape", [1, 2, 4, 16, 16], np.int64)], ["rh"], "reshape")
    rsum = b.node("ReduceSum", [rh, b.const("axes_sum", [1], np.int64)], ["rsum"], "sum_halves", keepdims=0)
    b.node("Identity", [rsum], ["logits"], "out")
    b.node("Add", ["step", b.const("one", [1], np.int64)], ["step_out"], "step_next")

    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4, 16, 16]),
               helper.make_tensor_value_info("mem1_out", TensorProto.FLOAT, [1, 8, 16, 16]),
               helper.make_tensor_value_info("step_out", TensorProto.INT64, [1])]
    graph = helper.make_graph(b.nodes, "snn", [frames, step, mem_in], outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edge-snn-tests")
    model.ir_version = 8
    helper.set_model_props(model, {"edge_snn.timesteps": str(T)})
    onnx.checker.check_model(model, full_check=True)
    return model


def build_tiny_model(nodes, inputs, outputs, inits=(), opset: int = OPSET) -> onnx.ModelProto:
    """A checked model from helper-made parts."""
    graph = helper.make_graph(list(nodes), "tiny", list(inputs), list(outputs), list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.fixture
def snn_model():
    """``snn_model(quantized=False, timesteps=2, opset=17)``: see :func:`build_snn_model`."""
    return build_snn_model


@pytest.fixture
def tiny_model():
    """``tiny_model(nodes, inputs, outputs, inits=(), opset=17)``: a checked model from helper-made parts."""
    return build_tiny_model


@pytest.fixture
def save(tmp_path: Path):
    """``save(model, "name")`` writes the model under tmp_path and returns the path."""
    def _save(model: onnx.ModelProto, name: str = "model") -> Path:
        path = tmp_path / f"{name}.onnx"
        onnx.save(model, str(path))
        return path
    return _save
