"""Trapezoid integration, the background sampler and EnergyMeter selection, on fake Jetson sysfs trees."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_snn.errors import UserError
from edge_snn.runtime.power import NOT_MEASURED, PowerSampler, integrate_energy, measure_idle, open_best_meter

pytestmark = pytest.mark.runtime


def orin_nx(sys_root: Path, vdd_in_ma: int = 1000) -> Path:
    """Orin NX INA3221 at 1-0040 as JetPack 6 lays it out; 5 V on every rail."""
    device = sys_root / "devices/platform/bus@0/c240000.i2c/i2c-1/1-0040"
    folder = device / "hwmon/hwmon1"
    folder.mkdir(parents=True)
    for n, (label, ma) in enumerate([("VDD_IN", vdd_in_ma), ("VDD_CPU_GPU_CV", 250), ("VDD_SOC", 300)], 1):
        (folder / f"in{n}_label").write_text(label + "\n")
        (folder / f"in{n}_input").write_text("5000\n")
        (folder / f"curr{n}_input").write_text(f"{ma}\n")
    driver = sys_root / "bus/i2c/drivers/ina3221"
    driver.mkdir(parents=True, exist_ok=True)
    if not (driver / "1-0040").exists():
        os.symlink(device, driver / "1-0040")
    return folder


@pytest.mark.parametrize("times, watts, window, joules", [
    ([0, 1, 3], [2, 4, 0], (None, None), 1 * (2 + 4) / 2 + 2 * (4 + 0) / 2),
    # window inside: ends interpolated, P(0.5) = 3, P(2) = 2
    ([0, 1, 3], [2, 4, 0], (0.5, 2), 0.5 * (3 + 4) / 2 + 1 * (4 + 2) / 2),
    # window past both ends: first and last sample held
    ([0, 1, 3], [2, 4, 0], (-1, 4), 1 * 2 + 7 + 1 * 0),
    ([0], [5], (0, 2), 10),
])
def test_integrate_energy_by_hand(times, watts, window, joules):
    assert integrate_energy(times, watts, t_start=window[0], t_end=window[1]) == pytest.approx(joules)


def test_integrate_energy_rejects_bad_series():
    with pytest.raises(ValueError):
        integrate_energy([0, 2, 1], [1, 1, 1])
    with pytest.raises(ValueError):
        integrate_energy([], [])
    with pytest.raises(ValueError):
        integrate_energy([0, 1], [1, 1], t_start=1, t_end=0)


def test_sampler_brackets_the_window_and_keeps_rails():
    with PowerSampler(lambda: {"A": 1.5, "B": 2.5}, interval_s=0.005) as sampler:
        time.sleep(0.05)
    assert len(sampler.times) >= 2 and sampler.times == sorted(sampler.times)
    span = sampler.times[-1] - sampler.times[0]
    assert sampler.energy() == pytest.approx(4.0 * span)
    assert sampler.rail_energies() == pytest.approx({"A": 1.5 * span, "B": 2.5 * span})


def test_sampler_skips_failed_reads():
    calls = []

    def flaky() -> float:
        calls.append(None)
        if len(calls) % 2 == 0:
            raise OSError("i2c transfer failed")
        return 2.0

    with PowerSampler(flaky, interval_s=0.005) as sampler:
        time.sleep(0.03)
    assert sampler.errors >= 1 and len(sampler.watts) == len(calls) - sampler.errors
    assert sampler.energy() == pytest.approx(2.0 * (sampler.times[-1] - sampler.times[0]))


def test_measure_idle_is_the_mean_power():
    assert measure_idle(lambda: 3.0, 0.03, interval_s=0.005) == pytest.approx(3.0)


def test_jetson_meter_energy_above_idle(tmp_path):
    folder = orin_nx(tmp_path, vdd_in_ma=1000)
    meter = open_best_meter(root=tmp_path, interval_s=0.005)
    assert meter.source == "jetson-ina3221: VDD_IN (module input rail)"
    assert meter.measure_idle(0.03) == pytest.approx(5.0)
    (folder / "curr1_input").write_text("1600\n")  # the work draws 3 W more
    meter.start()
    time.sleep(0.03)
    reading = meter.stop()
    assert reading.samples >= 2 and reading.idle_watts == pytest.approx(5.0)
    assert reading.joules_total == pytest.approx(8.0 * reading.seconds)
    assert reading.joules_above_idle == pytest.approx(3.0 * reading.seconds)
    assert reading.rails["VDD_SOC"] == pytest.approx(1.5 * reading.seconds)
    assert reading.mean_watts == pytest.approx(8.0)


def test_no_sensor_reads_not_measured(tmp_path):
    meter = open_best_meter(root=tmp_path, tegrastats_executable=str(tmp_path / "tegrastats"),
                            candidates=("jetson", "tegrastats", "rapl"))
    assert meter.measure_idle(0.001) is None
    meter.start()
    reading = meter.stop()
    assert reading.source == NOT_MEASURED
    assert reading.joules_total is None and reading.joules_above_idle is None and reading.samples == 0
    assert reading.seconds >= 0


def test_preferred_sensor_missing_or_unknown_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not available"):
        open_best_meter("jetson", root=tmp_path)
    with pytest.raises(UserError, match="unknown power sensor"):
        open_best_meter("wattmeter", root=tmp_path)
    assert open_best_meter("none").source == NOT_MEASURED


def test_meter_lifecycle_misuse_raises(tmp_path):
    orin_nx(tmp_path)
    meter = open_best_meter("jetson", root=tmp_path, interval_s=0.005)
    with pytest.raises(RuntimeError):
        meter.stop()
    meter.start()
    with pytest.raises(RuntimeError):
        meter.start()
    meter.stop()


def test_power_package_never_imports_torch():
    code = ("import sys, edge_snn.runtime.power, edge_snn.runtime.energy_estimate; "
            "bad = [m for m in ('torch', 'brevitas', 'pynvml') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
