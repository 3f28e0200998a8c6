"""The machine a benchmark ran on: CPU, GPU, Jetson board and power mode, library versions, peak memory."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

RSS_NOTE = ("getrusage ru_maxrss: high-water resident set of this whole process since it started "
            "(Python, libraries, model, runtime arenas, buffers); device memory of a discrete GPU is not in it")


def peak_rss_mib() -> float:
    """``ru_maxrss`` of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def _first_line(path: str, keys: tuple[str, ...]) -> str | None:
    try:
        for line in Path(path).read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in keys and value.strip():
                return value.strip()
    except OSError:
        pass
    return None


def collect_environment() -> dict:
    """Machine, CPU, GPU, Jetson power mode and library versions (versions from metadata: nothing is imported)."""
    from edge_snn.runtime.power import read_power_mode

    from edge_snn.runtime.platform_info import device_model

    board = device_model()
    gpu = None
    if shutil.which("nvidia-smi"):
        try:
            done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=10, check=False)
            gpu = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            gpu = None
    if gpu is None and board and "jetson" in board.lower():
        gpu = f"integrated ({board})"
    libraries = {}
    for dist in ("numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "torch", "edge-snn"):
        try:
            libraries[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    mode = read_power_mode()
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {
        "platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
        "cpu": _first_line("/proc/cpuinfo", ("model name", "Hardware", "Model")) or platform.processor() or None,
        "cpu_count": os.cpu_count(), "load_average_1_5_15": load, "board": board, "gpu": gpu,
        "power_mode": None if mode is None else {"name": mode.name, "id": mode.id},
        "libraries": libraries,
    }
