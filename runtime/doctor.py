"""``edge-snn doctor``: what this machine has for edge-snn, and what is wrong, each with its fix.

One row per thing a deployment depends on: Python and platform, numpy/onnx/onnxruntime (and
its providers; both the ``onnxruntime`` and ``onnxruntime-gpu`` distributions installed is the
classic Jetson breakage: they share one module, the last one installed wins), TensorRT, CUDA
driver vs the cuda-python bindings, the Jetson module (device tree, L4T, ``nvpmodel -q``), DLA
cores, power sensors (INA3221 rails, tegrastats, NVML, RAPL), torch (present or not: the device
side never needs it) and every backend's ``availability()``.

Torch-free, and nothing here may fail the inspection: a probe that raises becomes a ``warn``
row saying what could not be read. Status: ``ok``, ``warn`` (works, but not as intended, or a
fix is advised), ``absent`` (not installed / not on this machine; the fix says how to get it
where it matters), ``info``.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from edge_snn.runtime import platform_info

STATUSES = ("ok", "warn", "absent", "info")
SCHEMA = "edge-snn.doctor/1"


@dataclass(frozen=True)
class Row:
    """One finding: what (``item``), what was found (``value``), how good it is, and what to do."""

    item: str
    value: str
    status: str = "ok"
    fix: str = ""


@dataclass(frozen=True)
class Probe:
    """Where to look: the file system root (``/``; a folder in tests) and the tools' names."""

    root: str = "/"
    nvpmodel: str = "nvpmodel"
    tegrastats: str = "tegrastats"

    @property
    def sys(self) -> Path:
        return Path(self.root, "sys")


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# --- the probes ------------------------------------------------------------------
def python_rows(probe: Probe) -> list[Row]:
    version = platform.python_version()
    ok = sys.version_info >= (3, 10)
    return [Row("python", f"{version} ({sys.executable})", "ok" if ok else "warn",
                "" if ok else "edge-snn needs Python 3.10 or newer (JetPack 6 ships 3.10)"),
            Row("platform", f"{platform.system()} {platform.machine()} ({platform.platform()})", "info")]


def library_rows(probe: Probe) -> list[Row]:
    rows = []
    for name, why in (("numpy", "pip install numpy"), ("onnx", "pip install onnx")):
        version = _dist_version(name)
        rows.append(Row(name, version or "not installed", "ok" if version else "absent",
                        "" if version else f"{why} (reinstall edge-snn)"))
    return rows


def onnxruntime_rows(probe: Probe, module: platform_info.Module) -> list[Row]:
    from edge_snn.runtime.backends.onnxrt.loader import INSTALL_HINT

    cpu, gpu = _dist_version("onnxruntime"), _dist_version("onnxruntime-gpu")
    rows = []
    dists = ", ".join(f"{n} {v}" for n, v in (("onnxruntime", cpu), ("onnxruntime-gpu", gpu)) if v) or "none"
    if cpu and gpu:
        rows.append(Row("onnxruntime distributions", dists, "warn",
                        "both install the same `onnxruntime` module and the last one wins: pip uninstall -y "
                        "onnxruntime onnxruntime-gpu, then reinstall only onnxruntime-gpu (NVIDIA's wheel on a Jetson)"))
    else:
        rows.append(Row("onnxruntime distributions", dists, "ok" if (cpu or gpu) else "absent",
                        "" if (cpu or gpu) else INSTALL_HINT))
    if not _installed("onnxruntime"):
        return rows
    try:
        import onnxruntime as ort

        providers = list(ort.get_available_providers())
        version = ort.__version__
    except Exception as err:  # a broken install raises anything at import
        return rows + [Row("onnxruntime providers", f"import failed: {type(err).__name__}: {err}", "warn",
                           "reinstall onnxruntime (or NVIDIA's onnxruntime-gpu on a Jetson)")]
    gpu_providers = [p for p in providers if p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")]
    if module.is_jetson and not gpu_providers:
        rows.append(Row("onnxruntime providers", f"{version}: {', '.join(providers)}", "warn",
                        "this Jetson runs ONNX Runtime on the CPU only: install NVIDIA's onnxruntime-gpu wheel for "
                        "your JetPack (docs/jetson.md) after pip uninstall -y onnxruntime"))
    else:
        rows.append(Row("onnxruntime providers", f"{version}: {', '.join(providers)}", "ok"))
    return rows


def _tensorrt():
    """The tensorrt module, or None when it is absent or does not load (the DLA probe needs it)."""
    if not _installed("tensorrt"):
        return None
    try:
        import tensorrt
    except Exception:
        return None
    return tensorrt


def tensorrt_rows(probe: Probe, module: platform_info.Module) -> list[Row]:
    """TensorRT's version, or its install hint."""
    from edge_snn.runtime.backends.trt.build import TRT_INSTALL_HINT

    if not _installed("tensorrt"):
        return [Row("tensorrt", "not installed", "absent", TRT_INSTALL_HINT)]
    try:
        import tensorrt as trt
    except Exception as err:
        return [Row("tensorrt", f"import failed: {type(err).__name__}: {err}", "warn",
                    "TensorRT's libraries do not load: on a Jetson reinstall python3-libnvinfer (JetPack), on a PC "
                    "pip install 'edge-snn[tensorrt]'")]
    return [Row("tensorrt", trt.__version__, "ok")]


def cuda_rows(probe: Probe) -> list[Row]:
    from edge_snn.runtime.backends.trt.cuda import (CUDA_INSTALL_HINT, cuda_versions, describe_versions, gpu_info,
                                                    version_problem)

    if not (_installed("cuda.bindings") or _installed("cuda.cudart")):
        return [Row("cuda-python", "not installed", "absent", CUDA_INSTALL_HINT)]
    versions = cuda_versions()
    problem = version_problem(versions)
    rows = [Row("cuda driver / bindings", describe_versions(versions), "warn" if problem else "ok", problem or "")]
    if problem is None:
        try:
            name, capability = gpu_info()
            rows.append(Row("gpu", f"{name}, compute capability {capability}", "ok"))
        except Exception as err:  # UserError from gpu_info, or anything the driver throws
            rows.append(Row("gpu", str(err), "warn", "check the NVIDIA driver (nvidia-smi on a PC, JetPack on a Jetson)"))
    return rows


def module_rows(probe: Probe, module: platform_info.Module) -> list[Row]:
    from edge_snn.runtime.power import read_power_mode

    memory = f"{module.memory_bytes / 2**30:.1f} GiB" if module.memory_bytes else "unknown"
    if not module.is_jetson:
        return [Row("jetson module", f"not a Jetson ({module.model or 'no device-tree model'}; memory {memory})", "info")]
    l4t = platform_info.l4t_release(probe.root)
    jetpack = platform_info.jetpack_major(l4t)
    rows = [Row("jetson module", f"{module.model}; memory {memory}", "ok")]
    if jetpack == "6":
        rows.append(Row("jetpack", f"L4T {l4t} (JetPack 6)", "ok"))
    else:
        rows.append(Row("jetpack", f"L4T {l4t or 'unknown'} (JetPack {jetpack or 'unknown'})", "warn",
                        "edge-snn's Jetson profiles and pins are for JetPack 6 (L4T R36): upgrade with NVIDIA's SDK Manager"))
    target = platform_info.suggest_target(module)
    if target:
        rows.append(Row("target profile", target, "info", f"edge-snn check MODEL --target {target}"))
    mode = read_power_mode(probe.nvpmodel)
    rows.append(Row("power mode", f"{mode.name} (id {mode.id})" if mode else "unknown", "ok" if mode else "warn",
                    "" if mode else "nvpmodel -q did not answer: run as a user allowed to (or with sudo) to record it"))
    return rows


def dla_rows(probe: Probe, module: platform_info.Module, trt) -> list[Row]:
    target = platform_info.suggest_target(module)
    expected = None
    if target:
        from edge_snn.targets import load_target

        expected = load_target(target).dla.cores
    if trt is None:
        if module.is_jetson:
            return [Row("dla cores", f"unknown without TensorRT (profile {target}: {expected})", "info")]
        return [Row("dla cores", "none (no Jetson)", "info")]
    try:
        cores = int(trt.Builder(trt.Logger(trt.Logger.ERROR)).num_DLA_cores)
    except Exception as err:
        return [Row("dla cores", f"TensorRT could not create a builder: {type(err).__name__}: {err}", "warn",
                    "see the cuda row above")]
    if expected is not None and cores != expected:
        return [Row("dla cores", f"{cores} (profile {target} says {expected})", "warn",
                    "the module is not the one its model string suggests: pass --target with the right profile")]
    return [Row("dla cores", str(cores), "ok" if cores else "info")]


def power_rows(probe: Probe) -> list[Row]:
    from edge_snn.runtime.power import JetsonRails, NvmlEnergy, RaplCounters
    from edge_snn.runtime.power.tegrastats import find_tegrastats

    rails = JetsonRails.discover(probe.sys)
    rows = [Row("power: INA3221 rails", ", ".join(rails.names) if rails else "none", "ok" if rails else "absent",
                "" if rails else "only on a Jetson; readable by root or the rails' group")]
    tegrastats = find_tegrastats(probe.tegrastats)
    rows.append(Row("power: tegrastats", tegrastats or "not found", "ok" if tegrastats else "absent",
                    "" if tegrastats else "only on a Jetson (part of L4T)"))
    nvml = NvmlEnergy.open()
    if nvml is not None:
        nvml.close()
    rows.append(Row("power: NVML energy", "GPU energy counter" if nvml else "not available", "ok" if nvml else "absent",
                    "" if nvml else "discrete NVIDIA GPUs with pynvml (pip install nvidia-ml-py); not on Jetson"))
    rapl = RaplCounters.discover(probe.sys)
    rows.append(Row("power: RAPL", ", ".join(z.name for z in rapl.zones) if rapl else "not readable",
                    "ok" if rapl else "absent", "" if rapl else "x86 CPUs; /sys/class/powercap/*/energy_uj readable by root"))
    return rows


def torch_rows(probe: Probe) -> list[Row]:
    version = _dist_version("torch")
    return [Row("torch", f"{version} (training side only)" if version else "absent (fine: the device side never "
                "imports it)", "info")]


def backend_rows(probe: Probe, shown: list[Row] = ()) -> list[Row]:
    """One row per backend; a reason already given as an earlier row's fix points there instead of repeating it."""
    from edge_snn.runtime.backends import availability

    fixed_by = {r.fix: r.item for r in shown if r.fix}
    return [Row(f"backend {name}", "available" if why is None else "unavailable", "ok" if why is None else "absent",
                "" if why is None else f"see {fixed_by[why]} above" if why in fixed_by else why)
            for name, why in availability().items()]


# --- the report -------------------------------------------------------------------
def _guarded(name: str, fn: Callable[[], list[Row]]) -> list[Row]:
    try:
        return fn()
    except Exception as err:  # a probe must never end the inspection
        return [Row(name, f"could not inspect: {type(err).__name__}: {err}", "warn", "report this as an edge-snn bug")]


def inspect(probe: Probe | None = None) -> list[Row]:
    """Every row, in screen order."""
    probe = probe or Probe()
    module = platform_info.this_module(probe.root)
    rows = _guarded("python", lambda: python_rows(probe))
    rows += _guarded("libraries", lambda: library_rows(probe))
    rows += _guarded("onnxruntime", lambda: onnxruntime_rows(probe, module))
    rows += _guarded("tensorrt", lambda: tensorrt_rows(probe, module))
    rows += _guarded("cuda", lambda: cuda_rows(probe))
    rows += _guarded("jetson module", lambda: module_rows(probe, module))
    rows += _guarded("dla cores", lambda: dla_rows(probe, module, _tensorrt()))
    rows += _guarded("power", lambda: power_rows(probe))
    rows += _guarded("torch", lambda: torch_rows(probe))
    rows += _guarded("backends", lambda: backend_rows(probe, rows))
    return rows


def to_json(rows: list[Row]) -> dict:
    problems = sum(r.status == "warn" for r in rows)
    return {"schema": SCHEMA, "problems": problems, "rows": [asdict(r) for r in rows]}


def render(rows: list[Row], console) -> None:
    """A rich table on ``console``: item, status, found, fix."""
    from rich.markup import escape
    from rich.table import Table

    colors = {"ok": "green", "warn": "yellow", "absent": "dim", "info": "cyan"}
    table = Table(title="edge-snn doctor", show_lines=False, expand=False)
    for column in ("item", "status", "found", "fix"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(escape(r.item), f"[{colors[r.status]}]{r.status}[/]", escape(r.value), escape(r.fix))
    console.print(table)
    problems = [r for r in rows if r.status == "warn"]
    console.print(escape(f"{len(problems)} problem(s)" + (": " + ", ".join(r.item for r in problems) if problems else "")))
