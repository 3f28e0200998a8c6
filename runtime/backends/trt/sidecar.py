"""The engine sidecar ``<engine>.json``: what an engine was built from, by what, for which GPU.

A serialized engine is only valid for the TensorRT version and the GPU it was
built on, and it forgets the ONNX metadata. So every engine gets a sidecar
holding the TensorRT version, GPU name and compute capability, SHA-256 of the
ONNX file and of the engine, the build flags, and the ONNX ``metadata_props``
dict: the runtime reads the model contract from it and refuses a stale or
foreign engine *before* deserializing it (:func:`check_engine_compatible`).
Plain Python, tested without a GPU.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from edge_snn.errors import UserError
from edge_snn.runtime.files import write_json_atomic

SIDECAR_FORMAT = "edge-snn-trt-engine"
SIDECAR_VERSION = 1


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
                 build_seconds: float = 0.0) -> dict:
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


def engine_mismatches(sidecar: dict, *, trt_version: str, gpu_name: str, compute_capability,
                      engine_sha256: str) -> list[str]:
    """What differs between the build recorded in ``sidecar`` and this machine/file (empty: compatible)."""
    gpu = sidecar.get("gpu", {})
    problems = []
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
                            engine_sha256: str, engine_path: str | os.PathLike = "the engine") -> None:
    """Raise a UserError listing every mismatch; TensorRT engines are not portable across versions or GPUs."""
    problems = engine_mismatches(sidecar, trt_version=trt_version, gpu_name=gpu_name,
                                 compute_capability=compute_capability, engine_sha256=engine_sha256)
    if problems:
        model = sidecar.get("model", "MODEL.onnx")
        raise UserError(f"{engine_path} cannot run here: {'; '.join(problems)}. Rebuild it on this device with "
                        f"`edge-snn build {model} -o {Path(str(engine_path)).name}`")
