"""Backends, one folder each (a loader and a runner behind :class:`~edge_snn.runtime.backends.base.Runner`).

``make_runner(path, backend)`` is the only place that maps a backend name to
its folder; a new backend is a folder plus one line in :data:`BACKENDS`. Each
backend package provides ``NAME``, ``availability()`` (None, or why it cannot
run here with the install hint) and ``make_runner(path, **options)``; nothing
heavy is imported until a runner is activated.
"""

from __future__ import annotations

import importlib

from edge_snn.errors import UserError

BACKENDS = {
    "onnxruntime": "edge_snn.runtime.backends.onnxrt",
    "tensorrt": "edge_snn.runtime.backends.trt",
    "sparse": "edge_snn.runtime.backends.sparse",
}
ENGINE_SUFFIXES = (".engine", ".plan")


def backend_package(name: str):
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])


def resolve_backend(path, backend: str = "auto") -> str:
    """``auto``: TensorRT for ``.engine``/``.plan`` files, ONNX Runtime otherwise."""
    if backend == "auto":
        return "tensorrt" if str(path).endswith(ENGINE_SUFFIXES) else "onnxruntime"
    backend_package(backend)  # unknown names fail here, with the list
    return backend


def make_runner(path, backend: str = "auto", **options):
    """The (inactive) runner of ``backend`` for ``path``; options go to that backend's loader/runner."""
    return backend_package(resolve_backend(path, backend)).make_runner(str(path), **options)


def availability() -> dict[str, str | None]:
    """Every backend's availability here: None (usable) or the reason it is not, with its install hint."""
    return {name: backend_package(name).availability() for name in BACKENDS}
