"""Session: frames, streaming, and one-line errors for bad models and bad inputs."""

import os

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from edge_snn.cli import app
from edge_snn.encoding import encode_batch
from edge_snn.errors import UserError
from edge_snn.export.exporter import ExportOptions, export_checkpoint
from edge_snn.runtime import Session
from edge_snn.runtime.encoding import frame_seed


@pytest.fixture(scope="module")
def event_model(small_checkpoint, tmp_path_factory):
    ckpt, model = small_checkpoint
    path = tmp_path_factory.mktemp("m") / "events.onnx"
    export_checkpoint(ckpt, path, ExportOptions(timesteps=2))
    return path, model


@pytest.fixture(scope="module")
def image_model(small_image_checkpoint, tmp_path_factory):
    ckpt, model = small_image_checkpoint
    path = tmp_path_factory.mktemp("m") / "images.onnx"
    export_checkpoint(ckpt, path, ExportOptions(timesteps=4))
    return path, model


def test_frame_in_chunks_matches_reference(event_model):
    path, model = event_model
    events = (np.random.default_rng(1).random((6, 2, 24, 32)) < 0.25).astype(np.float32)
    with Session(path) as session:
        result = session.infer(events)
    with torch.no_grad():
        ref = model.run(torch.from_numpy(events[:, None]))
    assert result.calls == 3
    assert np.abs(result.logits - ref.logits.numpy()).max() < 1e-4
    assert result.class_map.shape == (1, 24, 32)
    assert result.spike_counts == {k: v.item() for k, v in ref.spike_counts.items()}


def test_poisson_runtime_spikes_equal_reference_spikes(image_model):
    path, model = image_model
    image = np.random.default_rng(2).uniform(-1, 1, (3, 20, 28)).astype(np.float32)
    with Session(path, seed=11) as session:
        spikes = session.encode(image, frame_index=4)
        result = session.infer(image, frame_index=4)
    reference_spikes = encode_batch(torch.from_numpy(image)[None], "poisson", 4, seed=frame_seed(11, 4))
    assert np.array_equal(spikes, reference_spikes.numpy())
    with torch.no_grad():
        ref = model.run(reference_spikes)
    assert np.abs(result.logits - ref.logits.numpy()).max() < 1e-4


def test_stream_refuses_steps_past_training(event_model):
    path, _ = event_model
    with Session(path) as session:
        stream = session.stream()
        chunk = np.zeros((2, 1, 2, 24, 32), np.float32)
        for _ in range(3):
            stream.feed(chunk)
        with pytest.raises(UserError, match="reset"):
            stream.feed(chunk)
        stream.reset()
        assert "logits" in stream.feed(chunk)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((6, 3, 24, 32), np.float32), "channels"),
    (np.zeros((6, 2, 20, 32), np.float32), "exported for 24x32"),
    (np.zeros((3, 2, 24, 32), np.float32), "frames"),
    (np.zeros((24, 32), np.float32), "does not fit"),
])
def test_bad_inputs(event_model, bad, message):
    path, _ = event_model
    with Session(path) as session, pytest.raises(UserError, match=message):
        session.infer(bad)


def test_nan_and_out_of_range_inputs(event_model, image_model):
    with Session(event_model[0]) as session:
        bad = np.zeros((6, 2, 24, 32), np.float32)
        bad[2, 1, 3, 4] = np.nan
        with pytest.raises(UserError, match="NaN"):
            session.infer(bad)
    with Session(image_model[0]) as session, pytest.raises(UserError, match="normalize"):
        session.infer(np.full((3, 20, 28), 200.0, np.float32))


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output  # stdout and stderr, interleaved


def test_cli_errors_are_one_line(event_model, tmp_path):
    path, _ = event_model
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_text("this is not a model")
    plain = tmp_path / "plain.onnx"
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(graph), plain)
    frames = tmp_path / "in"
    frames.mkdir()
    np.save(frames / "wrong.npy", np.zeros((6, 2, 10, 10), np.float32))
    cases = [
        ((not_onnx, "--input", frames), "not an ONNX file"),
        ((plain, "--input", frames), "no edge-snn metadata"),
        ((path, "--input", frames / "wrong.npy"), "exported for 24x32"),
        ((frames, "--input", frames), "is a folder, not a model file"),
    ]
    for args, message in cases:
        code, output = invoke("run", *args, "-o", tmp_path / "out", "--quiet")
        assert code == 2, output
        assert message in output
        assert "Traceback" not in output
        assert len([l for l in output.strip().splitlines() if l.strip()]) == 1, output


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; permission bits do not stop it")
def test_unwritable_output_folder_as_user(event_model, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    code, output = invoke("run", event_model[0], "--input", tmp_path, "-o", locked / "sub", "--quiet")
    assert code == 2 and "not writable" in output


def test_output_path_that_cannot_be_a_folder(event_model, tmp_path):
    """A file where the output folder should be: refused before any work, nothing half-written."""
    frames = tmp_path / "in"
    frames.mkdir()
    np.save(frames / "a.npy", (np.random.default_rng(0).random((6, 2, 24, 32)) < 0.2).astype(np.float32))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, output = invoke("run", event_model[0], "--input", frames, "-o", blocker / "out", "--quiet")
    assert code == 2 and "not writable" in output and "Traceback" not in output
    code, output = invoke("run", event_model[0], "--input", frames, "-o", tmp_path / "ok", "--quiet")
    assert code == 0, output
    written = sorted(p.name for p in (tmp_path / "ok").iterdir())
    assert written == ["a.classes.npy", "a.mask.png", "a.overlay.png", "run.json"]
