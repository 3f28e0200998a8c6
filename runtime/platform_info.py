"""What machine this is, read from files the kernel and JetPack leave (no GPU call, nothing imported).

A TensorRT engine is built for one module: every Orin (Nano, NX, AGX) reports the GPU name "Orin"
and compute capability 8.7, so the GPU alone cannot tell them apart. The device tree's model
string (``/proc/device-tree/model``, e.g. "NVIDIA Jetson AGX Orin Developer Kit") and the total
memory (``MemTotal`` of ``/proc/meminfo``; CPU, GPU and DLA share it on a Jetson) can.
``root`` is the file system root (``/``), a folder in tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DEVICE_TREE_MODEL = "proc/device-tree/model"
MEMINFO = "proc/meminfo"
L4T_RELEASE = "etc/nv_tegra_release"

#: L4T (Jetson Linux) major release -> JetPack major: R36 is JetPack 6, R35 JetPack 5.
L4T_TO_JETPACK = {36: "6", 35: "5", 34: "5", 32: "4"}


@dataclass(frozen=True)
class Module:
    """The board this runs on: device-tree model (None off a Jetson/ARM board) and total memory."""

    model: str | None
    memory_bytes: int | None

    @property
    def is_jetson(self) -> bool:
        return bool(self.model) and "jetson" in self.model.lower()


def device_model(root: str | Path = "/") -> str | None:
    """``/proc/device-tree/model`` without its trailing NUL, or None where there is none (x86 PCs)."""
    try:
        text = Path(root, DEVICE_TREE_MODEL).read_bytes().decode(errors="replace")
    except OSError:
        return None
    return text.strip("\x00\n ") or None


def total_memory_bytes(root: str | Path = "/") -> int | None:
    """``MemTotal`` of ``/proc/meminfo`` in bytes (the kernel reports kB = KiB)."""
    try:
        text = Path(root, MEMINFO).read_text()
    except OSError:
        return None
    found = re.search(r"^MemTotal:\s*(\d+)\s*kB", text, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None


def this_module(root: str | Path = "/") -> Module:
    return Module(device_model(root), total_memory_bytes(root))


def l4t_release(root: str | Path = "/") -> str | None:
    """``R36.4.3`` from ``/etc/nv_tegra_release`` ("# R36 (release), REVISION: 4.3, ..."), None off a Jetson."""
    try:
        text = Path(root, L4T_RELEASE).read_text()
    except OSError:
        return None
    found = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"R{found.group(1)}.{found.group(2)}" if found else None


def jetpack_major(l4t: str | None) -> str | None:
    """The JetPack major release of an L4T release string (``R36.4.3`` -> ``6``)."""
    found = re.match(r"R(\d+)", l4t or "")
    return L4T_TO_JETPACK.get(int(found.group(1))) if found else None


def suggest_target(module: Module) -> str | None:
    """The shipped target profile closest to this module, by model string (None off a Jetson)."""
    if not module.is_jetson:
        return None
    model = module.model.lower()
    if "agx orin" in model:
        return "agx-orin-64gb"
    if "orin nx" in model:
        return "orin-nx-16gb"
    if "orin nano" in model:
        return "orin-nano-8gb"
    return None


def same_memory_class(a: int | None, b: int | None, *, tolerance: float = 0.1) -> bool:
    """Whether two MemTotal values belong to one module size (within 10%: kernels reserve different carve-outs).

    Unknown on either side is not a mismatch (nothing to compare).
    """
    if a is None or b is None:
        return True
    return abs(a - b) <= tolerance * max(a, b)
