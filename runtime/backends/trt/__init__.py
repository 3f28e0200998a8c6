"""The TensorRT backend: :class:`EngineFromFile` loads (sidecar first), :class:`TensorRTRunner` runs.

Importing this package imports neither TensorRT nor cuda-python; they are
imported when an engine is loaded or built.
"""

from edge_snn.runtime.backends.trt.loader import EngineFromFile, engine_contract
from edge_snn.runtime.backends.trt.runner import DeviceState, TensorRTRunner

NAME = "tensorrt"


def availability() -> str | None:
    """None when TensorRT and cuda-python are importable here, else why not (with the install hint)."""
    import importlib.util

    from edge_snn.runtime.backends.trt.build import TRT_INSTALL_HINT
    from edge_snn.runtime.backends.trt.cuda import CUDA_INSTALL_HINT

    try:
        if importlib.util.find_spec("tensorrt") is None:
            return TRT_INSTALL_HINT
    except ImportError:  # a finder that refuses the name
        return TRT_INSTALL_HINT
    try:
        found = importlib.util.find_spec("cuda.bindings") or importlib.util.find_spec("cuda.cudart")
    except ImportError:  # no `cuda` package at all (ModuleNotFoundError), or a refusing finder
        found = None
    return None if found else CUDA_INSTALL_HINT


def make_runner(path, **options) -> TensorRTRunner:
    return TensorRTRunner(EngineFromFile(path), **options)


__all__ = ["NAME", "DeviceState", "EngineFromFile", "TensorRTRunner", "availability",
           "engine_contract", "make_runner"]
