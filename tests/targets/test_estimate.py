"""Roofline floor: operation and byte counts by hand on tiny graphs, and the bound they imply."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_snn.errors import UserError
from edge_snn.targets import estimate_floor, load_target

pytestmark = pytest.mark.runtime


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def w(name, shape):
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def conv_model(tiny_model, c_in=3, c_out=4, hw=8):
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])
    return tiny_model([conv], [vi("x", [1, c_in, hw, hw])], [vi("y", [1, c_out, hw, hw])],
                      [w("w", [c_out, c_in, 3, 3])])


def test_conv_counts_and_memory_bound_floor(tiny_model, save):
    nano = load_target("orin-nano-8gb")
    e = estimate_floor(save(conv_model(tiny_model)), nano, "fp16")
    # MACs = N * C_out * H_out * W_out * C_in * k_h * k_w = 1 * 4 * 8 * 8 * 3 * 3 * 3
    assert e.macs == 6912 and e.ops == 2 * 6912
    # weights 4*3*3*3 at 2 bytes; activations: read x (192) + write y (256) at 2 bytes
    assert e.weight_bytes == 216 and e.activation_bytes == 896
    assert e.compute_s == pytest.approx(13824 / 16.75e12)
    assert e.memory_s == pytest.approx(1112 / 102e9)
    assert e.bound == "memory" and e.floor_s == e.memory_s
    assert (e.engine, e.precision, e.timesteps) == ("gpu", "fp16", None)


def test_large_conv_is_compute_bound_at_int8(tiny_model, save):
    big = save(conv_model(tiny_model, c_in=256, c_out=256, hw=32))
    e = estimate_floor(big, load_target("orin-nano-8gb"), "int8")
    assert e.macs == 256 * 32 * 32 * 256 * 9
    assert e.weight_bytes == 256 * 256 * 9  # one byte per INT8 weight
    assert e.bound == "compute" and e.floor_s == pytest.approx(e.ops / 33.5e12)


def test_conv_transpose_counts_from_the_input_side(tiny_model, save):
    ct = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", strides=[2, 2])
    model = tiny_model([ct], [vi("x", [1, 2, 4, 4])], [vi("y", [1, 3, 9, 9])], [w("w", [2, 3, 3, 3])])
    e = estimate_floor(save(model), load_target("agx-orin-64gb"), "fp32")
    # every input pixel (1*2*4*4) is scattered through C_out/g * 3 * 3 = 27 weights
    assert e.macs == 32 * 27


def test_gemm_elementwise_free_and_move_ops(tiny_model, save):
    nodes = [helper.make_node("Gemm", ["a", "b"], ["g"], name="fc"),
             helper.make_node("Relu", ["g"], ["r"], name="act"),
             helper.make_node("Reshape", ["r", "shape"], ["f"], name="flat"),
             helper.make_node("Concat", ["f", "f"], ["y"], name="dup", axis=0)]
    model = tiny_model(nodes, [vi("a", [2, 5])], [vi("y", [12])],
                       [w("b", [5, 3]), numpy_helper.from_array(np.array([6], np.int64), "shape")])
    e = estimate_floor(save(model), load_target("desktop-cuda"), "fp32")
    assert e.macs == 2 * 3 * 5
    assert e.ops == 2 * 30 + 6  # Relu: one op per output; Reshape free; Concat moves only
    assert dict(e.ops_by_type) == {"Gemm": 60, "Relu": 6}
    # bytes at 4: Gemm reads a (10) writes g (6); Relu 6 + 6; Concat reads f twice (12) writes y (12)
    assert e.activation_bytes == 4 * (10 + 6 + 6 + 6 + 12 + 12)
    # weights at 4 bytes per float, the int64 shape at 8
    assert e.weight_bytes == 15 * 4 + 8


def test_per_call_and_per_timestep_from_metadata(snn_model, save):
    e = estimate_floor(save(snn_model(quantized=True)), load_target("orin-nx-16gb"))
    assert e.timesteps == 2 and e.precision == "int8"
    assert e.per_timestep_s == pytest.approx(e.floor_s / 2)
    text = e.format()
    assert "per call" in text and "T=2" in text and "per timestep" in text and not e.uncounted


def test_dla_and_cpu_engines(snn_model, save):
    path = save(snn_model())
    agx = load_target("agx-orin-64gb")
    dla = estimate_floor(path, agx, "int8", engine="dla")
    assert dla.peak_ops_per_s == pytest.approx(26.25e12)
    assert dla.bandwidth_bytes_per_s == agx.memory.bandwidth_bytes_per_s
    cpu = estimate_floor(path, load_target("x86-cpu"))
    assert (cpu.engine, cpu.precision) == ("cpu", "fp32")
    with pytest.raises(UserError, match="no DLA"):
        estimate_floor(path, load_target("orin-nano-8gb"), "int8", engine="dla")
    with pytest.raises(UserError, match="FP16 or INT8"):
        estimate_floor(path, agx, "fp32", engine="dla")
    with pytest.raises(UserError, match="unknown precision"):
        estimate_floor(path, agx, "int4")


def test_bad_timesteps_metadata_is_a_user_error(snn_model, save):
    model = snn_model()
    helper.set_model_props(model, {"edge_snn.timesteps": "twenty"})
    with pytest.raises(UserError, match="edge_snn.timesteps"):
        estimate_floor(save(model), load_target("orin-nx-16gb"))
