"""The sparse backend's kernels, each held to ONNX Runtime (or to exact integer arithmetic)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_snn.runtime.backends.sparse import event_conv as E
from edge_snn.runtime.backends.sparse.chain_kernel import run_chain
from edge_snn.runtime.backends.sparse.fusion import find_chains
from edge_snn.runtime.backends.sparse.graph import load_graph
from edge_snn.runtime.backends.sparse.ops import OPS, run_node

from sparse_helpers import ort_single_node, reference_conv, taps_inside

# torch-free: runs in `make test-oldest` too
pytestmark = pytest.mark.runtime


def lists_of(images, pads, dtype=np.float32):
    """The compressed lists of ``images [N, C, H, W]``, each read in place by its address."""
    images = np.ascontiguousarray(images, dtype)
    n, c, h, w = images.shape
    grid = (h + pads[0] + pads[2], w + pads[1] + pads[3])
    starts = np.zeros((n, grid[0] * grid[1] + 1), np.int64)
    idx, vals = np.empty(images.size, np.int32), np.empty(images.size, dtype)
    not_one = np.empty(n, np.int64)
    addresses = np.array([images[i].ctypes.data for i in range(n)], np.int64)
    nnz = E.build_lists(addresses, c, h, w, pads[0], pads[1], grid[0], grid[1], starts, idx, vals, not_one)
    return grid, starts, idx[:nnz], vals[:nnz], not_one


def event(x, weight, bias=None, *, pads=(0, 0, 0, 0), strides=(1, 1), dilations=(1, 1), integer_scale=None, lanes=32):
    """The event-driven conv of ``x [C, H, W]`` (or of images ``[N, C, H, W]`` in one call) -> (output, synaptic events per channel).

    ``lanes``: output channels per weight row (32, or 64: the kernels' wide accumulators)."""
    single = x.ndim == 3
    images = x[None] if single else x
    c_out, c_in, kh, kw = weight.shape
    dtype = np.int8 if integer_scale is not None else np.float32
    grid, starts, idx, vals, not_one = lists_of(images, pads, dtype)
    out_h = (grid[0] - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    out_w = (grid[1] - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.empty((images.shape[0], c_out, out_h, out_w), np.float32)
    scale = np.ones(c_out) if integer_scale is None else integer_scale.astype(np.float64)
    b = np.zeros(c_out) if bias is None else bias.astype(np.float64)
    idx_full = np.concatenate([idx, np.zeros(1, np.int32)])
    vals_full = np.concatenate([vals, np.zeros(1, dtype)])
    events = E.event_conv(starts, idx_full, vals_full, not_one == 0, E.pack_weights(weight, lanes), c_in, kh, kw, grid[1],
                          strides[0], strides[1], dilations[0], dilations[1], scale, b,
                          np.int32 if integer_scale is not None else np.float32, out)
    return (out[0] if single else out), events


def test_lists_hold_each_positions_nonzero_channels_on_the_padded_grid():
    x = np.zeros((3, 2, 2), np.float32)
    x[0, 0, 1] = 1
    x[2, 0, 1] = 1
    x[1, 1, 0] = 0.5
    second = np.zeros_like(x)
    second[1, 1, 1] = 1
    grid, starts, idx, vals, not_one = lists_of(np.stack([x, second]), (1, 1, 1, 1))
    assert grid == (4, 4)
    # padded grid position of (h, w) is (h + 1) * 4 + (w + 1): (0, 1) -> 6, (1, 0) -> 9, (1, 1) -> 10
    assert np.diff(starts[0]).tolist() == [0] * 6 + [2] + [0] * 2 + [1] + [0] * 6
    # the second image's lists follow the first's in idx/vals
    assert starts[1, 0] == starts[0, -1] == 3
    assert np.diff(starts[1]).tolist() == [0] * 10 + [1] + [0] * 5
    assert idx.tolist() == [0, 2, 1, 1] and vals[:3].tolist() == [1, 1, 0.5]  # spikes only (image 2): vals unread
    assert not_one.tolist() == [1, 0]



@pytest.mark.parametrize("width,channels", [(5, 5), (16, 5), (63, 5), (64, 5), (65, 5), (130, 5), (16, 64), (9, 65), (5, 130)])
def test_lists_of_any_row_width_equal_a_plain_scan(width, channels):
    """Work items are bands of BAND_POSITIONS // width rows (20 rows: one band, or bands with a short last one);
    a position's channels are bits of 64-bit words (65 and 130 channels span two and three words)."""
    assert E.BAND_POSITIONS // 130 < 20 and 20 % (E.BAND_POSITIONS // 64) != 0  # several bands, a short last one
    rng = np.random.default_rng(width * channels)
    images = (rng.random((2, channels, 20, width)) < 0.3) * rng.choice([1.0, 0.5, -2.0], (2, channels, 20, width))
    pads = (1, 2, 0, 1)
    grid, starts, idx, vals, not_one = lists_of(images, pads)
    want_idx, want_vals, want_lengths = [], [], []
    for image in images:
        padded = np.pad(image, ((0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
        lengths = []
        for gh in range(grid[0]):
            for gw in range(grid[1]):
                channels = np.flatnonzero(padded[:, gh, gw])
                want_idx += channels.tolist()
                want_vals += padded[channels, gh, gw].tolist()
                lengths.append(channels.size)
        want_lengths.append(lengths)
    assert [np.diff(row).tolist() for row in starts] == want_lengths
    assert idx.tolist() == want_idx and vals.tolist() == want_vals
    assert not_one.tolist() == [int(((image != 0) & (image != 1)).sum()) for image in images]

CASES = {
    "spikes 3x3": dict(shape=(5, 9, 11), c_out=40, k=3, pads=(1, 1, 1, 1), strides=(1, 1), dilations=(1, 1), values="spikes"),
    "dilation 12 on 16x16 (conv8)": dict(shape=(8, 16, 16), c_out=70, k=3, pads=(12, 12, 12, 12), strides=(1, 1), dilations=(12, 12), values="spikes"),
    "signed Poisson, stride 2, asymmetric pads": dict(shape=(3, 10, 13), c_out=33, k=3, pads=(0, 1, 2, 1), strides=(2, 1), dilations=(1, 2), values="signed"),
    "pooled spikes 1x1 with bias": dict(shape=(6, 7, 7), c_out=21, k=1, pads=(0, 0, 0, 0), strides=(1, 1), dilations=(1, 1), values="pooled", bias=True),
    "more than 32 channels, odd map": dict(shape=(40, 5, 3), c_out=65, k=3, pads=(1, 1, 1, 1), strides=(1, 1), dilations=(1, 1), values="spikes", bias=True),
    "150 input channels, pooled": dict(shape=(150, 6, 5), c_out=40, k=3, pads=(1, 1, 1, 1), strides=(1, 1), dilations=(1, 1), values="pooled"),
}


@pytest.mark.parametrize("lanes", [32, 64])
@pytest.mark.parametrize("name", CASES)
def test_event_conv_equals_onnxruntime_and_counts_only_taps_on_the_map(name, lanes):
    case = CASES[name]
    rng = np.random.default_rng(len(name))
    x = (rng.random(case["shape"]) < 0.3).astype(np.float32)
    if case["values"] == "signed":
        x *= rng.choice([-1.0, 1.0], x.shape).astype(np.float32)
    if case["values"] == "pooled":
        x *= (rng.integers(1, 10, x.shape) / np.float32(9)).astype(np.float32)
    weight = rng.standard_normal((case["c_out"], case["shape"][0], case["k"], case["k"])).astype(np.float32)
    bias = rng.standard_normal(case["c_out"]).astype(np.float32) if case.get("bias") else None
    geometry = dict(pads=case["pads"], strides=case["strides"], dilations=case["dilations"])
    got, events = event(x, weight, bias, **geometry, lanes=lanes)
    want = reference_conv(x[None], weight, bias, **geometry)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max() * np.sqrt(x.shape[0]))  # summation order
    assert events == taps_inside(x, (case["k"], case["k"]), case["pads"], case["strides"], case["dilations"], got.shape[1:])


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int64])
def test_weight_rows_and_buffers_start_on_cache_lines(dtype):
    """A 128-byte weight row off a cache line costs two line reads per vector (1.18 vs 1.54 ns a row)."""
    from edge_snn.runtime.backends.sparse.buffers import ALIGNMENT, aligned_empty

    for count in range(1, 200, 7):  # numpy's own alignment of these sizes varies (16, 32, 48 or 0 bytes)
        a = aligned_empty((count, 3), dtype)
        assert a.ctypes.data % ALIGNMENT == 0 and a.shape == (count, 3) and a.dtype == dtype and a.flags.c_contiguous
    weight = np.random.default_rng(0).standard_normal((40, 5, 3, 3)).astype(dtype)
    packed = E.pack_weights(weight)
    assert packed.ctypes.data % ALIGNMENT == 0
    assert np.array_equal(packed.reshape(2, 3, 3, 5, 32)[0, 1, 2, :, :], weight[:32, :, 1, 2].T)  # block 0, tap (1, 2)
    wide = E.pack_weights(weight, 64)  # one block of 64 lanes, channels 40-63 zero
    assert wide.ctypes.data % ALIGNMENT == 0 and wide.shape == (3 * 3 * 5, 64)
    assert np.array_equal(wide.reshape(3, 3, 5, 64)[2, 0, :, :40], weight[:, :, 2, 0].T) and not wide.reshape(3, 3, 5, 64)[..., 40:].any()
    with pytest.raises(ValueError, match="32 or 64"):
        E.pack_weights(weight, 48)


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_a_transposed_block_store_equals_the_scalar_epilogue(dtype):
    """16 positions x 16 channels of a tile into the channel planes: same bits as float32(x * scale + bias) in float64."""
    import numba

    from edge_snn.runtime.backends.sparse.simd import store_transposed

    @numba.njit
    def store(tile, t0, j0, out, n, co, pos, scale, bias):
        store_transposed(tile, t0, j0, out, n, co, pos, scale, bias)

    rng = np.random.default_rng(3)
    tile = (rng.standard_normal((40, 32)) * 100).astype(np.float32) if dtype == np.float32 else \
        rng.integers(-2**20, 2**20, (40, 32)).astype(np.int32)
    scale = np.ones(50) if dtype == np.float32 else rng.random(50) * 1e-3
    bias = rng.standard_normal(50).astype(np.float32).astype(np.float64)
    out = np.full((2, 50, 6, 7), -7.0, np.float32)
    store(tile, 5, 16, out, 1, 30, 9, scale, bias)
    want = np.full_like(out, -7.0)
    for i in range(16):
        for j in range(16):
            want[1, 30 + j].reshape(-1)[9 + i] = np.float32(tile[5 + i, 16 + j] * scale[30 + j] + bias[30 + j])
    assert np.array_equal(out.view(np.uint32), want.view(np.uint32))  # and nothing outside the block is touched


@pytest.mark.parametrize("lanes", [32, 64])
@pytest.mark.parametrize("column", [0, 10])
def test_a_lone_spike_at_the_edge_of_a_row_reaches_every_output_it_touches(column, lanes):
    """The kernel skips a tap's row when all its lists are empty: the first and last list count too."""
    x = np.zeros((3, 5, 11), np.float32)
    x[1, 2, column] = 1
    weight = np.random.default_rng(column).standard_normal((40, 3, 3, 3)).astype(np.float32)
    for strides in ((1, 1), (1, 2)):
        geometry = dict(pads=(1, 1, 1, 1), strides=strides, dilations=(1, 1))
        got, events = event(x, weight, **geometry, lanes=lanes)
        np.testing.assert_allclose(got, reference_conv(x[None], weight, None, **geometry)[0], rtol=1e-6, atol=1e-6)
        assert events == taps_inside(x, (3, 3), (1, 1, 1, 1), strides, (1, 1), got.shape[1:])


def test_list_buffers_smaller_than_the_nonzero_count_are_refused_not_overrun():
    x = np.ones((1, 3, 4, 4), np.float32)
    starts = np.zeros((1, 37), np.int64)
    idx, vals = np.empty(47, np.int32), np.empty(47, np.float32)  # 48 nonzeros
    with pytest.raises(ValueError, match="fewer entries"):
        E.build_lists(np.array([x.ctypes.data], np.int64), 3, 4, 4, 1, 1, 6, 6, starts, idx, vals, np.empty(1, np.int64))


@pytest.mark.parametrize("lanes", [32, 64])
def test_one_call_over_many_images_equals_each_image_alone(lanes):
    """The steps of a layer go through one call; spikes and pooled values mixed, so each image keeps its own add/multiply path."""
    rng = np.random.default_rng(3)
    images = (rng.random((5, 20, 9, 8)) < 0.2).astype(np.float32)
    images[1] *= (rng.integers(1, 10, images[1].shape) / np.float32(9)).astype(np.float32)
    images[3] = 0  # an image with no events at all
    weight = rng.standard_normal((40, 20, 3, 3)).astype(np.float32)
    geometry = dict(pads=(2, 2, 2, 2), dilations=(2, 2))
    together, events = event(images, weight, **geometry, lanes=lanes)
    alone = [event(image, weight, **geometry, lanes=lanes) for image in images]
    assert np.array_equal(together, np.stack([out for out, _ in alone]))
    assert events == sum(n for _, n in alone) and alone[3][1] == 0


@pytest.mark.parametrize("lanes", [32, 64])
def test_integer_event_conv_is_exact_integer_arithmetic_times_the_scales(lanes):
    rng = np.random.default_rng(7)
    x = (rng.random((16, 12, 12)) < 0.2).astype(np.int8) * rng.integers(1, 10, (16, 12, 12)).astype(np.int8)
    weight = rng.integers(-127, 128, (50, 16, 3, 3)).astype(np.int8)
    scale = (rng.random(50) * 0.01).astype(np.float32)
    got, _ = event(x, weight, pads=(1, 1, 1, 1), integer_scale=scale, lanes=lanes)
    exact = reference_conv(x[None].astype(np.float32), weight.astype(np.float32), pads=(1, 1, 1, 1))[0]  # small ints: exact in float32
    assert np.array_equal(exact, np.round(exact))
    want = (exact.astype(np.float64) * scale.astype(np.float64)[:, None, None]).astype(np.float32)
    assert np.array_equal(got, want)


def _chain_graph(tmp_path):
    """BN affine + LIF + spike count, as the exporter writes them, on a [1, 6, 20, 20] current (4 steps of LIF)."""
    f = TensorProto.FLOAT
    nodes, inits = [], [numpy_helper.from_array(np.array(0.99, np.float32), "leak"),
                        numpy_helper.from_array(np.array(1.0, np.float32), "theta"),
                        numpy_helper.from_array(np.linspace(0.5, 2, 6, dtype=np.float32).reshape(1, 6, 1, 1), "scale"),
                        numpy_helper.from_array(np.linspace(-0.1, 0.1, 6, dtype=np.float32).reshape(1, 6, 1, 1), "shift")]
    u = "u0"
    outs = []
    for t in range(4):
        nodes += [helper.make_node("Mul", [f"x{t}", "scale"], [f"s{t}"]), helper.make_node("Add", [f"s{t}", "shift"], [f"i{t}"]),
                  helper.make_node("Mul", [u, "leak"], [f"l{t}"]), helper.make_node("Add", [f"l{t}", f"i{t}"], [f"v{t}"]),
                  helper.make_node("Greater", [f"v{t}", "theta"], [f"g{t}"]), helper.make_node("Cast", [f"g{t}"], [f"o{t}"], to=f),
                  helper.make_node("Mul", [f"o{t}", "theta"], [f"r{t}"]), helper.make_node("Sub", [f"v{t}", f"r{t}"], [f"u{t + 1}"]),
                  helper.make_node("Identity", [f"o{t}"], [f"spikes{t}"]), helper.make_node("ReduceSum", [f"spikes{t}"], [f"n{t}"], keepdims=0)]
        u = f"u{t + 1}"
        outs += [f"spikes{t}", f"n{t}"]
    outs.append(u)
    shape = [1, 6, 20, 20]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info(n, f, shape) for n in ["u0"] + [f"x{t}" for t in range(4)]],
                              [helper.make_tensor_value_info(o, f, None) for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "chain.onnx"
    onnx.save(model, str(path))
    return path


def test_fused_chain_is_bit_identical_to_the_nodes_one_by_one(tmp_path):
    path = _chain_graph(tmp_path)
    graph = load_graph(str(path), run_node)
    (program,) = find_chains(graph)
    assert len(program.nodes) == len(graph.nodes)  # every node fused, the four ReduceSums too
    assert program.row_inputs == ["scale", "shift", "leak", "theta"] and program.length == 400
    rng = np.random.default_rng(0)
    values = {"u0": rng.random((1, 6, 20, 20), dtype=np.float32)}
    values.update({f"x{t}": (rng.random((1, 6, 20, 20), dtype=np.float32) * 2).astype(np.float32) for t in range(4)})
    env = {**graph.constants, **values}
    for node in graph.nodes:
        for name, value in zip(node.output, run_node(node, [env[n] for n in node.input])):
            env[name] = value
    from edge_snn.runtime.backends.sparse.program import ChainUnit, Context

    fused = {**graph.constants, **values}
    ChainUnit(program, 0).run(fused, Context(threads=1))
    for name in graph.outputs:
        assert np.array_equal(fused[name], env[name]), name
    assert sum(fused[f"n{t}"] for t in range(4)) > 0  # the test data fires


@pytest.mark.parametrize("rows, length", [(3, 2500), (70, 40)])  # a row in blocks; many short rows per block
def test_chain_kernel_runs_every_operand_kind(rows, length):
    from edge_snn.runtime.backends.sparse import chain_kernel as K

    rng = np.random.default_rng(1)
    full = [rng.standard_normal((rows, length)).astype(np.float32) for _ in range(2)]
    row_values = rng.standard_normal((2, rows)).astype(np.float32) + 3
    code = np.array([
        (K.SUB, 0, K.ROW, 0, K.FULL, 0),  # r0 = a_row - x
        (K.DIV, 1, K.REGISTER, 0, K.ROW, 1),  # r1 = r0 / b_row
        (K.RELU, 0, K.REGISTER, 1, 0, 0),  # r0 = relu(r1)
        (K.GREATER, 1, K.FULL, 1, K.REGISTER, 0),  # r1 = y > r0
        (K.MUL, 2, K.ROW, 0, K.ROW, 1),  # r2 = a * b (row constant)
        (K.ADD, 3, K.REGISTER, 2, K.REGISTER, 1),
        (K.SUB, 2, K.REGISTER, 3, K.ROW, 1),  # r2 = r3 - b_row
        (K.MAX, 3, K.REGISTER, 2, K.ROW, 0), (K.MIN, 2, K.REGISTER, 3, K.ROW, 1),  # r2 = clip(r2, a_row, b_row)
        (K.STORE, 0, K.REGISTER, 0, 0, 0), (K.STORE, 1, K.REGISTER, 2, 0, 0), (K.SUM, 0, K.REGISTER, 1, 0, 0),
    ], np.int64)
    outs = [np.empty((rows, length), np.float32) for _ in range(2)]
    sums = run_chain(code, 4, np.array([a.ctypes.data for a in full]), row_values, np.array([a.ctypes.data for a in outs]), 1, rows, length)
    a, b = row_values[0][:, None], row_values[1][:, None]
    relu = np.maximum((a - full[0]) / b, 0).astype(np.float32)
    above = (full[1] > relu).astype(np.float32)
    assert np.array_equal(outs[0], relu)
    assert np.array_equal(outs[1], np.minimum(np.maximum(((a * b).astype(np.float32) + above) - b, a), b))
    assert sums[0] == above.sum()


@pytest.mark.parametrize("attrs", [
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
    dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1], count_include_pad=0),
])  # (ceil_mode: ONNX Runtime 1.17 and 1.32 count an overhanging window differently; edge-snn never sets it)
def test_average_pool_of_spikes_is_bit_identical_to_onnxruntime(attrs):
    x = (np.random.default_rng(3).random((2, 3, 13, 10)) < 0.3).astype(np.float32)
    (want,) = ort_single_node("AveragePool", {"x": x}, **attrs)
    (got,) = OPS["AveragePool"](attrs, [x])
    assert np.array_equal(got, want)


@pytest.mark.parametrize("attrs", [
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1),
    dict(kernel_shape=[2, 3], strides=[1, 3], pads=[0, 2, 1, 0], count_include_pad=0),
])
def test_average_pool_of_analog_values_matches_onnxruntime_to_rounding(attrs):
    """Any window order sums spikes exactly; real values agree to float32 rounding of the window sum."""
    x = np.random.default_rng(4).standard_normal((1, 4, 12, 11)).astype(np.float32)
    (want,) = ort_single_node("AveragePool", {"x": x}, **attrs)
    (got,) = OPS["AveragePool"](attrs, [x])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_pooling_many_images_in_one_call_equals_each_alone():
    """A PoolGroup's call: images of two arrays, read in place by address, into one output; each equals its own pooling."""
    from edge_snn.runtime.backends.sparse.pool import pool_geometry, pool_images

    rng = np.random.default_rng(5)
    images = [(rng.random((2, 6, 9, 11)) < 0.3).astype(np.float32), rng.random((2, 6, 9, 11), dtype=np.float32)]
    attrs = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
    geometry = pool_geometry(attrs, images[0].shape)
    out = np.full((4, *geometry[4][1:]), np.nan, np.float32)
    pool_images(images, geometry, out)
    alone = np.concatenate([OPS["AveragePool"](attrs, [x])[0] for x in images])
    assert np.array_equal(out, alone)
    assert np.array_equal(out[:2], ort_single_node("AveragePool", {"x": images[0]}, **attrs)[0])


def test_convs_sharing_a_weight_that_feed_each_other_run_one_by_one(tmp_path):
    """Grouping y2 = Conv(Relu(Conv(x, W)), W) would make the schedule circular: each node keeps its own unit."""
    from edge_snn.runtime.backends.sparse.conv import ConvGroup
    from edge_snn.runtime.backends.sparse.program import Context, build_program

    rng = np.random.default_rng(5)
    weight = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    x = (rng.random((1, 4, 6, 6)) < 0.3).astype(np.float32)
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    nodes = [helper.make_node("Conv", ["x", "w"], ["y1"], **conv), helper.make_node("Relu", ["y1"], ["r"]),
             helper.make_node("Conv", ["r", "w"], ["y2"], **conv)]
    graph = helper.make_graph(nodes, "shared", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
                              [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 4, 6, 6])],
                              [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "shared.onnx")
    loaded = load_graph(str(tmp_path / "shared.onnx"), lambda node, inputs: run_node(node, inputs, "shared.onnx"))
    program = build_program(loaded, [], Context(threads=1, mode="event"))
    assert [len(u.members) for u in program.parts() if isinstance(u, ConvGroup)] == [1, 1]
    got = program.run({"x": x})["y2"]
    want = ort_single_node("Conv", {"x": np.maximum(ort_single_node("Conv", {"x": x}, {"w": weight}, **conv)[0], 0)},
                           {"w": weight}, **conv)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # y2 leaves the graph, so its unit writes each call into a new array: the first result stays as it was
    program.run({"x": np.ones_like(x)})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_the_kernel_cache_is_dropped_when_any_kernel_source_changes(tmp_path):
    """numba checks a cached kernel against its own file only; an edit of simd.py alone must not load stale code."""
    from edge_snn.runtime.backends.sparse.kernel_cache import FINGERPRINT_FILE, drop_stale_cache

    (tmp_path / "simd.py").write_text("LANES = 32\n")
    (tmp_path / "event_conv.py").write_text("def kernel(): pass\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()

    def cached():
        names = ["event_conv.kernel-1.py311.nbi", "event_conv.kernel-1.py311.1.nbc", "event_conv.cpython-311.pyc"]
        for name in names:
            (cache / name).write_bytes(b"x")
        return names

    names = cached()
    assert [p.name for p in drop_stale_cache(tmp_path)] == sorted(names[:2])  # no fingerprint yet: dropped
    assert (cache / names[2]).exists() and (cache / FINGERPRINT_FILE).exists()
    cached()
    assert drop_stale_cache(tmp_path) == []  # same sources: kept
    assert all((cache / n).exists() for n in names)
    (tmp_path / "simd.py").write_text("LANES = 16\n")  # the intrinsics' module alone changes
    assert len(drop_stale_cache(tmp_path)) == 2
    assert drop_stale_cache(tmp_path) == []
    (cache / FINGERPRINT_FILE).unlink()
    (cache / FINGERPRINT_FILE).mkdir()  # an unreadable, unwritable stamp: the caller still never fails
    cached()
    assert len(drop_stale_cache(tmp_path)) == 2
