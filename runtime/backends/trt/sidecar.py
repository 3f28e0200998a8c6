"""The engine sidecar ``<engine>.json``: what an engine was built from, by what, for which GPU.

A serialized engine is only valid for the TensorRT version and the GPU it was
built on, and it forgets the ONNX metadata. So every engine gets a sidecar
holding the TensorRT version, GPU name and compute capability, SHA-256 of the
ONNX file and of the engine, the build flags, and the ONNX ``metadata_props``
dict: the runtime reads the model contract from it and refuses a stale or
foreign engine *before* deserializing it (:func:`check_engine_compatible`).
Plain Python, tested without a GPU.

Version 2 adds ``device``: the board's device-tree model and total memory
(:mod:`edge_snn.runtime.platform_info`). Every Orin (Nano, NX, AGX) reports the
GPU name "Orin" and compute capability 8.7, so only these tell an engine built
on an Orin NX from one built on an AGX Orin; a different model string, or a
total memory more than 10% away, is refused. A version 1 sidecar (no
``device``) is refused on a Jetson, where the module cannot be confirmed and
engines are specific to it, and accepted with a warning elsewhere (desktop
GPUs have distinct names); rebuilding writes version 2.
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path

from edge_snn.errors import UserError
from edge_snn.runtime.files import write_json_atomic
from edge_snn.runtime.platform_info import Module, same_memory_class

SIDECAR_FORMAT = "edge-snn-trt-engine"
SIDECAR_VERSION = 2


def sidecar_path(engine_path: str | os.PathLike) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    return Path(str(engine_path) + ".json")


def format_capability(capability) -> str:
    """``(8, 7)``, ``"8.7"`` or ``8.7`` -> ``"8.7"``."""
    if isinstance(capability, (tuple, list)):
        return f"{int(capability[0])}.{int(capability[1])}"
    return str(capability)


def make_sidecar(*, onnx_path, engine_path, model_sha256: str, engine_sha256: str, trt_version: str,
                 gpu_name: str, compute_capability, flags: dict, metadata: dict[str, str],
                 build_seconds: float = 0.0, module: Module | None = None) -> dict:
    """The sidecar dict (see the module docstring for what each field is for)."""
    return {
        "format": SIDECAR_FORMAT,
        "sidecar_version": SIDECAR_VERSION,
        "engine": Path(engine_path).name,
        "engine_sha256": engine_sha256,
        "model": Path(onnx_path).name,
        "model_sha256": model_sha256,
        "tensorrt_version": str(trt_version),
        "gpu": {"name": str(gpu_name), "compute_capability": format_capability(compute_capability)},
        "device": {"model": module.model if module else None, "memory_bytes": module.memory_bytes if module else None},
        "flags": dict(flags),
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(float(build_seconds), 3),
        "metadata": dict(metadata),
    }


def write_sidecar(engine_path, sidecar: dict) -> Path:
    path = sidecar_path(engine_path)
    write_json_atomic(path, sidecar)
    return path


def read_sidecar(engine_path) -> dict:
    """The sidecar of ``engine_path``, or a UserError saying how to get one."""
    path = sidecar_path(engine_path)
    rebuild = f"rebuild it with `edge-snn build MODEL.onnx -o {Path(engine_path).name}`"
    if not path.is_file():
        raise UserError(f"{engine_path} has no sidecar {path.name} next to it, so its TensorRT version, GPU and "
                        f"model cannot be checked; {rebuild}")
    try:
        sidecar = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"sidecar {path} is unreadable ({err}); {rebuild}") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != SIDECAR_FORMAT:
        raise UserError(f"{path} is not an edge-snn engine sidecar; {rebuild}")
    if int(sidecar.get("sidecar_version", 0)) > SIDECAR_VERSION:
        raise UserError(f"{path} was written by a newer edge-snn (sidecar version {sidecar['sidecar_version']}); "
                        f"upgrade edge-snn or {rebuild}")
    missing = [k for k in ("engine_sha256", "tensorrt_version", "gpu", "metadata") if k not in sidecar]
    if missing:
        raise UserError(f"sidecar {path} lacks {', '.join(missing)}; {rebuild}")
    return sidecar


def _gib(value) -> str:
    return f"{value / 2**30:.1f} GiB" if value else "unknown memory"


def module_mismatches(sidecar: dict, module: Module) -> list[str]:
    """How the board recorded in a version 2 sidecar differs from ``module`` (model string, memory size)."""
    device = sidecar.get("device") or {}
    problems = []
    if device.get("model") != module.model:
        problems.append(f"built on board '{device.get('model') or 'not a Jetson'}', this is "
                        f"'{module.model or 'not a Jetson'}'")
    elif not same_memory_class(device.get("memory_bytes"), module.memory_bytes):
        problems.append(f"built on a module with {_gib(device.get('memory_bytes'))}, this one has "
                        f"{_gib(module.memory_bytes)}")
    return problems


def engine_mismatches(sidecar: dict, *, trt_version: str, gpu_name: str, compute_capability,
                      engine_sha256: str, module: Module | None = None) -> list[str]:
    """What differs between the build recorded in ``sidecar`` and this machine/file (empty: compatible).

    module: this board (None: not checked). A sidecar without ``device`` (version 1) is a
    mismatch on a Jetson and a warning elsewhere (see the module docstring).
    """
    gpu = sidecar.get("gpu", {})
    problems = []
    if module is not None:
        if "device" in sidecar:
            problems += module_mismatches(sidecar, module)
        elif module.is_jetson:
            problems.append("its sidecar (version 1) does not record the Jetson module it was built on, and Orin "
                            "Nano, NX and AGX all report GPU 'Orin' 8.7, so it cannot be confirmed for this "
                            f"'{module.model}'")
        else:
            warnings.warn(f"the sidecar of {sidecar.get('engine', 'this engine')} is version 1 and records no board; "
                          "rebuild the engine to record it", stacklevel=3)
    if sidecar.get("tensorrt_version") != str(trt_version):
        problems.append(f"built with TensorRT {sidecar.get('tensorrt_version')}, this is TensorRT {trt_version}")
    if gpu.get("compute_capability") != format_capability(compute_capability):
        problems.append(f"built for compute capability {gpu.get('compute_capability')}, "
                        f"this GPU is {format_capability(compute_capability)}")
    if gpu.get("name") != str(gpu_name):
        problems.append(f"built on GPU '{gpu.get('name')}', this is '{gpu_name}'")
    if sidecar.get("engine_sha256") != engine_sha256:
        problems.append("the engine file changed since its sidecar was written (SHA-256 differs)")
    return problems


def check_engine_compatible(sidecar: dict, *, trt_version: str, gpu_name: str, compute_capability,
                            engine_sha256: str, engine_path: str | os.PathLike = "the engine",
                            module: Module | None = None) -> None:
    """Raise a UserError listing every mismatch; TensorRT engines are not portable across versions, GPUs or modules."""
    problems = engine_mismatches(sidecar, trt_version=trt_version, gpu_name=gpu_name,
                                 compute_capability=compute_capability, engine_sha256=engine_sha256, module=module)
    if problems:
        model = sidecar.get("model", "MODEL.onnx")
        raise UserError(f"{engine_path} cannot run here: {'; '.join(problems)}. Rebuild it on this device with "
                        f"`edge-snn build {model} -o {Path(str(engine_path)).name}`")
