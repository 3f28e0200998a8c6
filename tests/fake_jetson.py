"""A file-system root laid out like a Jetson for the device-side probes (doctor, sidecar, selftest).

A plain module (not conftest) so test files import it by name. Only what edge-snn reads is there:
the device-tree model, /proc/meminfo, /etc/nv_tegra_release, one INA3221 chip in sysfs, and an
``nvpmodel`` stand-in on a folder for PATH.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

AGX_ORIN = "NVIDIA Jetson AGX Orin Developer Kit"
ORIN_NX = "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def fake_jetson(root: Path, *, model: str = AGX_ORIN, mem_kib: int = 64_322_136, l4t: str = "R36 (release), REVISION: 4.3",
                power_mode: str = "MAXN", rails: dict[str, tuple[int, int]] | None = None) -> Path:
    """Lay out ``root``; returns the folder holding the ``nvpmodel`` stand-in (put it first on PATH)."""
    _write(root / "proc/device-tree/model", model.encode() + b"\x00")
    _write(root / "proc/meminfo", f"MemTotal:       {mem_kib} kB\nMemFree:        1000 kB\n")
    _write(root / "etc/nv_tegra_release", f"# {l4t}, GCID: 38968081, BOARD: generic, EABI: aarch64\n")
    rails = rails if rails is not None else {"VDD_GPU_SOC": (4984, 640), "VDD_CPU_CV": (4984, 80)}
    device = root / "sys/devices/platform/bus@0/c240000.i2c/i2c-1/1-0040"
    folder = device / "hwmon/hwmon3"
    for n, (label, (mv, ma)) in enumerate(rails.items(), start=1):
        _write(folder / f"in{n}_label", label + "\n")
        _write(folder / f"in{n}_input", f"{mv}\n")
        _write(folder / f"curr{n}_input", f"{ma}\n")
    driver = root / "sys/bus/i2c/drivers/ina3221"
    driver.mkdir(parents=True, exist_ok=True)
    os.symlink(device, driver / "1-0040")
    tools = root / "usr/bin"
    tools.mkdir(parents=True, exist_ok=True)
    nvpmodel = tools / "nvpmodel"
    nvpmodel.write_text(f"#!/bin/sh\necho 'NV Power Mode: {power_mode}'\necho 0\n")
    nvpmodel.chmod(nvpmodel.stat().st_mode | stat.S_IEXEC)
    return tools
