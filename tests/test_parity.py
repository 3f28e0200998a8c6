"""Parity passes a faithful graph and fails, with the reason, on a graph whose arithmetic is wrong."""

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

from edge_snn.cli import app
from edge_snn.export.exporter import ExportOptions, export_checkpoint
from edge_snn.parity import run_parity
from edge_snn.runtime.parity_tolerance import TOLERANCES, tolerance_for


def export(ckpt, path, **options):
    export_checkpoint(ckpt, path, ExportOptions(**options))
    return path


def scale_weight(path, name, factor, out):
    proto = onnx.load(str(path))
    (init,) = [i for i in proto.graph.initializer if i.name == name]
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(factor), name))
    onnx.save(proto, str(out))
    return out


def move_one_threshold(path, layer, value, out):
    """The Greater of ``layer``'s step-0 neuron compares against ``value`` instead of the shared threshold."""
    proto = onnx.load(str(path))
    producers = {o: n for n in proto.graph.node for o in n.output}
    # spikes.<layer>.t0 <- Identity <- Cast <- Greater(U, theta)
    node = producers[f"spikes.{layer}.t0"]
    while node.op_type != "Greater":
        node = producers[node.input[0]]
    proto.graph.initializer.append(numpy_helper.from_array(np.array(value, np.float32), "theta_moved"))
    node.input[1] = "theta_moved"
    onnx.save(proto, str(out))
    return out


def parity_cli(*args):
    return CliRunner().invoke(app, ["parity", *map(str, args)])


@pytest.fixture(scope="module")
def graphs(small_checkpoint, tmp_path_factory):
    ckpt, _ = small_checkpoint
    tmp = tmp_path_factory.mktemp("parity")
    honest = export(ckpt, tmp / "honest.onnx", timesteps=6)
    return {"ckpt": ckpt, "honest": honest,
            "scaled": scale_weight(honest, "convs.conv2.weight", 1.5, tmp / "scaled.onnx"),
            "threshold": move_one_threshold(honest, "conv2", 1.01, tmp / "threshold.onnx"),
            "classifier": scale_weight(honest, "classifier.weight", 1.01, tmp / "classifier.onnx")}


def test_faithful_graph_passes_with_identical_spikes(small_checkpoint, tmp_path):
    ckpt, model = small_checkpoint
    path = export(ckpt, tmp_path / "m.onnx", timesteps=3, layout="layer-major")
    report = run_parity(ckpt, path, frames=2)
    assert report["passed"], report["failures"]
    assert report["failures"] == [] and report["pixel_agreement"] >= 0.999
    assert set(report["spike_agreement_per_layer"]) == set(model.spiking_layers)
    assert len(report["spike_agreement_per_step"]) == 6
    assert min(report["teacher_forced_agreement_per_layer"].values()) >= TOLERANCES["fp32"].spike_agreement
    assert report["teacher_forced_max_logit_error"] <= report["logit_bound"]
    assert set(report["unexplained_flips_per_layer"].values()) == {0}


def test_honest_export_passes_through_the_cli(graphs, tmp_path):
    result = parity_cli(graphs["ckpt"], graphs["honest"], "--frames", "2", "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is True


def test_scaled_weight_fails_on_its_own_layer(graphs):
    report = run_parity(graphs["ckpt"], graphs["scaled"], frames=2)
    assert not report["passed"]
    tf = report["teacher_forced_agreement_per_layer"]
    assert tf["conv1"] == 1.0 and tf["conv2"] < TOLERANCES["fp32"].spike_agreement  # teacher forcing isolates it
    assert report["first_divergence"]["layer"] == "conv2"
    assert any(f.startswith("conv2: teacher-forced") for f in report["failures"])
    result = parity_cli(graphs["ckpt"], graphs["scaled"], "--frames", "2")
    assert result.exit_code == 1 and "FAIL" in result.output and "conv2: teacher-forced" in result.output


def test_one_threshold_moved_by_one_percent_fails(graphs):
    report = run_parity(graphs["ckpt"], graphs["threshold"], frames=2)
    assert not report["passed"], report
    unexplained = report["unexplained_flips_per_layer"]
    assert unexplained["conv2"] > 0 and unexplained["conv1"] == 0
    assert any(f.startswith("conv2:") for f in report["failures"])
    assert parity_cli(graphs["ckpt"], graphs["threshold"], "--frames", "2").exit_code == 1


def test_a_wrong_readout_fails_on_the_logits(graphs):
    """The classifier has no neuron: only the teacher-forced logit error can see it."""
    report = run_parity(graphs["ckpt"], graphs["classifier"], frames=2)
    assert min(report["teacher_forced_agreement_per_layer"].values()) == 1.0
    assert not report["passed"] and any("logit error" in f for f in report["failures"])


def test_user_frames_from_a_folder(graphs, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(4)
    for i in range(3):
        np.save(frames / f"f{i}.npy", (rng.random((6, 2, 24, 32)) < 0.3).astype(np.float32))
    report = run_parity(graphs["ckpt"], graphs["honest"], frames=None, inputs=frames)
    assert report["passed"] and report["frames"] == 3 and report["miou_reference"] is None
    assert not run_parity(graphs["ckpt"], graphs["scaled"], frames=None, inputs=frames)["passed"]


@pytest.mark.parametrize("frames", ["0", "-1"])
def test_frames_must_be_positive(graphs, frames):
    result = parity_cli(graphs["ckpt"], graphs["honest"], "--frames", frames)
    assert result.exit_code == 2 and "--frames must be at least 1" in result.output and "Traceback" not in result.output


def test_tolerances_are_documented_per_precision():
    assert tolerance_for("fp32") == TOLERANCES["fp32"] and tolerance_for("unknown") == TOLERANCES["fp32"]
    assert TOLERANCES["fp16"].spike_agreement < TOLERANCES["int8-integer"].spike_agreement <= TOLERANCES["fp32"].spike_agreement
