"""TensorRT calibration caches (the DLA form's INT8 scales) and how the build takes them; torch-free."""

from __future__ import annotations

import pytest

from edge_snn.errors import UserError
from edge_snn.runtime.backends.trt.calibration import cache_path, read_calibration_cache

pytestmark = pytest.mark.runtime


def test_the_cache_text_is_what_nvidias_translator_writes():
    from edge_snn.runtime.backends.trt.calibration import calibration_cache, float_hex

    assert float_hex(1.0) == "3f800000" and float_hex(1 / 127) == "3c010204"
    text = calibration_cache({"b": 0.5, "a": 1.0}, version="8600")
    assert text == "TRT-8600-EntropyCalibration2\na: 3f800000\nb: 3f000000\n"
    with pytest.raises(UserError, match="not a TensorRT calibration cache"):
        read_calibration_cache("a: 3f800000\n")


def test_build_takes_int8_from_a_calibration_cache():
    from edge_snn.runtime.backends.trt.build import resolve_flags

    assert resolve_flags("int8", has_qdq=False, dla_core=0, has_cache=True) == {"fp16": True, "int8": True, "tf32": True}
    with pytest.raises(UserError, match="with --dla for the DLA's calibration cache"):
        resolve_flags("int8", has_qdq=False, dla_core=0)


def test_the_cache_sits_next_to_the_model(tmp_path):
    assert cache_path(tmp_path / "m.onnx") == tmp_path / "m.calib.cache"


def test_a_damaged_cache_line_is_a_user_error():
    with pytest.raises(UserError, match="is not '<tensor>: <hex float>'"):
        read_calibration_cache("TRT-10300-EntropyCalibration2\nx: zz\n")


def _plain_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_build_int8_reads_the_cache_next_to_the_model_before_tensorrt_is_needed(tmp_path, monkeypatch):
    import sys

    from edge_snn.runtime.backends.trt import build as B

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    onnx_path = _plain_onnx(tmp_path / "m.onnx")
    with pytest.raises(UserError, match="int8 precision needs a quantized graph"):  # no cache: refused
        B.build_engine(onnx_path, tmp_path / "m.engine", precision="int8", dla_core=0)
    cache_path(onnx_path).write_text("not a cache\n")
    with pytest.raises(UserError, match="not a TensorRT calibration cache"):  # damaged: said before TensorRT
        B.build_engine(onnx_path, tmp_path / "m.engine", precision="int8", dla_core=0)
    cache_path(onnx_path).write_text("TRT-10300-EntropyCalibration2\nx: 3f800000\n")
    with pytest.raises(UserError, match="TensorRT is not installed"):  # a good cache: on to TensorRT
        B.build_engine(onnx_path, tmp_path / "m.engine", precision="int8", dla_core=0)
