"""The static TensorRT/DLA check, on real ONNX graphs built with onnx.helper."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_snn.errors import UserError
from edge_snn.targets import check_model, load_target
from edge_snn.targets import check as check_mod

pytestmark = pytest.mark.runtime

ORIN = ["orin-nano-8gb", "orin-nx-16gb", "agx-orin-64gb"]


def codes(report, level=None):
    return [f.code for f in report.findings if level is None or f.level == level]


def only(report, code):
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, report.format()
    return found[0]


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def init(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


# --- the graphs our exporter makes pass ----------------------------------------------------------------

@pytest.mark.parametrize("target", ORIN + ["desktop-cuda"])
@pytest.mark.parametrize("quantized", [False, True], ids=["fp32", "qdq-int8"])
def test_exported_snn_graph_passes_clean(snn_model, save, target, quantized):
    report = check_model(save(snn_model(quantized=quantized)), load_target(target))
    assert report.ok, report.format()
    assert codes(report, "warning") == [], report.format()
    assert report.table == ("10.15" if target == "desktop-cuda" else "10.3")


def test_fp32_graph_for_int8_target_says_calibration_would_be_needed(snn_model, save):
    report = check_model(save(snn_model()), load_target("orin-nx-16gb"))
    assert only(report, "no-qdq").level == "info"
    assert "no-qdq" not in codes(check_model(save(snn_model()), load_target("orin-nx-16gb"), precision="fp16"))


def test_onnxruntime_target_skips_tensorrt_rules(snn_model, save):
    report = check_model(save(snn_model(opset=23)), load_target("x86-cpu"))
    assert report.ok and "not-tensorrt" in codes(report) and "opset" not in codes(report)


# --- failures the brief names ----------------------------------------------------------------------------

def _uint8_q_model(tiny_model):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="quant_in"),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["y"], name="dequant_in")]
    return tiny_model(nodes, [vi("x", TensorProto.FLOAT, [1, 3, 8, 8])], [vi("y", TensorProto.FLOAT, [1, 3, 8, 8])],
                      [init("s", 0.1), init("zp", 128, np.uint8)])


@pytest.mark.parametrize("target", ORIN)
def test_uint8_quantize_linear_fails_with_a_clear_message(tiny_model, save, target):
    report = check_model(save(_uint8_q_model(tiny_model)), load_target(target))
    assert not report.ok
    f = [f for f in report.errors if f.code == "qdq-uint8"]
    assert {x.node for x in f} == {"quant_in", "dequant_in"}
    assert "UINT8" in f[0].message and "signed INT8" in f[0].message
    # the nonzero zero point is its own error
    assert "qdq-zero-point" in codes(report, "error")


def test_quantize_linear_without_zero_point_is_uint8(tiny_model, save):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "s"], ["y"], name="dq")]
    model = tiny_model(nodes, [vi("x", TensorProto.FLOAT, [4])], [vi("y", TensorProto.FLOAT, [4])], [init("s", 0.1)])
    report = check_model(save(model), load_target("orin-nx-16gb"))
    assert [f.node for f in report.errors if f.code == "qdq-uint8"] == ["q", "dq"]


@pytest.mark.parametrize("target", ORIN)
def test_dynamic_input_shape_fails_naming_the_input(snn_model, save, target):
    model = snn_model()
    dim = model.graph.input[0].type.tensor_type.shape.dim[1]
    dim.Clear()
    dim.dim_param = "batch"
    report = check_model(save(model), load_target(target))
    assert not report.ok
    f = only(report, "dynamic-shape")
    assert "'frames'" in f.message and "'batch'" in f.message and "axis 1" in f.message


def test_unknown_dimension_fails(tiny_model, save):
    model = tiny_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", TensorProto.FLOAT, [None, 3])],
                       [vi("y", TensorProto.FLOAT, [None, 3])])
    report = check_model(save(model), load_target("orin-nano-8gb"))
    assert [f.message.split(" has")[0] for f in report.errors] == ["graph input 'x'", "graph output 'y'"]
    assert "unknown at axis 0" in report.errors[0].message


def test_not_an_onnx_file_is_a_user_error(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("this is a text file, not a protobuf\n")
    with pytest.raises(UserError, match="not an ONNX model"):
        check_model(path, load_target("orin-nano-8gb"))
    with pytest.raises(UserError, match="does not exist"):
        check_model(tmp_path / "missing.onnx", load_target("orin-nano-8gb"))


# --- parser table rules ----------------------------------------------------------------------------------

def test_opset_above_the_parser_range(snn_model, save):
    model = snn_model(opset=21)
    on_jetson = check_model(save(model), load_target("agx-orin-64gb"))
    assert "9..20" in only(on_jetson, "opset").message
    assert check_model(save(model), load_target("desktop-cuda")).ok  # TensorRT 10.15 parses up to opset 24


def test_unsupported_op_and_version_specific_support(tiny_model, save):
    bad = tiny_model([helper.make_node("Det", ["x"], ["y"], name="det")], [vi("x", TensorProto.FLOAT, [2, 3, 3])],
                     [vi("y", TensorProto.FLOAT, [2])])
    assert only(check_model(save(bad), load_target("orin-nano-8gb")), "op-unsupported").node == "det"
    # HannWindow arrived in the parser with 10.4: unsupported on JetPack 6 (10.3), fine on 10.15.
    win = tiny_model([helper.make_node("HannWindow", ["n"], ["w"], name="hann")],
                     [], [vi("w", TensorProto.FLOAT, [16])], [init("n", 16, np.int64)])
    assert "10.4" in only(check_model(save(win), load_target("orin-nano-8gb")), "op-unsupported").message
    assert check_model(save(win), load_target("desktop-cuda")).ok


def test_float64_tensor_fails(tiny_model, save):
    model = tiny_model([helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE, name="to64"),
                        helper.make_node("Relu", ["x64"], ["y"], name="relu")],
                       [vi("x", TensorProto.FLOAT, [4])], [vi("y", TensorProto.DOUBLE, [4])])
    report = check_model(save(model), load_target("orin-nx-16gb"))
    assert "float64" in codes(report, "error")


def test_uint8_inside_the_graph_fails_but_uint8_input_is_fine(tiny_model, save):
    io_ok = tiny_model([helper.make_node("Cast", ["img"], ["x"], to=TensorProto.FLOAT)],
                       [vi("img", TensorProto.UINT8, [1, 3, 4, 4])], [vi("x", TensorProto.FLOAT, [1, 3, 4, 4])])
    assert check_model(save(io_ok, "io"), load_target("orin-nano-8gb")).ok
    inner = tiny_model([helper.make_node("Cast", ["x"], ["u"], to=TensorProto.UINT8, name="to_u8"),
                        helper.make_node("Cast", ["u"], ["y"], to=TensorProto.FLOAT, name="back")],
                       [vi("x", TensorProto.FLOAT, [4])], [vi("y", TensorProto.FLOAT, [4])])
    assert only(check_model(save(inner, "inner"), load_target("orin-nano-8gb")), "uint8").level == "error"


def test_op_on_unsupported_type(tiny_model, save):
    # ONNX allows Clip on int32; TensorRT's parser documents Clip for float types only.
    model = tiny_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="iclip")],
                       [vi("x", TensorProto.INT32, [4])], [vi("y", TensorProto.INT32, [4])],
                       [init("lo", 0, np.int32), init("hi", 6, np.int32)])
    f = only(check_model(save(model), load_target("orin-nano-8gb")), "dtype-unsupported")
    assert f.node == "iclip" and "INT32" in f.message


def test_initializer_listed_as_input_fails(snn_model, save):
    model = snn_model()
    w = next(i for i in model.graph.initializer if i.name == "w1")
    model.graph.input.append(vi("w1", TensorProto.FLOAT, list(w.dims)))
    assert "'w1'" in only(check_model(save(model), load_target("orin-nx-16gb")), "initializer-input").message


def test_resize_mode_not_supported(snn_model, save):
    model = snn_model()
    resize = next(n for n in model.graph.node if n.op_type == "Resize")
    for a in resize.attribute:
        if a.name == "mode":
            a.s = b"cubic"
    f = only(check_model(save(model), load_target("orin-nx-16gb")), "attr-unsupported")
    assert f.node == "resize" and "cubic" in f.message


def test_runtime_axes_are_a_warning(tiny_model, save):
    model = tiny_model([helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="rs", keepdims=0)],
                       [vi("x", TensorProto.FLOAT, [2, 3]), vi("axes", TensorProto.INT64, [1])],
                       [vi("y", TensorProto.FLOAT, [2])])
    assert only(check_model(save(model), load_target("orin-nano-8gb")), "const-input").level == "warning"


def test_node_count_warning(snn_model, save, monkeypatch):
    data = check_mod.trt_data()
    monkeypatch.setitem(data["limits"], "node_count_warning", 10)
    assert "node-count" in codes(check_model(save(snn_model()), load_target("orin-nano-8gb")), "warning")


# --- explicit quantization rules ---------------------------------------------------------------------------

def _set_attr(node, name, value):
    for a in node.attribute:
        if a.name == name:
            a.i = value


def test_conv_weights_quantized_on_wrong_axis(snn_model, save):
    model = snn_model(quantized=True)
    dq = next(n for n in model.graph.node if n.name == "w1_DQ")
    _set_attr(dq, "axis", 1)
    # scales must match the new axis for the model to stay valid ONNX: 3 input channels
    scale = next(i for i in model.graph.initializer if i.name == "w1_s")
    zp = next(i for i in model.graph.initializer if i.name == "w1_z")
    scale.CopyFrom(init("w1_s", np.full(3, 0.01)))
    zp.CopyFrom(init("w1_z", np.zeros(3), np.int8))
    onnx.checker.check_model(model, full_check=True)
    f = only(check_model(save(model), load_target("orin-nx-16gb")), "qdq-axis")
    assert f.node == "w1_DQ" and "axis 0" in f.message


def test_conv_transpose_weights_need_axis_one(snn_model, save):
    model = snn_model(quantized=True)
    dq = next(n for n in model.graph.node if n.name == "w3_DQ")
    _set_attr(dq, "axis", 0)
    for name in ("w3_s", "w3_z"):
        t = next(i for i in model.graph.initializer if i.name == name)
        t.CopyFrom(init(name, np.full(8, 0.01) if name.endswith("s") else np.zeros(8),
                        np.float32 if name.endswith("s") else np.int8))
    f = only(check_model(save(model), load_target("orin-nx-16gb")), "qdq-axis")
    assert "axis 1 for ConvTranspose" in f.message


def test_nonzero_zero_point_and_bad_scale(snn_model, save):
    model = snn_model(quantized=True)
    for t in model.graph.initializer:
        if t.name == "a1_z":
            t.CopyFrom(init("a1_z", 3, np.int8))
        if t.name == "a2_s":
            t.CopyFrom(init("a2_s", -0.5))
    report = check_model(save(model), load_target("orin-nano-8gb"))
    assert {f.node for f in report.errors if f.code == "qdq-zero-point"} == {"a1_Q", "a1_DQ"}
    assert {f.node for f in report.errors if f.code == "qdq-scale"} == {"a2_Q", "a2_DQ"}


def test_per_channel_activation_quantization_fails(tiny_model, save):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q", axis=1),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["y"], name="dq", axis=1)]
    model = tiny_model(nodes, [vi("x", TensorProto.FLOAT, [1, 3, 4, 4])], [vi("y", TensorProto.FLOAT, [1, 3, 4, 4])],
                       [init("s", [0.1, 0.2, 0.3]), init("z", [0, 0, 0], np.int8)])
    assert only(check_model(save(model), load_target("orin-nano-8gb")), "qdq-activation-per-channel").node == "q"


def test_clip_on_a_quantized_tensor_warns(tiny_model, save):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq"),
             helper.make_node("Clip", ["xd", "lo", "hi"], ["y"], name="clip")]
    model = tiny_model(nodes, [vi("x", TensorProto.FLOAT, [4])], [vi("y", TensorProto.FLOAT, [4])],
                       [init("s", 0.1), init("z", 0, np.int8), init("lo", 0.0), init("hi", 6.0)])
    report = check_model(save(model), load_target("orin-nano-8gb"))
    assert report.ok and only(report, "qdq-clip").node == "clip"


def test_conv_with_dq_on_weights_only_runs_in_float(snn_model, save):
    model = snn_model(quantized=True)
    conv = next(n for n in model.graph.node if n.name == "conv1")
    conv.input[0] = "x0"  # bypass the activation Q/DQ
    report = check_model(save(model), load_target("orin-nx-16gb"))
    f = only(report, "qdq-partial")
    assert f.node == "conv1" and f.level == "warning" and "on its weights but not on its input" in f.message


# --- DLA ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("quantized", [False, True])
def test_dla_fallbacks_of_the_snn_graph(snn_model, save, quantized):
    report = check_model(save(snn_model(quantized=quantized)), load_target("agx-orin-64gb"), dla_core=1)
    assert report.ok and report.dla_core == 1
    counts = dict(report.dla_fallback_counts)
    # the LIF comparison, its Cast, the BN lookup by step, the int64 step update, align_corners Resize, ReduceSum,
    # a ConvTranspose with padding 1, and what NVIDIA's DLA matrix lists as reconstruction (Identity) or not
    # exposed through TensorRT (Squeeze, Unsqueeze)
    assert counts == {"Greater": 1, "Cast": 1, "Gather": 1, "Add": 1, "Resize": 1, "ReduceSum": 1,
                      "ConvTranspose": 1, "Identity": 1, "Squeeze": 1, "Unsqueeze": 1}
    greater = next(f for f in report.findings if f.code == "dla-fallback" and f.node == "lif_fire")
    assert "spike comparison `Greater`" in greater.message
    assert "10 of" in only(report, "dla-summary").message
    # Min and Div: "See RFE" in the matrix, listed in the current guide: unconfirmed for TensorRT 10.3, never OK
    unconfirmed = {f.message.split()[1] for f in report.findings if f.code == "dla-unconfirmed"}
    assert {"Div"} <= unconfirmed and "Min" not in counts
    if quantized:  # Q/DQ are "reconstruction" in the matrix: unconfirmed, not free
        assert {"QuantizeLinear", "DequantizeLinear"} <= unconfirmed
    assert "unconfirmed" in only(report, "dla-summary").message
    # dilated convolutions (2 and 12) are inside the DLA's dilation range [1, 32]
    assert not any(f.node in ("conv1", "conv2") for f in report.findings)


def test_dla_comparison_needs_int8_inputs_and_an_immediate_cast(tiny_model, save):
    nodes = [helper.make_node("QuantizeLinear", ["u", "s", "z"], ["uq"], name="q"),
             helper.make_node("DequantizeLinear", ["uq", "s", "z"], ["ud"], name="dq"),
             helper.make_node("Greater", ["ud", "theta"], ["b"], name="fire"),
             helper.make_node("Cast", ["b"], ["spk"], name="cast", to=TensorProto.FLOAT16)]
    model = tiny_model(nodes, [vi("u", TensorProto.FLOAT, [1, 8, 4, 4])], [vi("spk", TensorProto.FLOAT16, [1, 8, 4, 4])],
                       [init("s", 0.05), init("z", 0, np.int8), init("theta", 1.0)])
    path = save(model)
    int8 = check_model(path, load_target("orin-nx-16gb"), dla_core=0, precision="int8")
    # no fallback predicted, but the INT8 comparison ("See RFE" in NVIDIA's matrix, listed in the current guide)
    # and the Q/DQ pair (matrix: reconstruction only) are unconfirmed for TensorRT 10.3: a warning, not OK
    assert int8.dla_fallback_counts == () and only(int8, "dla-summary").level == "warning"
    unconfirmed = {f.node for f in int8.findings if f.code == "dla-unconfirmed"}
    assert unconfirmed == {"fire", "q", "dq"}
    fp16 = check_model(path, load_target("orin-nx-16gb"), dla_core=0, precision="fp16")
    assert dict(fp16.dla_fallback_counts) == {"Greater": 1, "Cast": 1}
    assert "only in INT8" in next(f.message for f in fp16.findings if f.node == "fire")


def test_strict_dla_turns_fallbacks_into_errors(snn_model, save):
    report = check_model(save(snn_model()), load_target("orin-nx-16gb"), strict_dla=True)
    assert not report.ok and report.dla_core == 0
    assert set(codes(report, "error")) == {"dla-fallback", "dla-unconfirmed", "dla-summary"}


def test_dla_rejects_fp32_and_missing_cores(snn_model, save):
    path = save(snn_model())
    assert only(check_model(path, load_target("agx-orin-64gb"), precision="fp32", use_dla=True),
                "dla-precision").level == "warning"
    with pytest.raises(UserError, match="has no DLA"):
        check_model(path, load_target("orin-nano-8gb"), dla_core=0)
    with pytest.raises(UserError, match="cores 0..1"):
        check_model(path, load_target("agx-orin-64gb"), dla_core=2)


def test_dla_conv_limits(tiny_model, save):
    w = np.zeros((4, 4, 3, 3), np.float32)
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="wide", dilations=[40, 40], pads=[40, 40, 40, 40])
    model = tiny_model([conv], [vi("x", TensorProto.FLOAT, [1, 4, 8, 8])], [vi("y", TensorProto.FLOAT, [1, 4, 8, 8])],
                       [init("w", w)])
    report = check_model(save(model), load_target("agx-orin-64gb"), dla_core=0, precision="fp16")
    f = next(f for f in report.findings if f.code == "dla-fallback")
    assert f.node == "wide" and "dilation [40, 40]" in f.message and "[1, 32]" in f.message


def test_report_format_lists_findings_and_verdict(tiny_model, save):
    text = check_model(save(_uint8_q_model(tiny_model)), load_target("orin-nx-16gb")).format()
    assert text.splitlines()[0].startswith("check ") and "TensorRT 10.3" in text
    assert "error   [qdq-uint8] quant_in:" in text
    assert text.splitlines()[-1].startswith("result: FAIL (")
