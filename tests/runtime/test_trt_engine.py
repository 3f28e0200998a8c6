"""``TensorRTRunner``: buffer swapping against a fake engine (everywhere), and a real engine on a GPU.

The fake half replaces TensorRT and the CUDA runtime with host-memory
stand-ins that keep their semantics where the runner depends on them: device
pointers are raw addresses, an enqueue reads and writes whatever addresses
are bound at that moment, and a captured CUDA graph replays the addresses
bound at capture time. It checks the runner's own logic (address swapping,
one upload of a fresh state, graph capture per parity, stale handles); only
the real half checks TensorRT and CUDA themselves.
"""

from __future__ import annotations

import ctypes
import hashlib
from types import SimpleNamespace

import numpy as np
import pytest

from edge_snn.errors import UserError
from edge_snn.runtime import contract as C
from edge_snn.runtime.backends import trt as T
from edge_snn.runtime.backends.trt import loader as L
from edge_snn.runtime.backends.trt import runner as R
from edge_snn.runtime.backends.trt.cuda import CudaError
from edge_snn.runtime.backends.trt.sidecar import make_sidecar, write_sidecar
from edge_snn.runtime.platform_info import Module
from fake_jetson import AGX_ORIN, ORIN_NX

pytestmark = pytest.mark.runtime

# --- a fake TensorRT engine: a one-layer LIF, T=2 steps per call ----------------
STEPS, SHAPE, LEAK = 2, (1, 1, 2, 2), 0.5
TENSORS = {  # name: (shape, dtype, is_input)
    "input": ((STEPS, *SHAPE), np.float32, True),
    "state_in.step": ((1,), np.int64, True),
    "state_in.v": (SHAPE, np.float32, True),
    "logits": (SHAPE, np.float32, False),
    "state_out.step": ((1,), np.int64, False),
    "state_out.v": (SHAPE, np.float32, False),
    "spike_counts": ((1,), np.float32, False),
}
ENGINE_BYTES = b"fake serialized engine"


def lif_reference(x, v, step):
    """What the engine computes: v <- LEAK*v + x_t; spike where v >= 1, then v -= spike."""
    count = 0.0
    for xt in x:
        v = LEAK * v + xt
        spikes = (v >= 1.0).astype(np.float32)
        v = v - spikes
        count += spikes.sum()
    return {"logits": v, "state_out.step": step + len(x), "state_out.v": v, "spike_counts": np.float32([count])}


def view(ptr, shape, dtype):
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.frombuffer((ctypes.c_byte * nbytes).from_address(ptr), dtype=dtype).reshape(shape)


class FakeCuda:
    """Host memory posing as device memory; copies are synchronous; capture records enqueues."""

    live: dict[int, np.ndarray] = {}

    def __init__(self):
        self.capturing, self.recorded, self.launches, self.h2d_names = False, None, 0, []
        self.fail_capture, self.captures, self.cleared = False, 0, 0

    def stream_create(self):
        return 7

    def stream_handle(self, stream):
        return stream

    def _alloc(self, nbytes):
        block = np.zeros(max(nbytes, 1), np.uint8)
        FakeCuda.live[block.ctypes.data] = block
        return block.ctypes.data

    def malloc(self, nbytes):
        return self._alloc(nbytes)

    def host_array(self, shape, dtype):
        ptr = self._alloc(int(np.prod(shape)) * np.dtype(dtype).itemsize)
        return view(ptr, shape, dtype), ptr

    def h2d(self, dst, src, nbytes, stream):
        assert not self.capturing
        self.h2d_names.append(dst)
        ctypes.memmove(dst, src, nbytes)

    def d2h(self, dst, src, nbytes, stream):
        ctypes.memmove(dst, src, nbytes)

    def synchronize(self, stream):
        pass

    def begin_capture(self, stream):
        self.capturing, self.recorded, self.captures = True, [], self.captures + 1

    def end_capture(self, stream):
        self.capturing = False
        if self.fail_capture:  # what CUDA reports after an enqueue that broke the capture
            raise CudaError("CUDA error in cudaStreamEndCapture: cudaErrorStreamCaptureInvalidated")
        return self.recorded

    def clear_error(self):
        self.cleared += 1

    def instantiate(self, graph):
        return list(graph)

    def launch(self, graph_exec, stream):
        self.launches += 1
        for work in graph_exec:
            work()

    def destroy(self, kind, handle):
        if kind in ("Free", "FreeHost"):
            del FakeCuda.live[handle]


class FakeContext:
    def __init__(self, cuda):
        self.cuda, self.addresses, self.enqueues = cuda, {}, 0

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream_handle):
        bound = dict(self.addresses)  # what a kernel launch (or a graph) sees

        def work():
            t = {n: view(bound[n], s, d) for n, (s, d, _) in TENSORS.items()}
            out = lif_reference(t["input"], t["state_in.v"].copy(), t["state_in.step"].copy())
            for name, value in out.items():
                t[name][...] = value

        if self.cuda.capturing:
            if self.cuda.fail_capture:
                return False  # an engine with work that may not be captured
            self.cuda.recorded.append(work)
        else:
            self.enqueues += 1
            work()
        return True


class FakeEngine:
    def __init__(self, cuda):
        self.names, self.cuda = list(TENSORS), cuda
        self.num_io_tensors = len(self.names)

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_shape(self, name):
        return TENSORS[name][0]

    def get_tensor_dtype(self, name):
        return TENSORS[name][1]

    def get_tensor_mode(self, name):
        return "INPUT" if TENSORS[name][2] else "OUTPUT"

    def create_execution_context(self):
        self.context = FakeContext(self.cuda)
        return self.context


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """A fake engine file with a matching sidecar, and the runner's TensorRT/CUDA replaced."""
    cuda = FakeCuda()
    state = SimpleNamespace(cuda=cuda, deserialized=0)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, blob):
            state.deserialized += 1
            assert bytes(blob) == ENGINE_BYTES
            state.engine = FakeEngine(cuda)
            return state.engine

    fake_trt = SimpleNamespace(__version__="10.3.0", Runtime=Runtime, nptype=lambda dtype: dtype,
                               Logger=type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None}),
                               TensorIOMode=SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT"))
    monkeypatch.setattr(L, "import_tensorrt", lambda: fake_trt)
    monkeypatch.setattr(R, "CudaRuntime", lambda: cuda)
    monkeypatch.setattr(L, "gpu_info", lambda: ("Orin", "8.7"))
    state.module = Module(AGX_ORIN, 64_322_136 * 1024)
    monkeypatch.setattr(L, "this_module", lambda: state.module)
    engine = tmp_path / "lif.engine"
    engine.write_bytes(ENGINE_BYTES)
    state.sidecar = make_sidecar(
        onnx_path="lif.onnx", engine_path=engine, model_sha256="0" * 64,
        engine_sha256=hashlib.sha256(ENGINE_BYTES).hexdigest(), trt_version="10.3.0", gpu_name="Orin",
        compute_capability=(8, 7), flags={"precision": "fp32", "dla_core": None}, metadata={}, module=state.module)
    write_sidecar(engine, state.sidecar)
    state.path = engine
    FakeCuda.live.clear()
    return state


def fresh():
    return {"state_in.step": np.zeros(1, np.int64), "state_in.v": np.zeros(SHAPE, np.float32)}


def chunks(n, seed=0):
    return [np.random.default_rng(seed + i).uniform(0, 1.2, (STEPS, *SHAPE)).astype(np.float32) for i in range(n)]


def test_infer_moves_everything_through_the_host(fake):
    x = chunks(1)[0]
    with T.TensorRTRunner(str(fake.path)) as runner:
        out = runner.infer({"input": x, **fresh()})
    want = lif_reference(x, np.zeros(SHAPE, np.float32), np.zeros(1, np.int64))
    assert set(out) == set(want)
    for name in want:
        np.testing.assert_array_equal(out[name], want[name])
    assert FakeCuda.live == {}  # deactivate freed every buffer


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_streaming_swaps_state_buffers_without_copies(fake, cuda_graph):
    xs = chunks(5)
    with T.TensorRTRunner(str(fake.path), cuda_graph=cuda_graph) as runner:
        input_ptr = runner.device["input"]
        state, outs = fresh(), []
        for x in xs:
            fake.cuda.h2d_names.clear()
            out, state = runner.step({"input": x}, state)
            outs.append(out)
            if len(outs) > 1:  # after the first call only the input goes up
                assert fake.cuda.h2d_names == [input_ptr]
        host_state = runner.state_to_host(state)
        context = fake.engine.context
        enqueues, launches = context.enqueues, fake.cuda.launches
    v, step = np.zeros(SHAPE, np.float32), np.zeros(1, np.int64)
    for x, out in zip(xs, outs):
        want = lif_reference(x, v, step)
        v, step = want["state_out.v"], want["state_out.step"]
        assert set(out) == {"logits", "spike_counts"}
        np.testing.assert_array_equal(out["logits"], want["logits"])
        np.testing.assert_array_equal(out["spike_counts"], want["spike_counts"])
    np.testing.assert_array_equal(host_state["state_in.v"], v)
    np.testing.assert_array_equal(host_state["state_in.step"], [2 * STEPS + 3 * STEPS])
    if cuda_graph:  # one ordinary enqueue per parity, then graph replays
        assert (enqueues, launches) == (2, 3)
    else:
        assert (enqueues, launches) == (5, 0)


def test_two_chunks_equal_one_long_call(fake):
    x = np.concatenate(chunks(2))
    with T.TensorRTRunner(str(fake.path)) as runner:
        _, state = runner.step({"input": x[:STEPS]}, fresh())
        out, state = runner.step({"input": x[STEPS:]}, state)
        final = runner.state_to_host(state)
    want = lif_reference(x, np.zeros(SHAPE, np.float32), np.zeros(1, np.int64))
    np.testing.assert_array_equal(out["logits"], want["logits"])
    np.testing.assert_array_equal(final["state_in.v"], want["state_out.v"])


def test_a_host_state_may_come_from_state_out_names(fake):
    x = chunks(1)[0]
    start = {"state_out.step": np.int64([3]), "state_out.v": np.full(SHAPE, 0.25, np.float32)}
    with T.TensorRTRunner(str(fake.path)) as runner:
        out, state = runner.step({"input": x}, start)
        final = runner.state_to_host(state)
    want = lif_reference(x, start["state_out.v"], start["state_out.step"])
    np.testing.assert_array_equal(out["logits"], want["logits"])
    assert final["state_in.step"][0] == 3 + STEPS


def test_stale_and_foreign_state_handles_are_refused(fake):
    x = chunks(1)[0]
    with T.TensorRTRunner(str(fake.path)) as runner, T.TensorRTRunner(str(fake.path)) as other:
        _, first = runner.step({"input": x}, fresh())
        _, second = runner.step({"input": x}, first)
        with pytest.raises(UserError, match="stale"):
            runner.step({"input": x}, first)
        with pytest.raises(UserError, match="stale"):
            runner.state_to_host(first)
        with pytest.raises(UserError, match="another runner"):
            other.step({"input": x}, second)
        runner.infer({"input": x, **fresh()})  # a plain call overwrites the state buffers too
        with pytest.raises(UserError, match="stale"):
            runner.step({"input": x}, second)


def test_wrong_inputs_are_named(fake):
    with T.TensorRTRunner(str(fake.path)) as runner:
        with pytest.raises(UserError, match=r"missing \['input'\]"):
            runner.step({}, fresh())
        with pytest.raises(UserError, match="has shape"):
            runner.step({"input": np.zeros((3, *SHAPE), np.float32)}, fresh())
        with pytest.raises(UserError, match="engine's state"):
            runner.step({"input": chunks(1)[0]}, {"state_in.v": np.zeros(SHAPE, np.float32)})


@pytest.mark.parametrize("change, says", [
    ({"tensorrt_version": "10.7.0"}, "built with TensorRT 10.7.0, this is TensorRT 10.3.0"),
    ({"gpu": {"name": "Orin", "compute_capability": "7.2"}}, "compute capability 7.2"),
    ({"gpu": {"name": "Xavier", "compute_capability": "8.7"}}, "GPU 'Xavier'"),
    ({"engine_sha256": "f" * 64}, "engine file changed"),
])
def test_a_stale_engine_is_refused_before_deserializing(fake, change, says):
    write_sidecar(fake.path, {**fake.sidecar, **change})
    runner = T.TensorRTRunner(str(fake.path))
    with pytest.raises(UserError, match="edge-snn build") as info:
        runner.activate()
    assert says in str(info.value)
    assert fake.deserialized == 0 and not runner.is_active


def test_a_failed_capture_clears_the_sticky_error_and_runs_without_graphs(fake):
    fake.cuda.fail_capture = True
    xs = chunks(4)
    with pytest.warns(UserWarning, match="CUDA graph capture failed .execute_async_v3 returned False"):
        with T.TensorRTRunner(str(fake.path), cuda_graph=True) as runner:
            state, outs = fresh(), []
            for x in xs:
                out, state = runner.step({"input": x}, state)
                outs.append(out)
            assert runner.cuda_graph is False and runner.graphs == [None, None]
    assert fake.cuda.captures == 1 and fake.cuda.cleared == 1  # tried once, error cleared, never again
    assert fake.cuda.launches == 0
    v, step = np.zeros(SHAPE, np.float32), np.zeros(1, np.int64)
    for x, out in zip(xs, outs):  # every call still right, the one after the failed capture included
        want = lif_reference(x, v, step)
        v, step = want["state_out.v"], want["state_out.step"]
        np.testing.assert_array_equal(out["logits"], want["logits"])


def test_dla_engines_are_never_captured(fake):
    write_sidecar(fake.path, {**fake.sidecar, "flags": {"precision": "fp16", "dla_core": 0}})
    with pytest.warns(UserWarning, match="not supported on DLA"):
        runner = T.TensorRTRunner(str(fake.path), cuda_graph=True).activate()
    with runner:
        state = fresh()
        for x in chunks(3):
            _, state = runner.step({"input": x}, state)
    assert fake.cuda.captures == 0 and fake.cuda.launches == 0


@pytest.mark.parametrize("recorded, says", [
    ({"model": ORIN_NX, "memory_bytes": 16 << 30}, f"built on board '{ORIN_NX}', this is '{AGX_ORIN}'"),
    ({"model": AGX_ORIN, "memory_bytes": 32 << 30}, "built on a module with 32.0 GiB, this one has 61.3 GiB"),
])
def test_an_engine_from_another_orin_module_is_refused(fake, recorded, says):
    write_sidecar(fake.path, {**fake.sidecar, "device": recorded})
    with pytest.raises(UserError, match="Rebuild it on this device") as info:
        T.TensorRTRunner(str(fake.path)).activate()
    assert says in str(info.value) and fake.deserialized == 0


def test_a_version_1_sidecar_is_refused_on_a_jetson_and_warned_about_elsewhere(fake):
    old = {k: v for k, v in fake.sidecar.items() if k != "device"}
    write_sidecar(fake.path, {**old, "sidecar_version": 1})
    with pytest.raises(UserError, match="version 1.*cannot be confirmed"):
        T.TensorRTRunner(str(fake.path)).activate()
    fake.module = Module(None, 64 << 30)  # a PC: GPU names tell GPUs apart
    with pytest.warns(UserWarning, match="version 1 and records no board"):
        with T.TensorRTRunner(str(fake.path)) as runner:
            runner.infer({"input": chunks(1)[0], **fresh()})


def test_an_engine_without_sidecar_is_refused(fake):
    (fake.path.parent / "lif.engine.json").unlink()
    with pytest.raises(UserError, match="no sidecar"):
        T.TensorRTRunner(str(fake.path)).activate()
    assert fake.deserialized == 0


# --- the real thing: TensorRT on a CUDA GPU, on the packaged selftest fixture (no torch needed) ---------
def _real_gpu():
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed (JetPack or pip install 'edge-snn[tensorrt]')")
    if T.availability() is not None:
        pytest.skip(T.availability())
    from edge_snn.runtime.backends.trt.cuda import gpu_info

    try:
        name, capability = gpu_info()
    except Exception as err:  # no driver, no device
        pytest.skip(f"no CUDA device: {err}")
    return trt, name, capability


@pytest.fixture(scope="module")
def fixture():
    """The selftest fixture: a dl-vgg9 (width 1/8, 32x32 events) as the T=1 step graph, FP32 and INT8 QDQ."""
    _real_gpu()
    from edge_snn.runtime.selftest import load_fixture

    return load_fixture()


def _ort_steps(path, frame):
    """ONNX Runtime (CPU) over one frame, streamed; returns (last outputs, host state)."""
    from edge_snn.runtime.session import Session

    with Session(path, backend="onnxruntime", providers=["CPUExecutionProvider"]) as s:
        outputs, state, _ = s.run_encoded(frame)
        return outputs, s.runner.state_to_host(state)


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_fp32_engine_matches_onnxruntime_and_streams(fixture, tmp_path, cuda_graph):
    from edge_snn.runtime.backends.trt.build import build_engine
    from edge_snn.runtime.model_file import load_contract
    from edge_snn.runtime.streaming import run_steps

    engine = tmp_path / "fp32.engine"
    sidecar = build_engine(fixture.model("fp32"), engine, precision="fp32", timing_cache=tmp_path / "timing.cache")
    assert (tmp_path / "timing.cache").stat().st_size > 0 and sidecar["flags"]["tf32"] is False
    contract = load_contract(str(engine))
    frame = fixture.reference["inputs"][0]
    zeros = {C.STATE_IN + s.name: np.zeros(s.shape, s.dtype) for s in contract.state}
    with T.TensorRTRunner(str(engine), cuda_graph=cuda_graph) as runner:
        once = runner.infer({C.INPUT: frame[:1], **zeros})
        streamed = run_steps(runner, contract, frame)
        final = runner.state_to_host(streamed.state)
    ort_out, ort_state = _ort_steps(fixture.model("fp32"), frame)
    np.testing.assert_array_equal(once[C.STATE_OUT + C.STEP], [1])
    # spikes are thresholds: FP32 TensorRT vs ONNX Runtime may flip a rare borderline spike, no more
    np.testing.assert_allclose(streamed.outputs[C.LOGITS], ort_out[C.LOGITS], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(streamed.outputs[C.SPIKE_COUNTS], ort_out[C.SPIKE_COUNTS], rtol=0.01, atol=2)
    np.testing.assert_array_equal(final[C.STATE_IN + C.STEP], [contract.timesteps_trained])
    for s in contract.state:
        np.testing.assert_allclose(final[C.STATE_IN + s.name], ort_state[C.STATE_IN + s.name], rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("key, precision, tolerance", [("fp32", "fp16", "fp16"), ("int8", "int8", "int8-integer")])
def test_reduced_precision_engines_meet_the_documented_tolerance(fixture, tmp_path, key, precision, tolerance):
    from edge_snn.runtime.backends.trt.build import build_engine
    from edge_snn.runtime.selftest import compare
    from edge_snn.runtime.session import Session

    engine = tmp_path / f"{key}-{precision}.engine"
    build_engine(fixture.model(key), engine, precision=precision)
    with Session(engine) as session:
        result = compare(session, fixture, key, tolerance)
    assert result["passed"], result


@pytest.mark.gpu
def test_a_stale_sidecar_is_refused_on_the_gpu(fixture, tmp_path):
    from edge_snn.runtime.backends.trt.build import build_engine
    from edge_snn.runtime.backends.trt.sidecar import read_sidecar

    engine = tmp_path / "fp16.engine"
    build_engine(fixture.model("fp32"), engine, precision="fp16")
    assert (tmp_path / ".edge-snn-timing.cache").is_file()  # the default cache, next to the engine
    write_sidecar(engine, {**read_sidecar(engine), "tensorrt_version": "0.0.0"})
    with pytest.raises(UserError, match="Rebuild it"):
        T.TensorRTRunner(str(engine)).activate()
