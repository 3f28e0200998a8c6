"""Power rails of a Jetson module, read from its INA3221 monitors in sysfs, and its power mode.

Every Jetson Orin module carries TI INA3221 three-channel monitors on I2C. Under
JetPack 5 and 6 the mainline ``ina3221`` hwmon driver exposes each channel as

    /sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmonK/
        in{N}_label    rail name ("VDD_IN", ...; "NC" when not connected)
        in{N}_input    bus voltage, millivolts
        curr{N}_input  current, milliamps

so the power of a rail is ``P [W] = U [mV] * I [mA] / 1e6``. Files without a
matching ``curr{N}_input`` (the shunt voltages in4..6, the "sum of shunt
voltages" in7) are not rails and are skipped. Older L4T (the ``ina3221x`` IIO
driver of JetPack 4) exposes ``iio:deviceK/rail_name_{N}`` and
``in_power{N}_input`` (milliwatts) instead; both layouts are read.

Rails by module (NVIDIA's Jetson Linux developer guide, "Platform Power and
Performance"):

    Orin NX / Orin Nano   VDD_IN, VDD_CPU_GPU_CV, VDD_SOC
    AGX Orin              VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0, VDDQ_VDD2_1V8AO

What "total" means, the one decision here: where a module-input rail exists
(``VDD_IN`` on NX/Nano, ``POM_5V_IN`` on the first Nano) it already contains
every other rail, so the total *is* that rail and summing would count the CPU,
GPU and SoC twice. AGX Orin has no input rail: its rails feed separate domains,
so its total is their sum. Neither includes the carrier board (fan, USB,
NVMe), which no on-module sensor sees; a meter at the wall reads more.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Rails that measure the whole module input; the first one found is the total.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")

#: Labels the device tree gives to channels that are not wired.
UNCONNECTED = ("NC", "")

_HWMON_DRIVERS = ("bus/i2c/drivers/ina3221",)
_IIO_DRIVERS = ("bus/i2c/drivers/ina3221x",)


@dataclass(frozen=True)
class Rail:
    """One monitored supply: where its numbers live and how to turn them into watts."""

    name: str
    voltage_mv: Path | None  # hwmon layout: in{N}_input
    current_ma: Path | None  # hwmon layout: curr{N}_input
    power_mw: Path | None = None  # IIO layout: in_power{N}_input

    def watts(self) -> float:
        if self.power_mw is not None:
            return _read_number(self.power_mw) / 1e3
        return _read_number(self.voltage_mv) * _read_number(self.current_ma) / 1e6


def _read_number(path: Path) -> float:
    return float(path.read_text().strip())


def _read_label(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _hwmon_rails(hwmon: Path) -> list[Rail]:
    rails = []
    for label_file in sorted(hwmon.glob("in*_label")):
        match = re.fullmatch(r"in(\d+)_label", label_file.name)
        if match is None:
            continue
        n = match.group(1)
        name = _read_label(label_file)
        voltage, current = hwmon / f"in{n}_input", hwmon / f"curr{n}_input"
        if name is None or name in UNCONNECTED or not voltage.is_file() or not current.is_file():
            continue
        rails.append(Rail(name, voltage, current))
    return rails


def _iio_rails(device: Path) -> list[Rail]:
    rails = []
    for label_file in sorted(device.glob("rail_name_*")):
        n = label_file.name.rsplit("_", 1)[-1]
        name = _read_label(label_file)
        power = device / f"in_power{n}_input"
        if name is None or name in UNCONNECTED or not power.is_file():
            continue
        rails.append(Rail(name, None, None, power_mw=power))
    return rails


def find_rails(root: str | Path = "/sys") -> list[Rail]:
    """All connected INA3221 rails under ``root`` (a sysfs mount), readable now, in a stable order.

    A rail whose files exist but cannot be read (permissions, a channel the driver
    reports as disabled) is left out rather than failing later inside a timed run.
    """
    root = Path(root)
    found: list[Rail] = []
    for driver in _HWMON_DRIVERS:
        for hwmon in sorted((root / driver).glob("*/hwmon/hwmon*")):
            found += _hwmon_rails(hwmon)
    for driver in _IIO_DRIVERS:
        for device in sorted((root / driver).glob("*/iio:device*")):
            found += _iio_rails(device)
    readable, seen = [], set()
    for rail in found:
        if rail.name in seen:
            continue  # the same chip reached through two sysfs paths
        try:
            rail.watts()
        except (OSError, ValueError):
            continue
        readable.append(rail)
        seen.add(rail.name)
    return readable


def total_watts(rails: Mapping[str, float]) -> float:
    """Module power from one reading: the input rail where there is one, else the sum (see module doc)."""
    for name in INPUT_RAILS:
        if name in rails:
            return rails[name]
    return float(sum(rails.values()))


def total_rule(rail_names: list[str] | tuple[str, ...]) -> str:
    """The rule ``total_watts`` applies to these rails, in words, for reports."""
    for name in INPUT_RAILS:
        if name in rail_names:
            return f"{name} (module input rail)"
    return "sum of " + " + ".join(rail_names) + " (no module input rail)"


class JetsonRails:
    """The INA3221 rails of this module; ``read()`` gives ``{rail: watts}`` at this instant."""

    def __init__(self, rails: list[Rail]):
        self.rails = list(rails)

    @classmethod
    def discover(cls, root: str | Path = "/sys") -> "JetsonRails | None":
        """The rails under ``root``, or None where there are none (not a Jetson, or no permission)."""
        rails = find_rails(root)
        return cls(rails) if rails else None

    @property
    def names(self) -> list[str]:
        return [rail.name for rail in self.rails]

    def read(self) -> dict[str, float]:
        return {rail.name: rail.watts() for rail in self.rails}

    def read_total(self) -> float:
        return total_watts(self.read())


@dataclass(frozen=True)
class PowerMode:
    """The nvpmodel mode in force: it caps clocks and cores, so every energy number must carry it."""

    name: str
    id: int | None


def parse_nvpmodel_query(text: str) -> PowerMode | None:
    """Parse ``nvpmodel -q``: a line ``NV Power Mode: <name>``, then the mode id on a line of its own.

    Warning lines (``NVPM WARN: ...``) may come first; they are ignored.
    """
    name_match = re.search(r"^\s*NV Power Mode\s*:\s*(\S+)\s*$", text, re.MULTILINE)
    if name_match is None:
        return None
    id_match = re.search(r"^\s*(\d+)\s*$", text[name_match.end():], re.MULTILINE)
    return PowerMode(name_match.group(1), int(id_match.group(1)) if id_match else None)


def read_power_mode(executable: str = "nvpmodel", *, timeout_s: float = 5.0) -> PowerMode | None:
    """Run ``nvpmodel -q``; None where the tool is missing, fails or prints something else."""
    path = shutil.which(executable)
    if path is None:
        return None
    try:
        done = subprocess.run([path, "-q"], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvpmodel_query(done.stdout) if done.returncode == 0 else None
