"""``edge-snn selftest`` on the shipped fixture: torch-free, absent backends skipped with their reason, damage caught."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edge_snn.errors import UserError
from edge_snn.runtime import selftest as S
from torch_blocking import run_blocked

pytestmark = pytest.mark.runtime


def test_selftest_runs_without_torch_and_reports_absent_backends_as_skipped(tmp_path):
    out = tmp_path / "report"
    result = run_blocked(f"""
        import sys
        from edge_snn.cli import main
        sys.argv = ["edge-snn", "selftest", "--target", "agx-orin-64gb", "-o", {str(out)!r}, "--seconds", "0.2"]
        try:
            main()
        except SystemExit as e:
            assert e.code in (0, None), e.code
        assert "torch" not in sys.modules
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    report = json.loads((out / "selftest.json").read_text())
    cases = {c["name"]: c for c in report["cases"]}
    assert cases["onnxruntime-cpu fp32"]["status"] == "passed" and cases["onnxruntime-cpu int8"]["status"] == "passed"
    assert cases["onnxruntime-cpu fp32"]["parity"]["spike_count_deviation"] == 0.0  # same arithmetic as PyTorch
    assert cases["onnxruntime-cpu fp32"]["latency_ms"]["n"] >= 5
    from edge_snn.runtime.backends import availability

    sparse = "skipped" if availability()["sparse"] else "passed"  # its kernels load here, or say why not
    assert cases["sparse fp32"]["status"] == sparse and cases["sparse int8"]["status"] == sparse
    for name in ("tensorrt-fp16", "tensorrt-int8"):
        assert cases[name]["status"] == "skipped" and "edge-snn[tensorrt]" in cases[name]["reason"]
    assert cases["check agx-orin-64gb"]["status"] == "passed"
    assert report["summary"]["failed"] == 0 and report["passed"] is True
    markdown = (out / "selftest.md").read_text()
    assert "| tensorrt-fp16 | fp32.onnx | fp16 | skipped |" in markdown
    assert "passed" in result.stdout and "skipped  tensorrt-int8" in result.stdout


def damaged_fixture(tmp_path, *, factor: float):
    """A copy of the fixture whose FP32 graph has its first conv weight scaled by ``factor``."""
    folder = tmp_path / "fixture"
    shutil.copytree(S.fixture_folder(), folder)
    proto = onnx.load(str(folder / "fp32.onnx"))
    first = next(t for t in proto.graph.initializer if t.name.endswith("weight") and len(t.dims) == 4)
    first.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(first) * np.float32(factor), first.name))
    onnx.save(proto, str(folder / "fp32.onnx"))
    return folder


def test_a_damaged_model_fails_its_case_and_the_run(tmp_path):
    report = S.run_selftest(tmp_path / "out", seconds=0, fixture_dir=damaged_fixture(tmp_path, factor=1.5))
    cases = {c["name"]: c for c in report["cases"]}
    assert cases["onnxruntime-cpu fp32"]["status"] == "failed"
    assert "below 0.999" in cases["onnxruntime-cpu fp32"]["reason"]
    assert cases["onnxruntime-cpu fp32"]["parity"]["spike_count_deviation"] > 0.01
    assert cases["onnxruntime-cpu int8"]["status"] == "passed"  # the other graph is intact
    assert cases["sparse fp32"]["status"] in ("failed", "skipped")  # every backend sees the damage
    assert report["passed"] is False


def test_an_undamaged_copy_passes(tmp_path):
    report = S.run_selftest(tmp_path / "out", seconds=0, fixture_dir=damaged_fixture(tmp_path, factor=1.0))
    assert report["passed"] is True


def test_a_missing_fixture_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="missing or damaged.*reinstall edge-snn"):
        S.load_fixture(tmp_path)


def test_an_unknown_target_fails_before_any_work(tmp_path):
    with pytest.raises(UserError, match="unknown"):
        S.run_selftest(tmp_path / "out", target="no-such-board", seconds=0)
    assert not (tmp_path / "out" / "selftest.json").exists()


def test_the_fixture_is_small_and_packaged():
    folder = S.fixture_folder()
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert set(sizes) == {"fixture.json", "fp32.onnx", "int8.onnx", "reference.npz"}
    assert sum(sizes.values()) < 1_000_000
