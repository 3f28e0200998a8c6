"""Target profiles: every shipped TOML loads, names resolve, bad files fail with the file and field named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edge_snn.errors import UserError
from edge_snn.targets import Target, list_targets, load_target
from edge_snn.targets.profiles import profiles_dir

pytestmark = pytest.mark.runtime

SHIPPED = ["agx-orin-64gb", "desktop-cuda", "orin-nano-8gb", "orin-nx-16gb", "x86-cpu"]
ORIN = ["orin-nano-8gb", "orin-nx-16gb", "agx-orin-64gb"]


def test_list_targets_returns_every_shipped_profile_sorted():
    assert [t.name for t in list_targets()] == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_profile_file_name_matches_its_name_field(name):
    t = load_target(name)
    assert t.name == name and t.path == profiles_dir() / f"{name}.toml"


@pytest.mark.parametrize("name", ORIN)
def test_orin_profiles_describe_jetpack6_tensorrt103_python310(name):
    t = load_target(name)
    assert (t.kind, t.jetpack, t.tensorrt, t.python) == ("jetson", "6.2", "10.3", "3.10")
    assert t.defaults.backend == "tensorrt" and t.defaults.precision == "int8"
    # Dense INT8 runs twice the dense FP16 rate on Ampere tensor cores.
    assert t.gpu.int8_dense_tops == pytest.approx(2 * t.gpu.fp16_dense_tflops)
    assert t.gpu.fp32_tflops < t.gpu.fp16_dense_tflops
    assert t.power_modes and all(m.watts > 0 for m in t.power_modes)


def test_dla_cores_per_device():
    assert {n: load_target(n).dla.cores for n in ORIN} == {"orin-nano-8gb": 0, "orin-nx-16gb": 2, "agx-orin-64gb": 2}


def test_documented_agx_orin_numbers():
    t = load_target("agx-orin-64gb")
    assert t.memory.bandwidth_gbps == 204.8 and t.memory.bytes == 64 * 2**30
    # 105 sparse INT8 TOPS for both DLA cores at MAXN -> 26.25 dense per core.
    assert t.dla.int8_dense_tops_per_core == 26.25
    assert t.peak_ops_per_s("gpu", "int8") == pytest.approx(85.5e12)


def test_target_is_frozen():
    t = load_target("orin-nx-16gb")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "other"  # type: ignore[misc]


def test_unknown_name_lists_the_known_targets():
    with pytest.raises(UserError) as err:
        load_target("orin-nanoo")
    message = err.value.format_message()
    assert "orin-nanoo" in message and all(n in message for n in SHIPPED)


def test_user_toml_by_path(tmp_path):
    text = (profiles_dir() / "orin-nx-16gb.toml").read_text().replace('name = "orin-nx-16gb"', 'name = "my-nx"')
    path = tmp_path / "my-nx.toml"
    path.write_text(text)
    t = load_target(str(path))
    assert isinstance(t, Target) and t.name == "my-nx" and t.path == path


def test_missing_user_toml(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_target(tmp_path / "absent.toml")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def test_malformed_toml_names_the_file(tmp_path):
    path = _write(tmp_path, 'name = "x"\nkind = \n')
    with pytest.raises(UserError) as err:
        load_target(path)
    assert str(path) in err.value.format_message() and "not valid TOML" in err.value.format_message()


@pytest.mark.parametrize("field, old, new", [
    ("memory.bandwidth_gbps", "bandwidth_gbps = 204.8", ""),
    ("gpu", "[gpu]", "[gpux]"),
    ("defaults.precision", 'precision = "int8"', 'precision = "int4"'),
    ("dla.cores", "cores = 2", 'cores = "two"'),
    ("python", 'python = "3.10"', ""),
    ("tensorrt", 'tensorrt = "10.3"', 'tensorrt = "ten"'),
])
def test_missing_or_wrong_field_names_file_and_field(tmp_path, field, old, new):
    text = (profiles_dir() / "agx-orin-64gb.toml").read_text()
    assert old in text
    path = _write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(UserError) as err:
        load_target(path)
    message = err.value.format_message()
    assert str(path) in message
    assert f"'{field}'" in message or (field == "gpu" and "'gpux'" in message)


def test_tensorrt_backend_needs_a_tensorrt_version(tmp_path):
    text = (profiles_dir() / "orin-nano-8gb.toml").read_text().replace('tensorrt = "10.3"\n', "")
    with pytest.raises(UserError, match="'tensorrt' is missing"):
        load_target(_write(tmp_path, text))


def test_peak_lookup_errors_are_user_errors():
    nano = load_target("orin-nano-8gb")
    with pytest.raises(UserError, match="no DLA"):
        nano.peak_ops_per_s("dla", "int8")
    with pytest.raises(UserError, match="FP16 or INT8"):
        load_target("agx-orin-64gb").peak_ops_per_s("dla", "fp32")
    with pytest.raises(UserError, match="no GPU"):
        load_target("x86-cpu").peak_ops_per_s("gpu", "fp32")


def test_dla_peaks_follow_nvidia_and_fp16_is_not_made_up():
    agx, nx = load_target("agx-orin-64gb"), load_target("orin-nx-16gb")
    assert agx.dla.int8_dense_tops_per_core == 26.25  # 105 sparse TOPS for 2 DLAs at MAXN, dense per core
    assert nx.dla.int8_dense_tops_per_core == 10.0  # "comparable to AGX Orin at 15W": 40 sparse for 2 DLAs
    for t in (agx, nx):
        assert t.dla.fp16_dense_tflops_per_core is None  # unpublished, and not INT8/2 on Orin
        with pytest.raises(UserError, match="publishes no DLA FP16 peak"):
            t.peak_ops_per_s("dla", "fp16")
    text = (agx.path).read_text()
    assert "Deep-Learning-Accelerator-SW" in text and "fp16_dense_tflops_per_core" not in text.split("[dla]")[1].split("[memory]")[0]
