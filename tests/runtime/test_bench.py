"""``edge-snn bench``: result structure, spike rates against the PyTorch reference, energy, errors, no torch."""

import json
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edge_snn.cli import app
from edge_snn.errors import UserError
from edge_snn.export.exporter import ExportOptions, build_graph, check_graph, save_onnx_atomic
from edge_snn.models import build_model
from edge_snn.runtime.bench import (
    RUN_SCHEMA,
    bench_model,
    format_result,
    measure_energy,
    op_breakdown,
    time_interleaved,
)
from edge_snn.runtime.energy_estimate import E_MAC_PJ
from edge_snn.runtime.encoding import poisson_encode
from edge_snn.runtime.power import EnergyMeter

from model_fixtures import randomized
from torch_blocking import run_blocked

T_FRAME, T_CALL, H, W = 4, 2, 16, 24


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(onnx path, model): dl-vgg9 at width 1/8, 2 inputs, 4 classes, T=4 per frame in 2 calls of 2."""
    torch.manual_seed(0)
    model = randomized(build_model("dl-vgg9", in_channels=2, num_classes=4, timesteps=T_FRAME, width=0.125))
    proto, _ = build_graph(model, {"data": {"height": H, "width": W, "encoding": "poisson"}},
                           ExportOptions(timesteps=T_CALL, layout="layer-major"))
    check_graph(proto)
    path = tmp_path_factory.mktemp("bench") / "tiny.onnx"
    save_onnx_atomic(proto, path)
    return path, model


@pytest.fixture(scope="module")
def frame():
    image = np.random.default_rng(3).uniform(-1, 1, (1, 2, H, W)).astype(np.float32)
    return poisson_encode(image, T_FRAME, seed=5)  # [T, B, C, H, W]


@pytest.fixture(scope="module")
def result(tiny, frame):
    path, _ = tiny
    return bench_model(path, iters=3, warmup=1, spikes=[frame], sensor="none", target="x86-cpu", threads=1)


def test_result_structure(result):
    assert result["schema"] == RUN_SCHEMA
    assert result["model"]["timesteps"] == T_FRAME and result["model"]["calls_per_frame"] == T_FRAME // T_CALL
    lat = result["latency_ms"]
    assert lat["n"] == 3 and 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert result["throughput_fps"] == pytest.approx(1e3 / lat["mean"])
    assert result["memory"]["peak_rss_mib"] >= result["memory"]["peak_rss_before_load_mib"] > 0
    assert "CPUExecutionProvider" in result["providers"]
    assert "excl. model load, encoding" in result["timed_region"]
    env = result["environment"]
    assert env["cpu_count"] >= 1 and "onnxruntime" in env["libraries"]
    json.dumps(result)  # JSON-ready as it is


def test_spike_rates_equal_the_pytorch_reference(tiny, frame, result):
    path, model = tiny
    with torch.no_grad():
        ref = model.run(torch.from_numpy(frame))
    shapes = model.state_spec(1, H, W)
    layers = {x["name"]: x for x in result["spikes"]["layers"]}
    assert list(layers) == model.spiking_layers
    for name in model.spiking_layers:
        count = ref.spike_counts[name].item()
        assert layers[name]["spikes_per_frame"] == count
        assert layers[name]["rate"] == pytest.approx(count / (np.prod(shapes[name]) * T_FRAME), rel=1e-12)
        assert 0 < layers[name]["rate"] < 1, name  # the fixture makes every layer fire
    assert result["spikes"]["input_rate"] == pytest.approx(np.count_nonzero(frame) / frame.size)


def test_energy_estimate_uses_each_layers_input_rate_and_measured_says_not_measured(tiny, result):
    _, model = tiny
    est = result["energy_estimate"]
    assert est["label"] == "estimate (45 nm, Horowitz)"
    rates = {x["name"]: x["rate"] for x in result["spikes"]["layers"]}
    rates["input"] = result["spikes"]["input_rate"]
    rows = model.conv_layers(H, W)
    assert [x["name"] for x in est["layers"]] == [r["name"] for r in rows]
    for row, layer in zip(rows, est["layers"]):
        assert layer["input_rate"] == rates[row["input"]]
        assert layer["ann_mj"] == pytest.approx(row["macs"] * E_MAC_PJ * 1e-9)
        assert layer["snn_mj"] == pytest.approx(row["macs"] * rates[row["input"]] * 0.9e-9 * T_FRAME)
    assert est["ann_over_snn"] == pytest.approx(est["ann_mj"] / est["snn_mj"])
    measured = result["energy_measured"]
    assert measured["source"] == "not measured" and measured["joules_per_frame"] is None


class BusyMeter(EnergyMeter):
    """A sensor that reads 10 W idle and 15 W while frames run."""

    source = "fake: 10 W idle, 15 W busy"
    busy = False

    def _stop_impl(self, t_start, t_end):
        return (15.0 if self.busy else 10.0) * (t_end - t_start), 2, {}


def test_measured_energy_is_per_frame_above_idle():
    meter = BusyMeter()

    def run_frame(_):
        meter.busy = True
        time.sleep(0.005)

    out = measure_energy(meter, run_frame, [None], seconds=0.05, idle_seconds=0.02, batch=2)
    assert out["source"] == BusyMeter.source and out["idle_watts"] == pytest.approx(10.0)
    # frames back to back until the window reached `seconds` (how many fit depends on the machine's load)
    assert out["frames"] >= 2 and out["seconds"] >= 0.05 and out["mean_watts"] == pytest.approx(15.0)
    assert out["joules_per_frame"] == pytest.approx(5.0 * out["seconds"] / out["frames"])
    assert out["joules_per_image"] == pytest.approx(out["joules_per_frame"] / 2)
    assert out["joules_total_per_frame"] == pytest.approx(15.0 * out["seconds"] / out["frames"])


def test_interleaved_rounds_visit_every_runner_and_drop_one_over_budget():
    calls = []

    def runner(name, seconds):
        def run(frame):
            calls.append((name, frame))
            time.sleep(seconds)
            return frame
        return run

    out = time_interleaved({"slow": (runner("slow", 0.02), [0, 1]), "fast": (runner("fast", 0.0), [5])},
                           iters=6, warmup=1, budget_s=0.03)
    assert calls[:2] == [("slow", 0), ("fast", 5)]  # warm-up round, untimed
    assert calls[2:6] == [("slow", 0), ("fast", 5), ("slow", 1), ("fast", 5)]  # round-robin, frames cycled
    assert len(out["slow"][0]) == 3 and out["slow"][1] == [0, 1, 0]  # over budget after its 3 minimum rounds
    assert len(out["fast"][0]) == 6


def test_roofline_and_console_table(result):
    roof = result["roofline"]
    assert roof["target"] == "x86-cpu" and roof["floor_ms_per_frame"] > 0 and roof["fraction_of_floor"] > 0
    text = format_result(result)
    for needle in ("p50", "estimate (45 nm, Horowitz)", "not measured", "conv1", "roofline"):
        assert needle in text


def test_default_input_and_sensor_work(tiny):
    """Without --spikes: seeded uniform images (Poisson rate about 0.5); without --sensor: the best one found here."""
    from edge_snn.runtime.power import NOT_MEASURED, open_best_meter

    result = bench_model(tiny[0], iters=2, warmup=0, energy_seconds=0.05, idle_seconds=0.05)
    assert result["latency_ms"]["n"] == 2 and 0.4 < result["spikes"]["input_rate"] < 0.6
    meter = open_best_meter(None)
    try:
        expected = meter.source
    finally:
        meter.close()
    measured = result["energy_measured"]
    assert measured["source"] == expected
    if expected == NOT_MEASURED:  # this machine: no sensor, so no number may appear
        assert measured["joules_per_frame"] is None
    else:
        assert measured["frames"] >= 1 and measured["seconds"] > 0


def test_batch_mismatch_says_to_reexport(tiny):
    with pytest.raises(UserError, match="re-export with `edge-snn export CHECKPOINT --batch 4`"):
        bench_model(tiny[0], batch=4, iters=1)


def test_wrong_spike_shape_is_a_user_error(tiny, frame):
    with pytest.raises(UserError, match="does not fit the graph input"):
        bench_model(tiny[0], spikes=[frame[:, :, :1]], iters=1, sensor="none")


def test_op_breakdown_finds_the_convolutions(tiny, frame):
    breakdown = op_breakdown(tiny[0], [frame], threads=1)
    ops = {x["op"] for x in breakdown["ops"]}
    assert any("Conv" in op for op in ops), ops
    assert sum(x["share"] for x in breakdown["ops"]) == pytest.approx(1.0)
    assert 0 < breakdown["node_ms_per_frame"] <= breakdown["run_ms_per_frame"] * 1.05


def test_cli_bench_writes_json_and_refuses_a_wrong_batch(tiny, tmp_path):
    out = tmp_path / "r.json"
    runner = CliRunner()
    done = runner.invoke(app, ["bench", str(tiny[0]), "--iters", "2", "--warmup", "0", "--sensor", "none",
                               "--json", str(out)])
    assert done.exit_code == 0, done.output
    assert "latency" in done.output and json.loads(out.read_text())["schema"] == RUN_SCHEMA
    done = runner.invoke(app, ["bench", str(tiny[0]), "--batch", "2"])
    assert done.exit_code == 2 and "re-export" in done.output


def test_bench_runs_without_torch(tiny, tmp_path):
    done = run_blocked(f"""
        import edge_snn.cli.bench_cmds
        from edge_snn.cli import main
        sys.argv = ["edge-snn", "bench", {str(tiny[0])!r}, "--iters", "2", "--warmup", "1", "--sensor", "none"]
        try:
            main()
        except SystemExit as e:
            assert e.code in (0, None), e.code
        assert "torch" not in sys.modules
        print("torch-free ok")
    """, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torch-free ok" in done.stdout and "p50" in done.stdout


def test_sparse_bench_reports_its_work_beside_latency(tiny, frame):
    from edge_snn.runtime.backends import availability

    reason = availability()["sparse"]
    if reason:
        pytest.skip(reason)
    result = bench_model(tiny[0], backend="sparse", iters=2, warmup=1, spikes=[frame], sensor="none")
    work = result["work"]
    assert work["frames"] == 2 and work["calls"] == 2 * T_FRAME // T_CALL  # the timed frames only
    names = [x["name"] for x in work["layers"]]
    assert "conv2" in names and all(x["synaptic_ops"] + x["dense_macs"] > 0 for x in work["layers"])
    text = format_result(result)
    assert "synaptic ops" in text and "backend      sparse" in text
