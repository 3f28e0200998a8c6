"""The CUDA runtime calls the TensorRT backend needs, through cuda-python (imported lazily).

cuda-python returns ``(err, *values)`` from every call; :func:`cuda_check`
turns an error into an exception naming the call.
"""

from __future__ import annotations

import ctypes

import numpy as np

from edge_snn.errors import UserError

CUDA_INSTALL_HINT = ("cuda-python is not installed (the TensorRT backend uses it for device memory): "
                     "pip install 'edge-snn[jetson]' on a Jetson, 'edge-snn[tensorrt]' on a PC "
                     "(cuda-python>=12.6,<13: release 13 needs a CUDA 13 driver)")


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


def cuda_check(result, what: str):
    """cuda-python returns ``(err, *values)``: raise on error, else return the value(s)."""
    cudart = import_cudart()
    err, values = result[0], result[1:]
    if err != cudart.cudaError_t.cudaSuccess:
        name = cudart.cudaGetErrorName(err)[1]
        name = name.decode() if isinstance(name, bytes) else str(name)
        raise RuntimeError(f"CUDA error in {what}: {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def gpu_info(device: int | None = None) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") of ``device`` (default: the current one)."""
    cudart = import_cudart()
    if device is None:
        device = cuda_check(cudart.cudaGetDevice(), "cudaGetDevice")
    try:
        props = cuda_check(cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    except RuntimeError as err:
        raise UserError(f"no usable CUDA device ({err}); TensorRT needs an NVIDIA GPU with a working driver") from None
    name = props.name
    name = name.decode(errors="replace") if isinstance(name, (bytes, bytearray)) else str(name)
    return name.split("\x00", 1)[0].strip(), f"{props.major}.{props.minor}"


class CudaRuntime:
    """The few CUDA runtime calls the runner needs, through cuda-python (errors raised, not returned)."""

    def __init__(self):
        self.rt = import_cudart()

    def call(self, name: str, *args):
        return cuda_check(getattr(self.rt, name)(*args), name)

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
        self.call("cudaStreamBeginCapture", stream, self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal)

    def end_capture(self, stream):
        return self.call("cudaStreamEndCapture", stream)

    def instantiate(self, graph):
        return self.call("cudaGraphInstantiate", graph, 0)

    def launch(self, graph_exec, stream) -> None:
        self.call("cudaGraphLaunch", graph_exec, stream)

    def destroy(self, kind: str, handle) -> None:
        """Free ``handle``: kind is ``Free``, ``FreeHost``, ``GraphExecDestroy``, ``GraphDestroy`` or ``StreamDestroy``."""
        self.call("cuda" + kind, handle)
