"""Loading a TensorRT engine: the sidecar checked first, then the bytes handed to TensorRT.

``EngineFromFile(path)`` is a loader in Polygraphy's sense: nothing is read or
imported until it is called (by the runner's ``activate()``). It refuses an
engine built by another TensorRT version, for another GPU, or changed since
its build, or on another Jetson module (sidecar version 2), *before* deserializing it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from edge_snn.errors import UserError
from edge_snn.runtime.backends.trt.build import import_tensorrt
from edge_snn.runtime.backends.trt.cuda import gpu_info
from edge_snn.runtime.backends.trt.sidecar import check_engine_compatible, read_sidecar
from edge_snn.runtime.contract import ModelContract, read_contract
from edge_snn.runtime.platform_info import this_module


def _missing_engine(path: Path) -> UserError:
    return UserError(f"engine file {path} does not exist; build one with `edge-snn build MODEL.onnx -o {path.name}`")


def engine_contract(path) -> ModelContract:
    """The :class:`ModelContract` of a TensorRT engine, from the ONNX metadata stored in its sidecar."""
    if not Path(path).is_file():
        raise _missing_engine(Path(path))
    sidecar = read_sidecar(path)
    return read_contract(sidecar["metadata"], source=f"{path} (sidecar)")


@dataclass
class LoadedEngine:
    """What :class:`EngineFromFile` returns; the runner owns it (context before engine before runtime)."""

    trt: object
    runtime: object
    engine: object
    sidecar: dict


class EngineFromFile:
    """Loader: ``EngineFromFile(path)()`` is a deserialized engine whose sidecar matches this machine."""

    def __init__(self, path):
        self.path = str(path)

    def __call__(self) -> LoadedEngine:
        trt = import_tensorrt()
        path = Path(self.path)
        if not path.is_file():
            raise _missing_engine(path)
        sidecar = read_sidecar(path)
        blob = path.read_bytes()
        gpu_name, capability = gpu_info()
        check_engine_compatible(sidecar, trt_version=trt.__version__, gpu_name=gpu_name,
                                compute_capability=capability, engine_sha256=hashlib.sha256(blob).hexdigest(),
                                engine_path=path, module=this_module())
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        dla_core = sidecar.get("flags", {}).get("dla_core")
        if dla_core is not None:
            runtime.DLA_core = int(dla_core)
        engine = runtime.deserialize_cuda_engine(blob)
        if engine is None:
            raise UserError(f"TensorRT could not deserialize {path} (see its log above); rebuild it with `edge-snn build`")
        return LoadedEngine(trt, runtime, engine, sidecar)
