"""Padding-heavy convolutions split into tap blocks for ONNX Runtime's CPU sessions: the same numbers.

Hand-built graphs (no torch): a dilated conv like dl-vgg9's conv8, strided and
biased convs, and ConvInteger, each run by ONNX Runtime whole and split; plus
where the loader applies the rewrite (CPU sessions of files with weights inside).
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_snn.errors import UserError
from edge_snn.runtime.backends.onnxrt import tap_blocks
from edge_snn.runtime.backends.onnxrt.loader import SessionFromOnnx, session_model
from edge_snn.runtime.backends.onnxrt.tap_blocks import TAP_BLOCK, source_node, split_padded_convs
from edge_snn.runtime.conv_taps import inside_pairs, padding_share, tap_bands

pytestmark = pytest.mark.runtime


@pytest.fixture(autouse=True)
def _split_small_convs(monkeypatch):
    """These graphs are small; the work threshold would keep them whole (see the last tests)."""
    monkeypatch.setattr(tap_blocks, "MIN_SKIPPED_MACS", 0)


def test_tap_bands_group_outputs_that_read_the_same_taps():
    # conv8 of dl-vgg9: 3 taps, dilation 12, padding 12, on a 16-wide map: output o reads o-12, o, o+12
    assert tap_bands(16, 16, 3, 1, 12, 12) == [(0, 4, 1, 2), (4, 12, 1, 1), (12, 16, 0, 1)]
    assert padding_share([tap_bands(16, 16, 3, 1, 12, 12)] * 2, (3, 3)) == pytest.approx(0.75)
    # a plain 3x3, pad 1: only the borders lose a tap
    assert tap_bands(5, 5, 3, 1, 1, 1) == [(0, 1, 1, 2), (1, 4, 0, 2), (4, 5, 0, 1)]
    assert padding_share([tap_bands(5, 5, 3, 1, 1, 1)] * 2, (3, 3)) == pytest.approx(1 - 13 * 13 / 225)
    # stride 2: outputs 0..2 read 2o-1+j
    assert tap_bands(5, 3, 3, 2, 1, 1) == [(0, 1, 1, 2), (1, 2, 0, 2), (2, 3, 0, 1)]
    # a map smaller than the dilation: the centre tap only
    assert tap_bands(5, 5, 3, 1, 12, 12) == [(0, 5, 1, 1)]


def test_inside_pairs_count_the_taps_that_read_the_map():
    for args in [(16, 16, 3, 1, 12, 12), (5, 5, 3, 1, 1, 1), (5, 3, 3, 2, 1, 1), (7, 2, 3, 2, 6, 4), (3, 3, 3, 1, 12, 12)]:
        size_in, size_out, k, stride, pad, dilation = args
        brute = sum(0 <= o * stride - pad + j * dilation < size_in for o in range(size_out) for j in range(k))
        assert inside_pairs(*args) == brute, args


def conv_graph(x_shape, convs, *, integer=False, seed=0):
    """``x -> conv_0 -> Relu -> conv_1 ...``; ``convs`` = [(c_out, k, stride, pad, dilation, bias)]."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    name, c_in = "x", x_shape[1]
    for i, (c_out, k, stride, pad, dilation, bias) in enumerate(convs):
        attrs = dict(kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4, dilations=[dilation] * 2)
        if integer:
            inits += [numpy_helper.from_array(rng.integers(0, 256, (c_out, c_in, k, k)).astype(np.uint8), f"w{i}"),
                      numpy_helper.from_array(np.uint8(3), f"xz{i}"), numpy_helper.from_array(np.uint8(128), f"wz{i}")]
            nodes.append(helper.make_node("ConvInteger", [name, f"w{i}", f"xz{i}", f"wz{i}"], [f"y{i}"], name=f"conv{i}", **attrs))
        else:
            inits.append(numpy_helper.from_array(rng.standard_normal((c_out, c_in, k, k)).astype(np.float32), f"w{i}"))
            inputs = [name, f"w{i}"]
            if bias:
                inits.append(numpy_helper.from_array(rng.standard_normal(c_out).astype(np.float32), f"b{i}"))
                inputs.append(f"b{i}")
            nodes.append(helper.make_node("Conv", inputs, [f"y{i}"], name=f"conv{i}", **attrs))
        name, c_in = f"y{i}", c_out
        if not integer and i < len(convs) - 1:
            nodes.append(helper.make_node("Relu", [name], [f"r{i}"], name=f"relu{i}"))
            name = f"r{i}"
    elem = TensorProto.UINT8 if integer else TensorProto.FLOAT
    out_elem = TensorProto.INT32 if integer else TensorProto.FLOAT
    graph = helper.make_graph(nodes, "convs", [helper.make_tensor_value_info("x", elem, list(x_shape))],
                              [helper.make_tensor_value_info(name, out_elem, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)  # onnxruntime 1.17 reads IR <= 9


def run(proto, x):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def blocks_of(proto, conv):
    return [n for n in proto.graph.node if TAP_BLOCK in n.name and n.op_type.startswith("Conv") and source_node(n.name) == conv]


def test_dilated_conv_like_conv8_gives_the_same_output_without_its_padding_taps():
    # conv8 of dl-vgg9 at 64x64 (16x16 map, dilation 12), after a plain 3x3 conv that must stay whole
    proto = conv_graph((1, 8, 16, 16), [(8, 3, 1, 1, 1, False), (16, 3, 1, 12, 12, True)])
    split = split_padded_convs(proto)
    assert not blocks_of(split, "conv0")
    blocks = blocks_of(split, "conv1")
    assert len(blocks) == 9
    assert sorted(tuple(helper.get_attribute_value(a) for a in b.attribute if a.name == "kernel_shape")[0] for b in blocks) \
        == sorted([[2, 2], [2, 1], [2, 2], [1, 2], [1, 1], [1, 2], [2, 2], [2, 1], [2, 2]])
    assert "w1" not in {t.name for t in split.graph.initializer}  # the whole weight is gone, its slices remain
    x = np.random.default_rng(1).standard_normal((1, 8, 16, 16)).astype(np.float32)
    whole, blocked = run(proto, x), run(split, x)
    assert whole.shape == blocked.shape == (1, 16, 16, 16)
    np.testing.assert_allclose(blocked, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape, conv", [
    ((2, 3, 7, 9), (4, 3, 2, 6, 4, True)),     # strided, biased, batch 2, odd sizes
    ((1, 2, 3, 3), (5, 3, 1, 2, 2, False)),    # tiny map: the centre tap and one neighbour
    ((1, 4, 5, 5), (3, 3, 1, 12, 12, True)),   # a map smaller than the dilation: centre tap only
])
def test_other_padding_heavy_shapes_give_the_same_output(shape, conv):
    proto = conv_graph(shape, [conv])
    split = split_padded_convs(proto)
    assert blocks_of(split, "conv0")
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(run(split, x), run(proto, x), rtol=1e-5, atol=1e-5)


def test_conv_integer_blocks_are_bit_identical():
    proto = conv_graph((1, 8, 16, 16), [(16, 3, 1, 12, 12, False)], integer=True)
    split = split_padded_convs(proto)
    assert len(blocks_of(split, "conv0")) == 9
    x = np.random.default_rng(3).integers(0, 256, (1, 8, 16, 16)).astype(np.uint8)
    np.testing.assert_array_equal(run(split, x), run(proto, x))


def test_convs_that_read_little_padding_are_left_alone():
    assert split_padded_convs(conv_graph((1, 4, 32, 32), [(4, 3, 1, 1, 1, True), (4, 3, 1, 2, 2, False)])) is None


def test_convs_whose_padding_is_little_work_are_left_alone(monkeypatch):
    monkeypatch.setattr(tap_blocks, "MIN_SKIPPED_MACS", 50e6)
    # the demo's width-1/8 conv8: 32 -> 128 channels, 16x16, dilation 12: 7 M MACs of padding, split it is slower
    assert split_padded_convs(conv_graph((1, 32, 16, 16), [(128, 3, 1, 12, 12, False)])) is None
    # full width, 256 -> 1024: 453 M MACs of padding per call
    assert len(blocks_of(split_padded_convs(conv_graph((1, 256, 16, 16), [(1024, 3, 1, 12, 12, False)])), "conv0")) == 9


def save(proto, path, *, external=False):
    onnx.save(proto, str(path), save_as_external_data=external, all_tensors_to_one_file=True, location="weights.bin",
              size_threshold=0)
    return str(path)


def test_the_loader_splits_for_cpu_sessions_only_and_never_rewrites_the_file(tmp_path):
    proto = conv_graph((1, 8, 16, 16), [(16, 3, 1, 12, 12, True)])
    path = save(proto, tmp_path / "m.onnx")
    before = (tmp_path / "m.onnx").read_bytes()
    model = session_model(path, ort.__version__, cpu=True)
    assert isinstance(model, bytes) and len(blocks_of(onnx.load_from_string(model), "conv0")) == 9
    assert session_model(path, ort.__version__, cpu=False) == path  # CUDA / TensorRT providers: the file as it is
    assert (tmp_path / "m.onnx").read_bytes() == before
    x = np.random.default_rng(4).standard_normal((1, 8, 16, 16)).astype(np.float32)
    session = SessionFromOnnx(path, providers=["CPUExecutionProvider"])()
    np.testing.assert_allclose(session.run(None, {"x": x})[0], run(proto, x), rtol=1e-5, atol=1e-5)


def test_a_file_with_external_weights_is_handed_over_as_it_is(tmp_path):
    path = save(conv_graph((1, 8, 16, 16), [(16, 3, 1, 12, 12, True)]), tmp_path / "m.onnx", external=True)
    assert (tmp_path / "weights.bin").is_file()
    assert session_model(path, ort.__version__, cpu=True) == path


def test_a_damaged_graph_is_left_for_onnx_runtime_to_refuse_in_one_line(tmp_path):
    proto = conv_graph((1, 8, 16, 16), [(16, 3, 1, 12, 12, True)])
    proto.graph.initializer[0].dims[1] = 5  # the weight's shape no longer matches its data
    path = save(proto, tmp_path / "m.onnx")
    assert session_model(path, ort.__version__, cpu=True) == path
    with pytest.raises(UserError, match="ONNX Runtime cannot load"):
        SessionFromOnnx(path, providers=["CPUExecutionProvider"])()
