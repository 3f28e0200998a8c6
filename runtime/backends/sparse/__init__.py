"""The sparse backend: edge-snn graphs run event-driven on the CPU (numba kernels, dense layers on MLAS).

:class:`ProgramFromOnnx` loads, :class:`SparseRunner` runs. Nothing heavy is
imported here: numba and onnxruntime are imported when a runner is activated,
and :func:`availability` says whether they can be.
"""

from edge_snn.runtime.backends.sparse.loader import ProgramFromOnnx, kernel_import_error
from edge_snn.runtime.backends.sparse.runner import SparseRunner, format_work_stats

NAME = "sparse"


def availability() -> str | None:
    """None when the accelerated kernels (numba) and the dense path (onnxruntime) import here, else why not."""
    return kernel_import_error()


def make_runner(path, **options) -> SparseRunner:
    return SparseRunner(ProgramFromOnnx(path, **options))


__all__ = ["NAME", "ProgramFromOnnx", "SparseRunner", "availability", "format_work_stats", "make_runner"]
