"""Parity reports agreement when the graph is faithful and fails loudly when it is not."""

import onnx
from onnx import numpy_helper
from typer.testing import CliRunner

from edge_snn.cli import app
from edge_snn.export.exporter import ExportOptions, export_checkpoint
from edge_snn.parity import run_parity


def test_faithful_graph_passes_with_identical_spikes(small_checkpoint, tmp_path):
    ckpt, model = small_checkpoint
    path = tmp_path / "m.onnx"
    export_checkpoint(ckpt, path, ExportOptions(timesteps=3, layout="layer-major"))
    report = run_parity(ckpt, path, frames=2)
    assert report["passed"]
    assert report["pixel_agreement"] >= 0.999
    assert set(report["spike_agreement_per_layer"]) == set(model.spiking_layers)
    assert len(report["spike_agreement_per_step"]) == 6
    assert min(report["teacher_forced_agreement_per_layer"].values()) >= 0.999


def test_tampered_graph_fails_and_names_the_first_divergence(small_checkpoint, tmp_path):
    ckpt, _ = small_checkpoint
    path = tmp_path / "m.onnx"
    export_checkpoint(ckpt, path, ExportOptions(timesteps=6))
    proto = onnx.load(str(path))
    for init in proto.graph.initializer:
        if init.name == "convs.conv4.weight":
            w = numpy_helper.to_array(init).copy()
            w *= -1.5  # a wrong layer, as a broken exporter would produce
            init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(proto, path)
    report = run_parity(ckpt, path, frames=2)
    assert report["first_divergence"]["layer"] == "conv4"
    agreement = report["spike_agreement_per_layer"]
    assert agreement["conv1"] == 1.0 and agreement["conv3"] == 1.0 and agreement["conv4"] < 1.0
    tf = report["teacher_forced_agreement_per_layer"]
    assert tf["conv4"] < 1.0 and tf["conv5"] == 1.0  # teacher forcing isolates the faulty layer
    result = CliRunner().invoke(app, ["parity", str(ckpt), str(path), "--frames", "2"])
    if not report["passed"]:
        assert result.exit_code == 1 and "FAIL" in result.output
    assert "first divergence: layer conv4" in result.output
