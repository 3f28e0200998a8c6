"""A user's own checkpoint and frames: quantize and check parity with no dataset recorded anywhere.

The authors' dl-vgg9 checkpoint (a DDD17 one in their format, event frames
fed as they are) carries no edge-snn training config: calibration and parity
must come from a folder of the user's ``.npy`` event frames, read exactly as
``edge-snn run`` reads them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edge_snn.cli import app

from authors_fixtures import SIZE, T, authors_checkpoint


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("user")
    _, raw = authors_checkpoint("ddd17", 2, 6, leak=0.99, threshold=1.0, seed=3, thl=True)
    torch.save(raw, tmp / "authors.pth")
    code, output = invoke("import-checkpoint", tmp / "authors.pth", "-o", tmp / "ours.pt")
    assert code == 0, output
    frames = tmp / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        np.save(frames / f"rec_{i:02d}.npy", (rng.random((T, 2, SIZE, SIZE)) < 0.25).astype(np.float32))
    return tmp, tmp / "ours.pt", frames


def test_without_a_dataset_the_commands_say_what_to_pass(imported):
    tmp, ckpt, _ = imported
    code, output = invoke("quantize", ckpt, "--ptq", "-o", tmp / "q.pt")
    assert code == 2 and "--calibration FRAMES" in output and "Traceback" not in output
    code, output = invoke("export", ckpt, "--timesteps", str(T), "-o", tmp / "float.onnx")
    assert code == 0, output
    code, output = invoke("parity", ckpt, tmp / "float.onnx")
    assert code == 2 and "--input FRAMES" in output


def test_quantize_on_own_frames_then_parity_on_them(imported):
    tmp, ckpt, frames = imported
    code, output = invoke("quantize", ckpt, "--ptq", "--calibration", frames, "-o", tmp / "int8.pt")
    assert code == 0, output
    assert "calibrated on 6 frames" in output and "class maps agree with the float model" in output
    for form, layout in (("qdq", "time-major"), ("qdq", "layer-major"), ("integer", "time-major"),
                         ("integer", "layer-major")):
        model = tmp / f"int8_{form}_{layout}.onnx"
        code, output = invoke("export", tmp / "int8.pt", "--timesteps", str(T), "--layout", layout,
                              "--int8-form", form, "-o", model)
        assert code == 0, output
        report_path = tmp / f"{form}_{layout}.json"
        code, output = invoke("parity", tmp / "int8.pt", model, "--input", frames, "--json", report_path)
        assert code == 0, output
        import json

        report = json.loads(report_path.read_text())
        assert report["frames"] == 6 and report["precision"] == f"int8-{form}"
        assert report["pixel_agreement"] >= 0.999 and report["passed"]
        assert set(report["unexplained_flips_per_layer"].values()) == {0}


def test_a_calibration_frame_that_does_not_fit_is_named(imported, tmp_path):
    _, ckpt, _ = imported
    np.save(tmp_path / "bad.npy", np.zeros((T, 3, SIZE, SIZE), np.float32))
    code, output = invoke("quantize", ckpt, "--ptq", "--calibration", tmp_path / "bad.npy", "-o", tmp_path / "q.pt")
    assert code == 2 and "bad.npy" in output and "3 channels" in output
    assert not (tmp_path / "q.pt").exists()
