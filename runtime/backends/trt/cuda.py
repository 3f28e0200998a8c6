"""The CUDA runtime calls the TensorRT backend needs, through cuda-python (imported lazily).

cuda-python returns ``(err, *values)`` from every call; :func:`cuda_check` turns an error into a
:class:`CudaError` naming the call *and* the versions involved. The commonest failure on a fresh
Jetson is a driver/bindings mismatch (a bare ``pip install cuda-python`` picks release 13, whose
calls need a CUDA 13 driver; JetPack 6 has CUDA 12.x), and it shows up at the very first call,
``cudaGetDevice``. So every call goes through :func:`cuda_check` or :meth:`CudaRuntime.call`, and
the message reads e.g. "CUDA error in cudaGetDevice: cudaErrorInsufficientDriver (CUDA driver
12.6, CUDA runtime 13.0, cuda-python 13.0.1; ...)". Versions: ``cudaDriverGetVersion`` and
``cudaRuntimeGetVersion`` return ``1000 * major + 10 * minor`` (0 when no driver is installed;
CUDA Runtime API, "Version Management").
"""

from __future__ import annotations

import ctypes
from importlib import metadata

import numpy as np

from edge_snn.errors import UserError

CUDA_INSTALL_HINT = ("cuda-python is not installed (the TensorRT backend uses it for device memory): "
                     "pip install 'edge-snn[jetson]' on a Jetson, 'edge-snn[tensorrt]' on a PC "
                     "(cuda-python>=12.6,<13: release 13 needs a CUDA 13 driver)")
BINDINGS_DISTRIBUTIONS = ("cuda-bindings", "cuda-python")


class CudaError(RuntimeError):
    """A CUDA call failed; the message names the call, the error and the driver/runtime/bindings versions."""


def import_cudart():
    """The CUDA runtime module of cuda-python (``cuda.bindings.runtime``; ``cuda.cudart`` before 12.6)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise UserError(CUDA_INSTALL_HINT) from None
    return cudart


def bindings_version() -> str | None:
    """The installed cuda-python bindings release (``cuda-bindings``, else the ``cuda-python`` distribution)."""
    for name in BINDINGS_DISTRIBUTIONS:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def format_cuda_version(value: int | None) -> str | None:
    """``12060`` -> ``"12.6"``; 0 (no driver) and None stay None."""
    if not value:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def cuda_versions(cudart=None) -> dict[str, str | None]:
    """``{"driver", "runtime", "bindings"}``: CUDA version the driver supports, the bindings' runtime, the package.

    Never raises: a value that cannot be read is None (that itself says something is wrong).
    """
    versions: dict[str, str | None] = {"driver": None, "runtime": None, "bindings": bindings_version()}
    try:
        cudart = cudart or import_cudart()
    except UserError:
        return versions
    for key, call in (("driver", "cudaDriverGetVersion"), ("runtime", "cudaRuntimeGetVersion")):
        try:
            err, value = getattr(cudart, call)()
            versions[key] = format_cuda_version(int(value)) if err == cudart.cudaError_t.cudaSuccess else None
        except Exception:  # a binding too new for this driver may fail even here
            versions[key] = None
    return versions


def version_problem(versions: dict[str, str | None]) -> str | None:
    """The fix when the bindings' CUDA major is newer than the driver's (or there is no driver), else None."""
    driver, bindings = versions.get("driver"), versions.get("bindings")
    if driver is None:
        return ("no CUDA driver answered (cudaDriverGetVersion gave 0 or failed): on a Jetson reflash/repair JetPack, "
                "on a PC install the NVIDIA driver")
    if bindings is None:
        return None
    driver_major, bindings_major = int(driver.split(".")[0]), int(bindings.split(".")[0])
    if bindings_major > driver_major:
        return (f"cuda-python {bindings} is for CUDA {bindings_major}, newer than this driver's CUDA {driver}: "
                f"pip install 'cuda-python>={driver_major}.0,<{driver_major + 1}' (edge-snn's jetson extra)")
    return None


def describe_versions(versions: dict[str, str | None]) -> str:
    """``CUDA driver 12.6, CUDA runtime 13.0, cuda-python 13.0.1`` (unknown parts say so)."""
    return (f"CUDA driver {versions.get('driver') or 'unknown'}, CUDA runtime {versions.get('runtime') or 'unknown'}, "
            f"cuda-python {versions.get('bindings') or 'unknown'}")


def _failure(what: str, detail: str, cudart=None) -> CudaError:
    versions = cuda_versions(cudart)
    fix = version_problem(versions)
    return CudaError(f"CUDA error in {what}: {detail} ({describe_versions(versions)}"
                     f"{'; ' + fix if fix else ''})")


def cuda_check(result, what: str, cudart=None):
    """cuda-python returns ``(err, *values)``: raise :class:`CudaError` on error, else return the value(s)."""
    cudart = cudart or import_cudart()
    err, values = result[0], result[1:]
    if err != cudart.cudaError_t.cudaSuccess:
        try:
            name = cudart.cudaGetErrorName(err)[1]
            name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception:
            name = str(err)
        raise _failure(what, name, cudart)
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def call_cuda(cudart, name: str, *args):
    """Call ``cudart.<name>(*args)``; any failure, also one raised by the bindings themselves, is a :class:`CudaError`."""
    try:
        result = getattr(cudart, name)(*args)
    except CudaError:
        raise
    except Exception as err:  # e.g. a symbol the driver lacks, or the bindings refusing to load it
        raise _failure(name, f"{type(err).__name__}: {err}", cudart) from None
    return cuda_check(result, name, cudart)


def gpu_info(device: int | None = None) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") of ``device`` (default: the current one).

    Every failure, ``cudaGetDevice`` included, is a one-line :class:`UserError` naming the versions.
    """
    cudart = import_cudart()
    try:
        if device is None:
            device = call_cuda(cudart, "cudaGetDevice")
        props = call_cuda(cudart, "cudaGetDeviceProperties", device)
    except CudaError as err:
        raise UserError(f"no usable CUDA device: {err}; TensorRT needs an NVIDIA GPU with a working driver") from None
    name = props.name
    name = name.decode(errors="replace") if isinstance(name, (bytes, bytearray)) else str(name)
    return name.split("\x00", 1)[0].strip(), f"{props.major}.{props.minor}"


class CudaRuntime:
    """The few CUDA runtime calls the runner needs, through cuda-python (errors raised, not returned)."""

    def __init__(self):
        self.rt = import_cudart()

    def call(self, name: str, *args):
        return call_cuda(self.rt, name, *args)

    def stream_create(self):
        # non-blocking: no implicit sync with the legacy default stream, which stream capture forbids
        return self.call("cudaStreamCreateWithFlags", self.rt.cudaStreamNonBlocking)

    def stream_handle(self, stream) -> int:
        return int(stream)

    def malloc(self, nbytes: int) -> int:
        return int(self.call("cudaMalloc", nbytes))

    def host_array(self, shape, dtype) -> tuple[np.ndarray, int]:
        """A page-locked host array (async copies need it) and its address."""
        dtype = np.dtype(dtype)
        nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
        ptr = int(self.call("cudaMallocHost", nbytes))
        raw = (ctypes.c_byte * nbytes).from_address(ptr)
        return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape))).reshape(shape), ptr

    def h2d(self, dst: int, src: int, nbytes: int, stream) -> None:
        self.call("cudaMemcpyAsync", dst, src, nbytes, self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream)

    def d2h(self, dst: int, src: int, nbytes: int, stream) -> None:
        self.call("cudaMemcpyAsync", dst, src, nbytes, self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream)

    def synchronize(self, stream) -> None:
        self.call("cudaStreamSynchronize", stream)

    def begin_capture(self, stream) -> None:
        # thread-local, as trtexec does (sampleDevice.h TrtCudaGraph::beginCapture): another thread's
        # unsafe CUDA call then does not invalidate this capture, and this one does not break theirs
        self.call("cudaStreamBeginCapture", stream, self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal)

    def end_capture(self, stream):
        return self.call("cudaStreamEndCapture", stream)

    def clear_error(self) -> None:
        """``cudaGetLastError()``: reset the error a failed capture leaves behind (trtexec's endCaptureOnError)."""
        self.rt.cudaGetLastError()

    def instantiate(self, graph):
        return self.call("cudaGraphInstantiate", graph, 0)

    def launch(self, graph_exec, stream) -> None:
        self.call("cudaGraphLaunch", graph_exec, stream)

    def destroy(self, kind: str, handle) -> None:
        """Free ``handle``: kind is ``Free``, ``FreeHost``, ``GraphExecDestroy``, ``GraphDestroy`` or ``StreamDestroy``."""
        self.call("cuda" + kind, handle)
