"""The CLI wrappers: `edge-snn targets list|show|estimate` and `edge-snn check`, exit codes and output."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

import edge_snn.cli.target_cmds  # noqa: F401  (registers the commands until edge_snn.cli does)
from edge_snn.cli import app

pytestmark = pytest.mark.runtime

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_targets_list_and_show():
    res = run("targets", "list")
    assert res.exit_code == 0
    assert [line.split()[0] for line in res.output.splitlines()] == [
        "agx-orin-64gb", "desktop-cuda", "orin-nano-8gb", "orin-nx-16gb", "x86-cpu"]
    res = run("targets", "show", "orin-nx-16gb")
    assert res.exit_code == 0 and "TensorRT 10.3" in res.output and "2 cores" in res.output


def test_targets_estimate(snn_model, tmp_path):
    path = tmp_path / "snn.onnx"
    path.write_bytes(snn_model().SerializeToString())
    res = run("targets", "estimate", path, "--target", "agx-orin-64gb", "--precision", "fp16")
    assert res.exit_code == 0 and "per call" in res.output and "at fp16" in res.output
    res = run("targets", "estimate", path, "--target", "agx-orin-64gb", "--dla", "--precision", "int8")
    assert res.exit_code == 0 and "DLA" in res.output


def test_check_exit_codes(tiny_model, snn_model, tmp_path):
    clean = tmp_path / "clean.onnx"
    clean.write_bytes(snn_model(quantized=True).SerializeToString())
    res = run("check", clean, "--target", "orin-nano-8gb")
    assert res.exit_code == 0 and "result: OK" in res.output

    q = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
         helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["y"], name="dq")]
    bad = tiny_model(q, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
                     [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
                      numpy_helper.from_array(np.array(0, np.uint8), "z")])
    uint8 = tmp_path / "uint8.onnx"
    uint8.write_bytes(bad.SerializeToString())
    res = run("check", uint8, "--target", "orin-nx-16gb")
    assert res.exit_code == 1 and "qdq-uint8" in res.output and "result: FAIL" in res.output

    res = run("check", clean, "--target", "agx-orin-64gb", "--dla-core", "0")
    assert res.exit_code == 0 and "dla-fallback" in res.output
    res = run("check", clean, "--target", "agx-orin-64gb", "--strict-dla")
    assert res.exit_code == 1


@pytest.mark.parametrize("args, message", [
    (["--target", "jetson-tx2"], "unknown target"),
    (["--target", "orin-nano-8gb", "--dla-core", "0"], "has no DLA"),
    (["--target", "orin-nano-8gb", "--precision", "int4"], "unknown precision"),
])
def test_user_errors_exit_2(snn_model, tmp_path, args, message):
    path = tmp_path / "snn.onnx"
    path.write_bytes(snn_model().SerializeToString())
    res = run("check", path, *args)
    assert res.exit_code == 2 and message in res.output


def test_not_onnx_exits_2(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("not a model")
    res = run("check", path, "--target", "orin-nano-8gb")
    assert res.exit_code == 2 and "not an ONNX model" in res.output


@pytest.mark.parametrize("command", [["check"], ["targets"], ["targets", "list"], ["targets", "show"],
                                     ["targets", "estimate"]])
def test_help(command):
    res = run(*command, "--help")
    assert res.exit_code == 0 and "Usage" in res.output
