"""One conformance suite, run against every backend present: the Runner contract every backend must keep.

Each backend gets the same exported graphs (a Spiking-DeepLab on events, T=6
per frame, as a T=6 graph, a T=3 graph and the T=1 step graph; a Poisson-input
Spiking-FCN) and must: open them through its loader with the contract checked;
start from an all-zero state; give the PyTorch reference's logits and per-layer
spike counts; stream (chunks and step graphs equal one call); read the graph's
own step counter; refuse steps past training, wrong inputs and foreign states
in one line; and serve two threads at once. A backend absent here is skipped
with the reason its package gives (``availability()``).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from edge_snn.errors import UserError
from edge_snn.export.exporter import ExportOptions, export_checkpoint
from edge_snn.runtime import Session
from edge_snn.runtime import contract as C
from edge_snn.runtime.backends import BACKENDS, availability
from edge_snn.runtime.parity_tolerance import TOLERANCES

T_FRAME = 6


def _present(name: str):
    reason = availability()[name]
    return pytest.param(name, marks=pytest.mark.skipif(reason is not None, reason=f"{name}: {reason}"))


BACKEND_PARAMS = [_present(name) for name in BACKENDS]


@pytest.fixture(scope="module")
def graphs(small_checkpoint, small_image_checkpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conformance")
    ckpt, model = small_checkpoint
    out = {"model": model, "fcn_model": small_image_checkpoint[1]}
    for name, options in {"frame": ExportOptions(timesteps=T_FRAME), "half": ExportOptions(timesteps=3),
                          "step": ExportOptions(timesteps=1), "layer": ExportOptions(timesteps=T_FRAME, layout="layer-major")}.items():
        out[name] = export_checkpoint(ckpt, tmp / f"{name}.onnx", options)["path"]
    out["fcn"] = export_checkpoint(small_image_checkpoint[0], tmp / "fcn.onnx", ExportOptions(timesteps=4))["path"]
    return out


def model_file(backend: str, onnx_path: str, tmp_path) -> str:
    """What ``backend`` runs for an exported graph: the ONNX file itself, or an engine built from it."""
    if backend != "tensorrt":
        return onnx_path
    from edge_snn.runtime.backends.trt.build import build_engine

    engine = tmp_path / (str(onnx_path).rsplit("/", 1)[-1] + ".engine")
    build_engine(onnx_path, engine, precision="fp32")
    return str(engine)


def events(seed: int, steps: int = T_FRAME) -> np.ndarray:
    return (np.random.default_rng(seed).random((steps, 2, 24, 32)) < 0.3).astype(np.float32)


def reference(model, spikes: np.ndarray):
    with torch.no_grad():
        return model.run(torch.from_numpy(spikes))


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_opens_with_the_checked_contract_and_a_fresh_zero_state(backend, graphs, tmp_path):
    from edge_snn.runtime.model_file import load_onnx_contract

    with Session(model_file(backend, graphs["frame"], tmp_path), backend=backend) as session:
        assert session.runner.name == backend
        assert session.contract == load_onnx_contract(graphs["frame"])
        fresh = session.fresh_state()
        assert set(fresh) == {C.STATE_IN + s.name for s in session.contract.state}
        assert all(not v.any() for v in fresh.values())


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("graph", ["frame", "half", "step", "layer"])
def test_frame_equals_the_pytorch_reference(backend, graph, graphs, tmp_path):
    x = events(1)
    ref = reference(graphs["model"], x[:, None])
    tolerance = TOLERANCES["fp32"]
    with Session(model_file(backend, graphs[graph], tmp_path), backend=backend) as session:
        result = session.infer(x)
    assert result.calls == T_FRAME // session.contract.timesteps
    scale = float(np.abs(ref.logits.numpy()).max())
    assert np.abs(result.logits - ref.logits.numpy()).max() <= tolerance.logit_bound(scale)
    for layer, count in ref.spike_counts.items():
        assert result.spike_counts[layer] == count.item(), layer


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_poisson_fcn_equals_the_reference(backend, graphs, tmp_path):
    image = np.random.default_rng(2).uniform(-1, 1, (3, 20, 28)).astype(np.float32)
    with Session(model_file(backend, graphs["fcn"], tmp_path), backend=backend, seed=3) as session:
        spikes = session.encode(image)
        result = session.infer(image)
    ref = reference(graphs["fcn_model"], spikes)
    assert np.abs(result.logits - ref.logits.numpy()).max() <= TOLERANCES["fp32"].logit_bound(1.0)
    assert result.spike_counts == {k: v.item() for k, v in ref.spike_counts.items()}


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_streaming_in_chunks_equals_one_call(backend, graphs, tmp_path):
    x = events(4)[:, None]
    with Session(model_file(backend, graphs["frame"], tmp_path), backend=backend) as whole:
        once = whole.run_encoded(x)[0]
    for graph in ("half", "step"):
        with Session(model_file(backend, graphs[graph], tmp_path), backend=backend) as session:
            stream = session.stream()
            T = session.contract.timesteps
            for lo in range(0, T_FRAME, T):
                out = stream.feed(x[lo:lo + T])
                assert stream.steps_done == lo + T  # the graph's own counter, read back
            np.testing.assert_allclose(out[C.LOGITS], once[C.LOGITS], rtol=1e-5, atol=1e-6)
            assert session.run_encoded(x)[0][C.SPIKE_COUNTS].tolist() == once[C.SPIKE_COUNTS].tolist()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_steps_past_training_and_wrong_inputs_are_refused(backend, graphs, tmp_path):
    with Session(model_file(backend, graphs["half"], tmp_path), backend=backend) as session:
        stream = session.stream()
        stream.feed(events(5, 3)[:, None])
        stream.feed(events(6, 3)[:, None])
        with pytest.raises(UserError, match="already ran 6 of its 6 trained steps"):
            stream.feed(events(7, 3)[:, None])
        stream.reset()
        assert stream.steps_done == 0
        stream.feed(events(7, 3)[:, None])
        with pytest.raises(UserError, match="stream chunk has shape"):
            stream.feed(events(8, 2)[:, None])
        with pytest.raises(UserError, match="channels"):
            session.infer(np.zeros((T_FRAME, 3, 24, 32), np.float32))


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_a_session_serves_two_threads(backend, graphs, tmp_path):
    frames = [events(10 + i) for i in range(4)]
    with Session(model_file(backend, graphs["frame"], tmp_path), backend=backend) as session:
        alone = [session.infer(x).logits for x in frames]
        got: dict[int, np.ndarray] = {}

        def work(i):
            got[i] = session.infer(frames[i]).logits

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for i, logits in enumerate(alone):
        np.testing.assert_array_equal(got[i], logits)
