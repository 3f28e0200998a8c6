"""TensorRT 10 runner: a deserialized engine, static device buffers, state kept on the GPU.

``activate()`` calls its loader (:class:`~edge_snn.runtime.backends.trt.loader.EngineFromFile`,
which checks the sidecar before deserializing), then allocates one device
buffer per I/O tensor (shapes are static) plus page-locked host staging
buffers, and binds the addresses once.

Streaming keeps the membrane state on the device. Each state tensor has two
device buffers, set 0 and set 1. A call at *parity* p binds ``state_in.*`` to
set p and ``state_out.*`` to set 1-p; the next call runs at parity 1-p, so
the state the engine wrote becomes the state it reads, with no copy at all.
Only ``input`` goes up and ``logits``/``spike_counts`` come down per call. A
fresh state (a host dict, normally zeros) is uploaded once into set 0.

With ``cuda_graph=True`` the engine's enqueue is captured into a CUDA graph,
once per parity (the addresses are baked into a graph, so the two address
pairs need two graphs), after one ordinary run at that parity, as
TensorRT asks. Replaying a graph saves the per-kernel launch cost, which
dominates small spiking layers on a Jetson. The capture follows trtexec
(TensorRT ``samples/common/sampleInference.cpp`` and ``sampleDevice.h``):
thread-local capture mode; when the enqueue fails under capture, end the
capture (it reports ``cudaErrorStreamCaptureInvalidated``), clear the sticky
error with ``cudaGetLastError()`` and run without graphs. DLA engines are
never captured: NVIDIA's Jetson benchmark samples state that CUDA graphs are
not supported on DLA and run DLA engines with graphs off.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.backends.base import Runner
from edge_snn.runtime.backends.trt.cuda import CudaError, CudaRuntime
from edge_snn.runtime.backends.trt.loader import EngineFromFile
from edge_snn.runtime.contract import STATE_IN, STATE_OUT, state_inputs


@dataclass(frozen=True)
class DeviceState:
    """Opaque streaming state: it lives in buffer set ``parity`` of the runner that returned it.

    It is valid until that runner's next call, which overwrites the other set
    and then this one; keep a copy with ``runner.state_to_host(state)``.
    """

    parity: int
    generation: int
    owner: object = field(repr=False, compare=False)


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    is_input: bool

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize


class TensorRTRunner(Runner):
    """Runs a TensorRT engine built by ``edge-snn build`` (see the module docstring)."""

    name = "tensorrt"

    def __init__(self, loader, *, cuda_graph: bool = False):
        loader = loader if isinstance(loader, EngineFromFile) else EngineFromFile(loader)
        super().__init__(loader.path)
        self.loader = loader
        self.cuda_graph = cuda_graph
        self.generation = 0

    # --- lifecycle ---------------------------------------------------------
    def activate_impl(self) -> None:
        loaded = self.loader()  # TensorRT first: its install hint is the one a user needs first
        self.cuda, self.sidecar = CudaRuntime(), loaded.sidecar
        self.trt_runtime, self.engine = loaded.runtime, loaded.engine
        dla_core = (self.sidecar.get("flags") or {}).get("dla_core")
        if self.cuda_graph and dla_core is not None:
            warnings.warn(f"{self.model_path} runs on DLA core {dla_core}: CUDA graphs are not supported on DLA, so "
                          "it runs without them", stacklevel=3)
            self.cuda_graph = False
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise UserError(f"TensorRT could not create an execution context for {self.model_path}; "
                            "is the GPU out of memory?")
        self.tensors = self._read_tensors(loaded.trt)
        try:
            self._allocate()
        except BaseException:
            self._release()
            raise

    def _read_tensors(self, trt) -> dict[str, _Tensor]:
        tensors = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(int(d) for d in self.engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise UserError(f"engine tensor {name} has a dynamic shape {shape}; edge-snn engines have static shapes, "
                                "rebuild it from an `edge-snn export` graph")
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            tensors[name] = _Tensor(name, shape, np.dtype(trt.nptype(self.engine.get_tensor_dtype(name))), is_input)
        ins = {n[len(STATE_IN):]: t for n, t in tensors.items() if n.startswith(STATE_IN)}
        outs = {n[len(STATE_OUT):]: t for n, t in tensors.items() if n.startswith(STATE_OUT)}
        if set(ins) != set(outs) or any((ins[s].shape, ins[s].dtype) != (outs[s].shape, outs[s].dtype) for s in ins):
            raise UserError(f"{self.model_path}: state inputs {sorted(ins)} do not mirror state outputs {sorted(outs)}; "
                            "this is not an edge-snn graph")
        self.state_names = sorted(ins)
        return tensors

    def graph_io(self):
        """The engine's own I/O tensors, for the session's check of the contract against them."""
        from edge_snn.runtime.contract import GraphIO

        def described(inputs: bool) -> dict:
            return {n: (t.shape, t.dtype.name) for n, t in self.tensors.items() if t.is_input == inputs}

        return GraphIO(inputs=described(True), outputs=described(False), initializers={}, values=None)

    def _allocate(self) -> None:
        """One device + one pinned host buffer per plain tensor; two device buffers per state tensor."""
        cuda = self.cuda
        self.device, self.host, self.host_ptr, self.state_device = {}, {}, {}, {}
        self.graphs: list = [None, None]
        self.bound_parity = None
        self.stream = cuda.stream_create()
        for name, t in self.tensors.items():
            if name.startswith(STATE_OUT):
                continue
            # host staging per tensor; a state_in.* one also receives its state_out.* twin
            self.host[name], self.host_ptr[name] = cuda.host_array(t.shape, t.dtype)
            if name.startswith(STATE_IN):
                self.state_device[name[len(STATE_IN):]] = pair = []  # filled one by one: a failure frees what exists
                pair.extend(cuda.malloc(t.nbytes) for _ in range(2))
            else:
                self.device[name] = cuda.malloc(t.nbytes)
                self._set_address(name, self.device[name])

    def deactivate_impl(self) -> None:
        self._release()

    def _release(self) -> None:
        """Free whatever :meth:`_allocate` got (also after a failure half-way)."""
        self.generation += 1  # every DeviceState handed out is void now
        cuda, stream = self.cuda, getattr(self, "stream", None)
        if stream is not None:
            cuda.synchronize(stream)
        for entry in getattr(self, "graphs", ()):
            if entry is not None:
                cuda.destroy("GraphExecDestroy", entry[1])
                cuda.destroy("GraphDestroy", entry[0])
        pairs = getattr(self, "state_device", {}).values()
        for ptr in list(getattr(self, "device", {}).values()) + [p for pair in pairs for p in pair]:
            cuda.destroy("Free", ptr)
        for ptr in getattr(self, "host_ptr", {}).values():
            cuda.destroy("FreeHost", ptr)
        if stream is not None:
            cuda.destroy("StreamDestroy", stream)
        self.graphs, self.device, self.state_device, self.host, self.host_ptr, self.stream = [None, None], {}, {}, {}, {}, None
        self.context = self.engine = self.trt_runtime = None  # context before engine before runtime

    # --- plain calls -------------------------------------------------------
    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """All inputs from the host, all outputs (state included) back to the host."""
        wanted = {n for n, t in self.tensors.items() if t.is_input}
        self._check_names(feed, wanted)
        self.generation += 1  # the state buffers are overwritten below
        for name, value in feed.items():
            is_state = name.startswith(STATE_IN)
            self._upload(name, self.state_device[name[len(STATE_IN):]][0] if is_state else self.device[name], value)
        self._run(parity=0)
        self._download_state(parity=1)
        outputs = self._download_plain()
        outputs.update({STATE_OUT + name: self.host[STATE_IN + name].copy() for name in self.state_names})
        return outputs

    # --- streaming with device-resident state ------------------------------
    def step_impl(self, inputs: dict[str, np.ndarray], state):
        """One call from ``state`` (a :class:`DeviceState`, or a host dict for a fresh start)."""
        plain = {n for n, t in self.tensors.items() if t.is_input and not n.startswith(STATE_IN)}
        self._check_names(inputs, plain)
        parity = self._claim(state)
        for name, value in inputs.items():
            self._upload(name, self.device[name], value)
        self._run(parity)
        outputs = self._download_plain()
        if self.cuda_graph and self.graphs[parity] is None:
            self._capture(parity)
        self.generation += 1
        return outputs, DeviceState(parity=1 - parity, generation=self.generation, owner=self)

    def state_to_host(self, state) -> dict[str, np.ndarray]:
        if not isinstance(state, DeviceState):
            return super().state_to_host(state)
        self._check_handle(state)
        self._download_state(state.parity)
        self.cuda.synchronize(self.stream)
        return {STATE_IN + name: self.host[STATE_IN + name].copy() for name in self.state_names}

    def _claim(self, state) -> int:
        """The parity at which to run from ``state``; a host state is uploaded into set 0."""
        if isinstance(state, DeviceState):
            self._check_handle(state)
            return state.parity
        if not isinstance(state, dict):
            raise TypeError(f"state must be a DeviceState from this runner or a dict of arrays, not {type(state).__name__}")
        host = {k[len(STATE_IN):]: v for k, v in state_inputs(state).items()}  # either prefix, as the base
        if set(host) != set(self.state_names):
            raise UserError(f"state holds {sorted(host)}, the engine's state is {self.state_names}")
        for name, value in host.items():
            self._upload(STATE_IN + name, self.state_device[name][0], value)
        return 0

    def _check_handle(self, state: DeviceState) -> None:
        if state.owner is not self:
            raise UserError("this state belongs to another runner; pass runner.state_to_host(state) instead")
        if state.generation != self.generation:
            raise UserError("this state is stale: a later call reused its device buffers (each call consumes the "
                            "previous state); keep a copy with runner.state_to_host(state) before the next call")

    # --- helpers -----------------------------------------------------------
    def _check_names(self, feed: dict, wanted: set[str]) -> None:
        if set(feed) != wanted:
            missing, extra = sorted(wanted - set(feed)), sorted(set(feed) - wanted)
            raise UserError(f"engine inputs mismatch: missing {missing}, unknown {extra} (the engine takes {sorted(wanted)})")

    def _upload(self, name: str, device_ptr: int, value) -> None:
        """Stage ``value`` in ``name``'s pinned buffer and queue its copy to ``device_ptr``."""
        t = self.tensors[name]
        value = np.asarray(value)
        if value.shape != t.shape:
            raise UserError(f"{name} has shape {value.shape}, the engine takes {t.shape}")
        np.copyto(self.host[name], value, casting="same_kind")
        self.cuda.h2d(device_ptr, self.host_ptr[name], t.nbytes, self.stream)

    def _download_state(self, parity: int) -> None:
        """Queue copies of state set ``parity`` into the state_in.* staging buffers."""
        for name in self.state_names:
            key = STATE_IN + name
            self.cuda.d2h(self.host_ptr[key], self.state_device[name][parity], self.tensors[key].nbytes, self.stream)

    def _set_address(self, name: str, ptr: int) -> None:
        if not self.context.set_tensor_address(name, ptr):
            raise RuntimeError(f"TensorRT refused the address of {name}")

    def _bind(self, parity: int) -> None:
        """state_in.* -> set ``parity``, state_out.* -> the other set."""
        if self.bound_parity == parity:
            return
        for name in self.state_names:
            self._set_address(STATE_IN + name, self.state_device[name][parity])
            self._set_address(STATE_OUT + name, self.state_device[name][1 - parity])
        self.bound_parity = parity

    def _run(self, parity: int) -> None:
        self._bind(parity)
        if self.graphs[parity] is not None:
            self.cuda.launch(self.graphs[parity][1], self.stream)
        elif not self.context.execute_async_v3(self.cuda.stream_handle(self.stream)):
            raise RuntimeError(f"TensorRT failed to enqueue {self.model_path} (see its log above)")

    def _download_plain(self) -> dict[str, np.ndarray]:
        plain = [n for n, t in self.tensors.items() if not t.is_input and not n.startswith(STATE_OUT)]
        for name in plain:
            self.cuda.d2h(self.host_ptr[name], self.device[name], self.tensors[name].nbytes, self.stream)
        self.cuda.synchronize(self.stream)
        return {name: self.host[name].copy() for name in plain}

    def _capture(self, parity: int) -> None:
        """Record the enqueue at ``parity`` (its addresses are bound) into a CUDA graph; on failure run without.

        As trtexec does: a failed enqueue under capture invalidates it, ``cudaStreamEndCapture`` then
        fails too, and the error stays sticky until ``cudaGetLastError()`` clears it, which must
        happen before the next ordinary enqueue on this stream.
        """
        cuda, graph, failure = self.cuda, None, None
        try:
            cuda.begin_capture(self.stream)
        except CudaError as err:
            return self._give_up_capture(err)
        try:
            if not self.context.execute_async_v3(cuda.stream_handle(self.stream)):
                failure = RuntimeError("execute_async_v3 returned False while capturing")
        except Exception as err:  # TensorRT may raise instead of returning False
            failure = err
        try:
            graph = cuda.end_capture(self.stream)  # always leave capture mode
        except CudaError as err:
            failure = failure or err
        if failure is None:
            try:
                self.graphs[parity] = (graph, cuda.instantiate(graph))
                return
            except CudaError as err:
                failure = err
        if graph is not None:
            cuda.destroy("GraphDestroy", graph)
        self._give_up_capture(failure)

    def _give_up_capture(self, err: Exception) -> None:
        self.cuda.clear_error()  # cudaGetLastError: reset the capture's sticky error
        self.cuda_graph = False
        warnings.warn(f"CUDA graph capture failed ({err}); running {self.model_path} without graphs", stacklevel=4)
