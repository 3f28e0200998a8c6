"""``edge-snn report``: plots and markdown from small synthetic result files."""

import json

import pytest
from typer.testing import CliRunner

import edge_snn.cli.bench_cmds  # noqa: F401  (registers bench/report)
from edge_snn.cli import app
from edge_snn.errors import UserError
from edge_snn.report import make_report

pytest.importorskip("matplotlib")  # the "report" extra
PNG = b"\x89PNG\r\n\x1a\n"


def run(name, series, steps, p50, *, snn=1.0, ann=3.0, measured=None, accuracy=None, kind="snn"):
    r = {
        "name": name, "series": series, "kind": kind, "backend": "onnxruntime", "providers": ["CPUExecutionProvider"],
        "model": {"layout": "layer-major", "precision": "fp32", "timesteps": steps, "batch": 1},
        "latency_ms": {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.2, "mean": p50}, "throughput_fps": 1e3 / p50,
        "timed_region": "graph calls for one frame",
        "spikes": {"input_rate": 0.5, "layers": [{"name": "conv1", "rate": 0.1}, {"name": "conv2", "rate": 0.05}]},
        "energy_estimate": {"label": "estimate (45 nm, Horowitz)", "snn_mj": snn, "ann_mj": ann, "ann_over_snn": ann / snn},
        "energy_measured": {"source": "not measured" if measured is None else "jetson-ina3221: VDD_IN",
                            "joules_per_image": None if measured is None else measured / 1e3},
    }
    if accuracy is not None:
        r["accuracy"] = {"miou": accuracy}
    return r


@pytest.fixture
def results(tmp_path):
    suite = {"schema": "edge-snn.bench-suite/1", "environment": {"cpu": "Test CPU", "cpu_count": 2},
             "summary_lines": ["(d) 1.70x faster than (a)"],
             "runs": [run("ort T=4", "ort layer-major", 4, 5.0, accuracy=0.30),
                      run("ort T=8", "ort layer-major", 8, 9.0, accuracy=0.34),
                      run("torch T=8", "torch time-major", 8, 15.0),
                      {**run("ann", "ann", 1, 2.0), "kind": "ann", "spikes": {}, "energy_estimate": {}}]}
    single = run("orin int8", "tensorrt int8", 8, 1.5, measured=4.2)
    a, b = tmp_path / "suite.json", tmp_path / "single.json"
    a.write_text(json.dumps(suite))
    b.write_text(json.dumps(single))
    return a, b


def test_report_writes_plots_and_markdown(results, tmp_path):
    written = make_report(list(results), tmp_path / "out")
    names = sorted(p.split("/")[-1] for p in written["plots"])
    assert names == ["accuracy_vs_T.png", "energy_per_frame.png", "latency_vs_T.png", "spike_rates.png"]
    for p in written["plots"]:
        assert open(p, "rb").read(8) == PNG
    md = (tmp_path / "out" / "report.md").read_text()
    for needle in ("orin int8", "not measured", "4.2", "estimate (45 nm", "(d) 1.70x faster than (a)",
                   "![latency_vs_T.png](latency_vs_T.png)", "graph calls for one frame"):
        assert needle in md, needle


def test_accuracy_plot_is_skipped_and_said_when_absent(results, tmp_path):
    written = make_report([results[1]], tmp_path / "out")
    assert "accuracy_vs_T.png" in written["skipped"]
    assert not (tmp_path / "out" / "accuracy_vs_T.png").exists()
    assert "accuracy_vs_T.png not drawn" in (tmp_path / "out" / "report.md").read_text()


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        make_report([tmp_path / "missing.json"], tmp_path / "out")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(UserError, match="not an edge-snn benchmark result"):
        make_report([tmp_path / "other.json"], tmp_path / "out")


def test_cli_report(results, tmp_path):
    done = CliRunner().invoke(app, ["report", str(results[0]), str(results[1]), "-o", str(tmp_path / "r")])
    assert done.exit_code == 0, done.output
    assert "report.md" in done.output and (tmp_path / "r" / "spike_rates.png").is_file()


def test_one_t_per_series_gives_bar_charts_of_variants(tmp_path):
    """The demo's bench: every graph at T=20, so a plot against T would be one column of dots."""
    runs = [run("time-major T=20", "ort time-major", 20, 30.0, accuracy=0.61),
            run("layer-major T=20", "ort layer-major", 20, 21.0, accuracy=0.61),
            run("int8 T=20", "ort int8", 20, 44.0, accuracy=0.62)]
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"runs": runs}))
    written = make_report([path], tmp_path / "out")
    names = sorted(p.split("/")[-1] for p in written["plots"])
    assert names == ["accuracy_by_variant.png", "energy_per_frame.png", "latency_by_variant.png", "spike_rates.png"]
    assert not (tmp_path / "out" / "latency_vs_T.png").exists()
    assert "![latency_by_variant.png](latency_by_variant.png)" in (tmp_path / "out" / "report.md").read_text()
