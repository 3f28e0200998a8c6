"""RAPL powercap counters, with wraparound, on a fake /sys/class/powercap tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_snn.runtime.power import open_best_meter
from edge_snn.runtime.power.rapl import RaplCounters, counter_delta_uj, find_rapl_zones

pytestmark = pytest.mark.runtime

RANGE = 262_143_328_850  # max_energy_range_uj of a typical package


def zone(sys_root: Path, zone_id: str, name: str, energy_uj: int) -> Path:
    folder = sys_root / "class/powercap" / zone_id
    folder.mkdir(parents=True)
    (folder / "name").write_text(name + "\n")
    (folder / "energy_uj").write_text(f"{energy_uj}\n")
    (folder / "max_energy_range_uj").write_text(f"{RANGE}\n")
    return folder


def host(sys_root: Path) -> tuple[Path, Path]:
    (sys_root / "class/powercap/intel-rapl").mkdir(parents=True)  # the control type, not a zone
    p0 = zone(sys_root, "intel-rapl:0", "package-0", 1_000_000)
    zone(sys_root, "intel-rapl:0:0", "core", 500_000)  # inside package-0: not added again
    p1 = zone(sys_root, "intel-rapl:1", "package-1", RANGE - 250_000)
    return p0, p1


def test_counter_delta_with_and_without_wrap():
    assert counter_delta_uj(100, 350, RANGE) == 250
    assert counter_delta_uj(RANGE - 100, 50, RANGE) == 150


def test_packages_only(tmp_path):
    host(tmp_path)
    assert [z.name for z in find_rapl_zones(tmp_path)] == ["package-0", "package-1"]


def test_zone_without_counter_is_skipped(tmp_path):
    (zone(tmp_path, "intel-rapl:0", "package-0", 0) / "energy_uj").unlink()
    assert RaplCounters.discover(tmp_path) is None


def test_meter_sums_packages_across_a_wrap(tmp_path):
    p0, p1 = host(tmp_path)
    meter = open_best_meter("rapl", root=tmp_path)
    assert meter.source == "rapl: package-0 + package-1"
    meter.start()
    (p0 / "energy_uj").write_text(f"{1_000_000 + 2_000_000}\n")  # +2 J
    (p1 / "energy_uj").write_text("750000\n")  # wrapped: +0.25 J +0.75 J
    reading = meter.stop()
    assert reading.rails == pytest.approx({"package-0": 2.0, "package-1": 1.0})
    assert reading.joules_total == pytest.approx(3.0)
