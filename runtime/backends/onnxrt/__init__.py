"""The ONNX Runtime backend: :class:`SessionFromOnnx` loads, :class:`OnnxRuntimeRunner` runs."""

from edge_snn.runtime.backends.onnxrt.loader import SessionFromOnnx, available_providers
from edge_snn.runtime.backends.onnxrt.runner import OnnxRuntimeRunner

NAME = "onnxruntime"


def availability() -> str | None:
    """None when this backend can run here, else why not (with the install hint)."""
    import importlib.util

    from edge_snn.runtime.backends.onnxrt.loader import INSTALL_HINT

    return None if importlib.util.find_spec("onnxruntime") else INSTALL_HINT


def make_runner(path, **options) -> OnnxRuntimeRunner:
    return OnnxRuntimeRunner(SessionFromOnnx(path, **options))


__all__ = ["NAME", "OnnxRuntimeRunner", "SessionFromOnnx", "availability", "available_providers", "make_runner"]
