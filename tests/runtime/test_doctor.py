"""``edge-snn doctor``: every row says what was found and, when something is wrong, what to do."""

from __future__ import annotations

import json

import pytest

from edge_snn.runtime import doctor as D
from edge_snn.runtime.backends.trt.cuda import version_problem
from fake_jetson import AGX_ORIN, fake_jetson
from torch_blocking import run_blocked

pytestmark = pytest.mark.runtime


def rows_by_item(rows):
    return {r.item: r for r in rows}


def test_doctor_runs_without_torch_and_names_what_is_absent(tmp_path):
    result = run_blocked("""
        import json, sys
        from edge_snn.cli import main
        sys.argv = ["edge-snn", "doctor", "--json", "-"]
        try:
            main()
        except SystemExit as e:
            assert e.code in (0, None), e.code
        assert "torch" not in sys.modules
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    rows = {r["item"]: r for r in report["rows"]}
    assert report["schema"] == D.SCHEMA
    assert rows["tensorrt"]["status"] == "absent" and "edge-snn[tensorrt]" in rows["tensorrt"]["fix"]
    assert "python3-libnvinfer" in rows["tensorrt"]["fix"]
    assert rows["backend tensorrt"]["status"] == "absent"
    assert rows["backend tensorrt"]["fix"] == "see tensorrt above"  # the install hint is printed once
    assert rows["backend onnxruntime"]["status"] == "ok"
    assert rows["python"]["status"] == "ok"


def test_the_table_escapes_extras_in_brackets(tmp_path):
    from rich.console import Console

    console = Console(record=True, width=200)
    D.render([D.Row("tensorrt", "not installed", "absent", "pip install 'edge-snn[tensorrt]'")], console)
    assert "edge-snn[tensorrt]" in console.export_text()


def test_a_jetson_module_its_jetpack_power_mode_and_rails(tmp_path, monkeypatch):
    tools = fake_jetson(tmp_path)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    rows = rows_by_item(D.inspect(D.Probe(root=str(tmp_path))))
    assert rows["jetson module"].status == "ok" and AGX_ORIN in rows["jetson module"].value
    assert "61.3 GiB" in rows["jetson module"].value
    assert rows["jetpack"].status == "ok" and "R36.4.3" in rows["jetpack"].value
    assert rows["target profile"].value == "agx-orin-64gb"
    assert rows["power mode"].value == "MAXN (id 0)"
    assert rows["power: INA3221 rails"].value == "VDD_GPU_SOC, VDD_CPU_CV"
    assert "2" in rows["dla cores"].value  # from the profile, TensorRT being absent here


def test_an_older_jetpack_is_a_problem_with_its_fix(tmp_path, monkeypatch):
    tools = fake_jetson(tmp_path, l4t="R35 (release), REVISION: 4.1")
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    row = rows_by_item(D.inspect(D.Probe(root=str(tmp_path))))["jetpack"]
    assert row.status == "warn" and "JetPack 5" in row.value and "JetPack 6" in row.fix


def test_both_onnxruntime_distributions_installed_is_flagged(monkeypatch):
    versions = {"onnxruntime": "1.23.2", "onnxruntime-gpu": "1.23.0"}
    monkeypatch.setattr(D, "_dist_version", lambda name: versions.get(name))
    row = rows_by_item(D.onnxruntime_rows(D.Probe(), D.platform_info.Module(None, None)))["onnxruntime distributions"]
    assert row.status == "warn" and "pip uninstall -y onnxruntime onnxruntime-gpu" in row.fix


def test_a_jetson_whose_onnxruntime_has_only_the_cpu_provider_is_told_to_get_the_gpu_wheel():
    module = D.platform_info.Module(AGX_ORIN, 64 << 30)
    row = rows_by_item(D.onnxruntime_rows(D.Probe(), module))["onnxruntime providers"]
    assert row.status == "warn" and "onnxruntime-gpu" in row.fix


@pytest.mark.parametrize("versions, says", [
    ({"driver": "12.6", "runtime": None, "bindings": "13.0.1"}, "pip install 'cuda-python>=12.0,<13'"),
    ({"driver": None, "runtime": None, "bindings": "12.6.2"}, "no CUDA driver"),
    ({"driver": "12.6", "runtime": "12.6", "bindings": "12.6.2.post1"}, None),
    ({"driver": "13.0", "runtime": "12.9", "bindings": "12.9.10"}, None),  # older bindings on a newer driver: fine
])
def test_driver_and_bindings_versions(versions, says):
    problem = version_problem(versions)
    assert (problem is None) if says is None else (says in problem)


def test_a_probe_that_fails_is_a_row_not_a_crash(monkeypatch):
    def broken(probe):
        raise OSError("sysfs went away")

    monkeypatch.setattr(D, "power_rows", broken)
    rows = rows_by_item(D.inspect())
    assert rows["power"].status == "warn" and "sysfs went away" in rows["power"].value
    assert "backend onnxruntime" in rows  # the probes after it still ran
