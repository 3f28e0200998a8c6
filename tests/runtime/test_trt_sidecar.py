"""The TensorRT engine sidecar: what it records, how a stale engine is caught, what the build refuses.

All of this is plain Python: it runs without TensorRT, CUDA or a GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from edge_snn.errors import UserError
from edge_snn.runtime.backends.trt import build as B
from edge_snn.runtime.backends.trt import sidecar as S
from edge_snn.runtime.files import file_sha256
from edge_snn.runtime.contract import ModelContract, StateTensor

pytestmark = pytest.mark.runtime

TRT_HINT = ("TensorRT is not installed: on a Jetson it comes with JetPack (sudo apt install python3-libnvinfer, "
            "and a venv made with --system-site-packages); on an x86-64 PC pip install 'edge-snn[tensorrt]'")


def contract() -> ModelContract:
    return ModelContract(
        format_version=1, architecture="dl-vgg9", timesteps=4, timesteps_trained=8, bn_beyond="error",
        layout="time-major", encoding="events", input_shape=(4, 1, 2, 16, 16), input_range=(0.0, float("inf")),
        class_names=("a", "b", "c", "d"), leak=0.99, threshold=1.0,
        state=(StateTensor("step", (1,), "int64"), StateTensor("conv1", (1, 8, 16, 16))),
        spike_layers=("conv1",), precision="fp32", checkpoint_sha256="ab" * 32,
    )


def tiny_onnx(path, *, qdq: bool = False, metadata: dict | None = None):
    """x -> Relu -> y, or x -> QuantizeLinear -> DequantizeLinear -> y."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    if qdq:
        inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]), helper.make_tensor("z", TensorProto.INT8, [], [0])]
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                 helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    else:
        inits, nodes = [], [helper.make_node("Relu", ["x"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "tiny", [x], [y], inits), opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, metadata or {})
    onnx.save(model, str(path))
    return path


def sidecar_for(tmp_path, engine_bytes=b"engine-bytes", **overrides) -> tuple:
    engine = tmp_path / "model.engine"
    engine.write_bytes(engine_bytes)
    fields = dict(onnx_path=tmp_path / "model.onnx", engine_path=engine, model_sha256="11" * 32,
                  engine_sha256=file_sha256(engine), trt_version="10.3.0", gpu_name="Orin",
                  compute_capability=(8, 7), flags={"precision": "fp16", "dla_core": None, "gpu_fallback": True},
                  metadata=contract().to_metadata(), build_seconds=12.5)
    fields.update(overrides)
    sidecar = S.make_sidecar(**fields)
    S.write_sidecar(engine, sidecar)
    return engine, sidecar


HERE = dict(trt_version="10.3.0", gpu_name="Orin", compute_capability="8.7")


# --- the sidecar file --------------------------------------------------------
def test_sidecar_sits_next_to_the_engine_and_round_trips(tmp_path):
    engine, written = sidecar_for(tmp_path)
    assert S.sidecar_path(engine) == tmp_path / "model.engine.json"
    read = S.read_sidecar(engine)
    assert read == written
    assert read["tensorrt_version"] == "10.3.0"
    assert read["gpu"] == {"name": "Orin", "compute_capability": "8.7"}
    assert read["flags"]["precision"] == "fp16"
    assert read["engine_sha256"] == file_sha256(engine)
    assert read["model"] == "model.onnx" and read["model_sha256"] == "11" * 32
    assert read["build_seconds"] == 12.5 and read["built_at"].endswith("+00:00")
    assert read["metadata"] == contract().to_metadata()


@pytest.mark.parametrize("damage, says", [
    (None, "has no sidecar"),
    ("{not json", "unreadable"),
    (json.dumps({"format": "something-else"}), "not an edge-snn engine sidecar"),
    (json.dumps({"format": S.SIDECAR_FORMAT, "sidecar_version": 99}), "newer edge-snn"),
    (json.dumps({"format": S.SIDECAR_FORMAT, "sidecar_version": 1, "gpu": {}}), "lacks engine_sha256"),
])
def test_a_missing_or_damaged_sidecar_says_to_rebuild(tmp_path, damage, says):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x")
    if damage is not None:
        S.sidecar_path(engine).write_text(damage)
    with pytest.raises(UserError, match=says) as info:
        S.read_sidecar(engine)
    assert "edge-snn" in str(info.value)


# --- staleness ---------------------------------------------------------------
def test_an_engine_on_the_machine_it_was_built_for_passes(tmp_path):
    engine, sidecar = sidecar_for(tmp_path)
    assert S.engine_mismatches(sidecar, **HERE, engine_sha256=file_sha256(engine)) == []
    S.check_engine_compatible(sidecar, **HERE, engine_sha256=file_sha256(engine), engine_path=engine)


@pytest.mark.parametrize("field, value, says", [
    ("trt_version", "10.7.0", "TensorRT 10.3.0, this is TensorRT 10.7.0"),
    ("gpu_name", "NVIDIA H100 80GB HBM3", "GPU 'Orin', this is 'NVIDIA H100 80GB HBM3'"),
    ("compute_capability", (9, 0), "compute capability 8.7, this GPU is 9.0"),
    ("engine_sha256", "00" * 32, "engine file changed"),
])
def test_each_stale_field_is_named_and_the_fix_given(tmp_path, field, value, says):
    engine, sidecar = sidecar_for(tmp_path)
    here = {**HERE, "engine_sha256": file_sha256(engine), field: value}
    problems = S.engine_mismatches(sidecar, **here)
    assert len(problems) == 1 and says in problems[0]
    with pytest.raises(UserError, match="edge-snn build model.onnx -o model.engine") as info:
        S.check_engine_compatible(sidecar, **here, engine_path=engine)
    assert says in str(info.value)


def test_every_mismatch_is_listed_at_once(tmp_path):
    engine, sidecar = sidecar_for(tmp_path)
    problems = S.engine_mismatches(sidecar, trt_version="10.7", gpu_name="X", compute_capability="9.0",
                                   engine_sha256="0")
    assert len(problems) == 4


def test_an_edited_engine_file_no_longer_matches_its_sidecar(tmp_path):
    engine, sidecar = sidecar_for(tmp_path)
    engine.write_bytes(b"engine-bytes, then edited")
    assert "changed" in S.engine_mismatches(sidecar, **HERE, engine_sha256=file_sha256(engine))[0]


# --- the contract of an engine -----------------------------------------------
def test_engine_contract_comes_from_the_sidecar_metadata(tmp_path):
    from edge_snn.runtime.backends.trt import engine_contract
    from edge_snn.runtime.model_file import load_contract

    engine, _ = sidecar_for(tmp_path)
    assert engine_contract(engine) == contract()
    assert load_contract(str(engine)) == contract()  # the session's dispatch for .engine files


def test_engine_contract_errors_are_actionable(tmp_path):
    from edge_snn.runtime.backends.trt import engine_contract

    with pytest.raises(UserError, match="does not exist; build one with `edge-snn build"):
        engine_contract(tmp_path / "absent.engine")
    engine, _ = sidecar_for(tmp_path, metadata={"producer": "someone else"})
    with pytest.raises(UserError, match="no edge-snn metadata"):
        engine_contract(engine)


# --- what a build will and will not do -----------------------------------------
def test_onnx_summary_reads_metadata_and_finds_qdq(tmp_path):
    plain = tiny_onnx(tmp_path / "plain.onnx", metadata=contract().to_metadata())
    quant = tiny_onnx(tmp_path / "quant.onnx", qdq=True)
    assert B.read_onnx_summary(plain) == (contract().to_metadata(), False)
    assert B.read_onnx_summary(quant)[1] is True
    with pytest.raises(UserError, match="does not exist"):
        B.read_onnx_summary(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00not a protobuf")
    with pytest.raises(UserError, match="not an ONNX file"):
        B.read_onnx_summary(tmp_path / "junk.onnx")


@pytest.mark.parametrize("precision, qdq, flags", [
    ("fp32", False, {"fp16": False, "int8": False, "tf32": False}),
    ("fp16", False, {"fp16": True, "int8": False, "tf32": True}),
    ("int8", True, {"fp16": False, "int8": True, "tf32": True}),
    ("best", True, {"fp16": True, "int8": True, "tf32": True}),
    ("best", False, {"fp16": True, "int8": False, "tf32": True}),  # no scales: INT8 would need a calibrator
])
def test_precision_to_builder_flags(precision, qdq, flags):
    assert B.resolve_flags(precision, has_qdq=qdq, dla_core=None) == flags


def test_int8_on_an_unquantized_graph_is_refused_with_the_way_out():
    with pytest.raises(UserError, match="no QuantizeLinear/DequantizeLinear.*--fp16"):
        B.resolve_flags("int8", has_qdq=False, dla_core=None, model_name="m.onnx")


def test_dla_needs_a_reduced_precision_and_unknown_precisions_are_refused():
    with pytest.raises(UserError, match="DLA cores run FP16 or INT8"):
        B.resolve_flags("fp32", has_qdq=False, dla_core=0)
    assert B.resolve_flags("fp16", has_qdq=False, dla_core=1)["fp16"]
    with pytest.raises(UserError, match="unknown precision 'int4'"):
        B.resolve_flags("int4", has_qdq=False, dla_core=None)


@pytest.mark.parametrize("defaults, expected", [
    (SimpleNamespace(precision="int8", build_flags=("--fp16", "--int8")), ("best", None)),
    (SimpleNamespace(precision="int8", build_flags=()), ("int8", None)),
    (SimpleNamespace(precision="fp16", build_flags=["--fp16", "--dla-core=1"]), ("fp16", 1)),
    (SimpleNamespace(precision="fp16", build_flags=["--useDLACore", "0"]), ("fp16", 0)),
    (None, ("fp32", None)),
])
def test_target_defaults_choose_the_precision(defaults, expected):
    assert B.target_build_defaults(SimpleNamespace(defaults=defaults)) == expected


def test_shipped_target_profiles_resolve():
    from edge_snn.targets import load_target

    assert B.target_build_defaults(load_target("orin-nx-16gb")) == ("best", None)
    assert B.target_build_defaults(load_target("desktop-cuda")) == ("fp16", None)


def test_timing_cache_defaults_to_a_file_next_to_the_engine(tmp_path):
    assert B.default_timing_cache(tmp_path / "out" / "m.engine") == (tmp_path / "out" / ".edge-snn-timing.cache").resolve()


# --- without TensorRT ------------------------------------------------------------
@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError


def test_build_without_tensorrt_says_how_to_install_it(tmp_path, no_tensorrt):
    onnx_path = tiny_onnx(tmp_path / "m.onnx", metadata=contract().to_metadata())
    with pytest.raises(UserError) as info:
        B.build_engine(onnx_path, tmp_path / "m.engine", precision="fp16")
    assert info.value.format_message() == TRT_HINT
    assert not (tmp_path / "m.engine").exists()


def test_runner_without_tensorrt_says_how_to_install_it(tmp_path, no_tensorrt):
    from edge_snn.runtime import make_runner

    engine, _ = sidecar_for(tmp_path)
    runner = make_runner(str(engine))  # auto: .engine -> tensorrt, nothing imported yet
    assert runner.name == "tensorrt"
    with pytest.raises(UserError) as info:
        runner.activate()
    assert info.value.format_message() == TRT_HINT


def test_importing_the_backend_does_not_import_tensorrt_cuda_or_torch():
    """The backend's own imports are checked, not ``sys.modules``: cuda-python installs an import
    redirector (a .pth file) that may put ``cuda`` into ``sys.modules`` before edge-snn runs at all."""
    code = textwrap.dedent("""
        import sys
        asked = []
        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorrt", "cuda", "torch", "brevitas"):
                    asked.append(name)
                    raise ImportError(f"{name} refused")
        sys.meta_path.insert(0, Refuse())
        import edge_snn.runtime.backends.trt, edge_snn.runtime.backends.trt.build, edge_snn.cli.build_cmds
        import edge_snn.runtime.backends.trt.runner, edge_snn.runtime.backends.trt.loader
        import edge_snn.runtime.backends.trt.cuda, edge_snn.runtime.backends.trt.sidecar
        print(sorted(set(asked)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class FakeCudart:
    """cuda-python's runtime module as a CUDA 13 binding sees a CUDA 12.6 driver: every call fails."""

    class cudaError_t:
        cudaSuccess, cudaErrorInsufficientDriver = 0, 35

    def __init__(self, *, raises: bool = False):
        self.raises = raises

    def cudaGetDevice(self):
        if self.raises:
            raise RuntimeError("Function \"cudaGetDevice\" not found")
        return (35, 0)

    def cudaGetErrorName(self, err):
        return (0, b"cudaErrorInsufficientDriver")

    def cudaDriverGetVersion(self):
        return (0, 12060)

    def cudaRuntimeGetVersion(self):
        return (35, 0)


@pytest.mark.parametrize("raises", [False, True])
def test_a_driver_bindings_mismatch_is_one_line_naming_both_versions(monkeypatch, raises):
    from edge_snn.runtime.backends.trt import cuda as CU

    monkeypatch.setattr(CU, "import_cudart", lambda: FakeCudart(raises=raises))
    monkeypatch.setattr(CU, "bindings_version", lambda: "13.0.1")
    with pytest.raises(UserError) as info:
        CU.gpu_info()
    message = str(info.value)
    assert "\n" not in message and "cudaGetDevice" in message
    assert "CUDA driver 12.6" in message and "cuda-python 13.0.1" in message
    assert "pip install 'cuda-python>=12.0,<13'" in message
    assert ("not found" if raises else "cudaErrorInsufficientDriver") in message


def test_build_reports_the_mismatch_as_a_user_error_not_a_traceback(tmp_path, monkeypatch):
    from edge_snn.runtime.backends.trt import cuda as CU

    monkeypatch.setattr(CU, "import_cudart", lambda: FakeCudart())
    monkeypatch.setattr(CU, "bindings_version", lambda: "13.0.1")
    monkeypatch.setattr(B, "import_tensorrt", lambda: SimpleNamespace(__version__="10.3.0"))
    onnx_path = tiny_onnx(tmp_path / "m.onnx", metadata=contract().to_metadata())
    with pytest.raises(UserError, match="no usable CUDA device: CUDA error in cudaGetDevice.*CUDA driver 12.6"):
        B.build_engine(onnx_path, tmp_path / "m.engine", precision="fp16")
    assert not (tmp_path / "m.engine").exists()


def test_capture_is_thread_local_and_a_failure_is_cleared_with_cuda_get_last_error():
    from edge_snn.runtime.backends.trt import cuda as CU

    calls = []
    rt = SimpleNamespace(
        cudaError_t=SimpleNamespace(cudaSuccess=0),
        cudaStreamCaptureMode=SimpleNamespace(cudaStreamCaptureModeGlobal="global",
                                              cudaStreamCaptureModeThreadLocal="thread-local"),
        cudaStreamBeginCapture=lambda stream, mode: calls.append(("begin", mode)) or (0,),
        cudaGetLastError=lambda: calls.append(("last-error",)) or (0,),
    )
    runtime = CU.CudaRuntime.__new__(CU.CudaRuntime)
    runtime.rt = rt
    runtime.begin_capture(7)
    runtime.clear_error()
    assert calls == [("begin", "thread-local"), ("last-error",)]


def test_a_sidecar_records_the_board(tmp_path):
    from edge_snn.runtime.platform_info import Module

    engine, sidecar = sidecar_for(tmp_path, module=Module("NVIDIA Jetson Orin NX", 16 << 30))
    assert S.read_sidecar(engine)["device"] == {"model": "NVIDIA Jetson Orin NX", "memory_bytes": 16 << 30}
    assert sidecar["sidecar_version"] == 2


# --- the CLI ---------------------------------------------------------------------
@pytest.fixture
def cli():
    from edge_snn.cli import app, build_cmds  # noqa: F401 - registers `build`

    return lambda *args: CliRunner().invoke(app, list(args))


def test_build_help(cli):
    result = cli("build", "--help")
    assert result.exit_code == 0
    for option in ("--target", "--fp16", "--int8", "--best", "--dla-core", "--output"):
        assert option in result.output


def test_build_refuses_two_precisions(cli, tmp_path):
    onnx_path = tiny_onnx(tmp_path / "m.onnx")
    result = cli("build", str(onnx_path), "--fp16", "--int8")
    assert result.exit_code == 2
    assert "pick one of --fp16, --int8, --best" in result.output


def test_build_without_tensorrt_exits_2_with_the_hint(cli, tmp_path, no_tensorrt):
    onnx_path = tiny_onnx(tmp_path / "m.onnx", metadata=contract().to_metadata())
    result = cli("build", str(onnx_path), "--target", "desktop-cuda")
    assert result.exit_code == 2
    assert "TensorRT is not installed" in result.output


def test_build_int8_of_an_unquantized_graph_fails_before_tensorrt_is_needed(cli, tmp_path, no_tensorrt):
    onnx_path = tiny_onnx(tmp_path / "m.onnx")
    result = cli("build", str(onnx_path), "--int8")
    assert result.exit_code == 2
    assert "int8 precision needs a quantized" in result.output
    np.testing.assert_equal(sorted(p.name for p in tmp_path.iterdir()), ["m.onnx"])
