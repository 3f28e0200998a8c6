"""The reference op implementations the sparse backend runs small nodes with, held to ONNX Runtime."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from edge_snn.errors import UserError
from edge_snn.runtime.backends.sparse.ops import run_node

from sparse_helpers import ort_single_node

# torch-free: runs in `make test-oldest` too
pytestmark = pytest.mark.runtime

F, I64, I8 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT8
rng = np.random.default_rng(0)
x4 = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)

CASES = {
    "Resize align_corners 5x7 -> 16x9": ("Resize", {"x": x4}, {"roi": np.zeros(0, np.float32), "scales": np.zeros(0, np.float32),
                                                            "sizes": np.array([2, 3, 16, 9], np.int64)},
                                          dict(mode="linear", coordinate_transformation_mode="align_corners"), F),
    "Resize half_pixel by scales": ("Resize", {"x": x4}, {"roi": np.zeros(0, np.float32), "scales": np.array([1, 1, 2, 1.5], np.float32)},
                                    dict(mode="linear", coordinate_transformation_mode="half_pixel"), F),
    "QuantizeLinear 1/9": ("QuantizeLinear", {"x": (rng.integers(0, 10, (3, 8)) / np.float32(9)).astype(np.float32)},
                           {"s": np.array(1 / 9, np.float32), "z": np.array(0, np.int8)}, {}, I8),
    "QuantizeLinear saturates and rounds half to even": ("QuantizeLinear", {"x": np.array([-300, -2.5, -0.5, 0.5, 1.5, 2.5, 300], np.float32)},
                                                         {"s": np.array(1.0, np.float32), "z": np.array(0, np.int8)}, {}, I8),
    "DequantizeLinear per channel": ("DequantizeLinear", {"x": rng.integers(-128, 128, (4, 3, 2, 2)).astype(np.int8)},
                                     {"s": np.array([0.1, 0.02, 3.0, 1e-3], np.float32), "z": np.zeros(4, np.int8)}, dict(axis=0), F),
    "Gather a BN row": ("Gather", {"table": rng.standard_normal((5, 6)).astype(np.float32)}, {"i": np.array([2], np.int64)}, dict(axis=0), F),
    "ReduceSum over axis 0": ("ReduceSum", {"x": x4}, {"axes": np.array([0], np.int64)}, dict(keepdims=0), F),
    "ReduceSum of everything": ("ReduceSum", {"x": x4}, {}, dict(keepdims=0), F),
    "Mod of step indices": ("Mod", {"a": np.array([0, 5, 19, 23], np.int64)}, {"b": np.array(20, np.int64)}, {}, I64),
    "Min clamps the BN index": ("Min", {"a": np.array([3, 25], np.int64)}, {"b": np.array([19], np.int64)}, {}, I64),
    "Div of int64 truncates": ("Div", {"a": np.array([7, -7, 7, -7], np.int64)}, {"b": np.array([2, 2, -2, -2], np.int64)}, {}, I64),
    "Unsqueeze": ("Unsqueeze", {"x": x4[0, 0]}, {"axes": np.array([0, -1], np.int64)}, {}, F),
    "Reshape with 0 and -1": ("Reshape", {"x": x4}, {"shape": np.array([0, -1, 7], np.int64)}, {}, F),
    "Relu": ("Relu", {"x": x4}, {}, {}, F),
    "Slice of input channels (DLA form)": ("Slice", {"x": x4}, {"s": np.array([1], np.int64), "e": np.array([3], np.int64),
                                                                "a": np.array([1], np.int64)}, {}, F),
    "Clip to [0, 1] (DLA threshold)": ("Clip", {"x": x4 * 3}, {"lo": np.array(0, np.float32), "hi": np.array(1, np.float32)}, {}, F),
}


@pytest.mark.parametrize("name", CASES)
def test_op_equals_onnxruntime(name):
    op, inputs, constants, attrs, elem = CASES[name]
    (want,) = ort_single_node(op, inputs, constants, out_elem=elem, **attrs)
    node = helper.make_node(op, list(inputs) + list(constants), ["y"], **attrs)
    (got,) = run_node(node, list(inputs.values()) + list(constants.values()))
    assert got.dtype == want.dtype and got.shape == want.shape
    if op == "Resize" or name == "ReduceSum of everything":  # interpolation / summation order: float rounding
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:
        assert np.array_equal(got, want)


def test_split_and_concat_round_trip_like_onnxruntime():
    x = rng.standard_normal((6, 2, 3)).astype(np.float32)
    want = ort_single_node("Split", {"x": x}, {"split": np.array([2, 2, 2], np.int64)}, outputs=3, axis=0)
    got = run_node(helper.make_node("Split", ["x", "split"], ["a", "b", "c"], axis=0), [x, np.array([2, 2, 2], np.int64)])
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    (joined,) = run_node(helper.make_node("Concat", ["a", "b", "c"], ["y"], axis=0), list(got))
    assert np.array_equal(joined, x)


def test_an_unknown_operator_is_one_line_naming_it():
    with pytest.raises(UserError, match="operator Softmax .* not supported by the sparse backend.*--backend onnxruntime") as err:
        run_node(helper.make_node("Softmax", ["x"], ["y"], name="head"), [x4])
    assert "\n" not in str(err.value)
