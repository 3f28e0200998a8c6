"""INA3221 rails and nvpmodel, read from sysfs trees laid out like real Jetsons."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_snn.runtime.power.jetson import (
    JetsonRails,
    PowerMode,
    find_rails,
    parse_nvpmodel_query,
    read_power_mode,
    total_rule,
    total_watts,
)

pytestmark = pytest.mark.runtime


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def hwmon_chip(sys_root: Path, bus_addr: str, hwmon: str, channels: dict[int, tuple[str, int, int]]) -> Path:
    """One INA3221 as JetPack 5/6 shows it: the device under /sys/devices, linked from the driver.

    ``channels``: N -> (label, millivolts, milliamps). The shunt-voltage files
    in4..6 and the "sum of shunt voltages" in7 exist too, as on a real module.
    """
    device = sys_root / "devices/platform/bus@0/c240000.i2c/i2c-1" / bus_addr
    folder = device / "hwmon" / hwmon
    _write(folder / "name", "ina3221")
    for n, (label, mv, ma) in channels.items():
        _write(folder / f"in{n}_label", label)
        _write(folder / f"in{n}_input", str(mv))
        _write(folder / f"curr{n}_input", str(ma))
        _write(folder / f"in{n + 3}_input", "1200")  # shunt voltage, uV: not a rail
    _write(folder / "in7_label", "sum of shunt voltages")
    _write(folder / "in7_input", "3600")
    driver = sys_root / "bus/i2c/drivers/ina3221"
    driver.mkdir(parents=True, exist_ok=True)
    os.symlink(device, driver / bus_addr)
    return folder


def agx_orin(sys_root: Path) -> None:
    hwmon_chip(sys_root, "1-0040", "hwmon3", {1: ("VDD_GPU_SOC", 4984, 640), 2: ("VDD_CPU_CV", 4984, 80),
                                              3: ("VIN_SYS_5V0", 4968, 568)})
    hwmon_chip(sys_root, "1-0041", "hwmon4", {1: ("NC", 0, 0), 2: ("VDDQ_VDD2_1V8AO", 4976, 220),
                                              3: ("NC", 0, 0)})


def orin_nx(sys_root: Path) -> None:
    hwmon_chip(sys_root, "1-0040", "hwmon1", {1: ("VDD_IN", 5000, 1000), 2: ("VDD_CPU_GPU_CV", 5000, 250),
                                              3: ("VDD_SOC", 5000, 300)})


def test_agx_orin_rails_are_volts_times_amps_and_nc_is_skipped(tmp_path):
    agx_orin(tmp_path)
    rails = JetsonRails.discover(tmp_path)
    assert rails.names == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]
    watts = rails.read()
    assert watts["VDD_GPU_SOC"] == pytest.approx(4.984 * 0.640)
    assert watts["VIN_SYS_5V0"] == pytest.approx(4.968 * 0.568)
    # no module input rail on AGX Orin: the total is the sum
    assert rails.read_total() == pytest.approx(4.984 * 0.640 + 4.984 * 0.080 + 4.968 * 0.568 + 4.976 * 0.220)
    assert total_rule(rails.names).startswith("sum of VDD_GPU_SOC")


def test_orin_nx_total_is_the_input_rail_not_the_sum(tmp_path):
    orin_nx(tmp_path)
    rails = JetsonRails.discover(tmp_path)
    assert rails.names == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert rails.read_total() == pytest.approx(5.0)
    assert total_watts({"VDD_IN": 7.0, "VDD_SOC": 2.0}) == 7.0
    assert total_rule(rails.names) == "VDD_IN (module input rail)"


def test_a_rail_that_cannot_be_read_is_left_out(tmp_path):
    folder = hwmon_chip(tmp_path, "1-0040", "hwmon1", {1: ("VDD_IN", 5000, 1000), 2: ("VDD_SOC", 5000, 300)})
    _write(folder / "in2_input", "")  # a channel the driver reports as having no data
    assert [r.name for r in find_rails(tmp_path)] == ["VDD_IN"]


def test_old_l4t_iio_layout_reads_milliwatts(tmp_path):
    device = tmp_path / "bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    for n, (name, mw) in enumerate([("POM_5V_IN", 4100), ("POM_5V_GPU", 600), ("POM_5V_CPU", 900)]):
        _write(device / f"rail_name_{n}", name)
        _write(device / f"in_power{n}_input", str(mw))
        _write(device / f"in_voltage{n}_input", "5000")
        _write(device / f"in_current{n}_input", str(mw // 5))
    rails = JetsonRails.discover(tmp_path)
    assert rails.read() == pytest.approx({"POM_5V_IN": 4.1, "POM_5V_GPU": 0.6, "POM_5V_CPU": 0.9})
    assert rails.read_total() == pytest.approx(4.1)


def test_no_monitor_means_no_rails(tmp_path):
    assert JetsonRails.discover(tmp_path) is None


@pytest.mark.parametrize("text, mode", [
    ("NV Power Mode: MAXN\n0\n", PowerMode("MAXN", 0)),
    ("NVPM WARN: fan mode is not set!\nNV Power Mode: 15W\n0\n", PowerMode("15W", 0)),
    ("NV Power Mode: MAXN_SUPER\n2\n", PowerMode("MAXN_SUPER", 2)),
    ("NV Power Mode: 25W\n", PowerMode("25W", None)),
    ("nvpmodel: command failed\n", None),
])
def test_parse_nvpmodel_query(text, mode):
    assert parse_nvpmodel_query(text) == mode


def test_read_power_mode_runs_the_tool_and_tolerates_its_absence(tmp_path):
    tool = tmp_path / "nvpmodel"
    tool.write_text('#!/bin/sh\n[ "$1" = "-q" ] || exit 3\nprintf "NV Power Mode: 15W\\n0\\n"\n')
    tool.chmod(0o755)
    assert read_power_mode(str(tool)) == PowerMode("15W", 0)
    assert read_power_mode(str(tmp_path / "missing-nvpmodel")) is None
