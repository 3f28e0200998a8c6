"""The CLI path a user types, on a tiny configuration: train, eval, export, run, parity, quantize, check."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edge_snn.cli import app


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (args, result.output[-3000:])
    return result.output


@pytest.mark.slow
def test_train_export_run_parity_quantize_check(tmp_path):
    run = tmp_path / "run"
    cli("train", "-o", run, "--width-mult", "0.125", "--timesteps", "4", "--height", "24", "--width", "24",
        "--train-samples", "16", "--val-samples", "8", "--epochs", "1", "--batch-size", "8", "--optimizer", "adam",
        "--lr", "0.01", "--quiet")
    ckpt = run / "best.pt"
    assert "mIoU" in cli("eval", ckpt, "--samples", "8")
    for layout in ("time-major", "layer-major"):
        out = cli("export", ckpt, "--timesteps", "4", "--layout", layout, "-o", tmp_path / f"{layout}.onnx")
        assert "T=4" in out
    cli("export", ckpt, "--timesteps", "2", "-o", tmp_path / "half.onnx")

    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        np.save(frames / f"f{i}.npy", (rng.random((4, 2, 24, 24)) < 0.2).astype(np.float32))
    cli("run", tmp_path / "time-major.onnx", "--input", frames, "-o", tmp_path / "masks", "--quiet")
    summary = json.loads((tmp_path / "masks" / "run.json").read_text())
    assert summary["frames"] == 3 and (tmp_path / "masks" / "f2.overlay.png").is_file()
    cli("run", tmp_path / "half.onnx", "--input", frames / "f0.npy", "-o", tmp_path / "masks_half", "--quiet")
    same = np.load(tmp_path / "masks" / "f0.classes.npy") == np.load(tmp_path / "masks_half" / "f0.classes.npy")
    assert same.mean() == 1.0  # two streamed T=2 calls give the T=4 answer

    for layout in ("time-major", "layer-major"):
        report = tmp_path / f"parity_{layout}.json"
        cli("parity", ckpt, tmp_path / f"{layout}.onnx", "--frames", "3", "--json", report)
        data = json.loads(report.read_text())
        assert data["passed"] and data["pixel_agreement"] >= 0.999

    out = cli("quantize", ckpt, "--ptq", "-o", tmp_path / "int8.pt", "--calibration-samples", "8", "--eval-samples", "8")
    assert "int8" in out
    cli("export", tmp_path / "int8.pt", "--timesteps", "4", "-o", tmp_path / "int8.onnx")
    cli("parity", tmp_path / "int8.pt", tmp_path / "int8.onnx", "--frames", "3")
    assert "OK" in cli("check", tmp_path / "int8.onnx", "--target", "orin-nx-16gb")
