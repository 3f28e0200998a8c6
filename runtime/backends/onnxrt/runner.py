"""ONNX Runtime runner: TensorRT, CUDA or CPU execution providers, state kept where the provider computes.

Streaming uses I/O binding: each call binds the fresh input from host memory,
binds the previous call's state outputs (OrtValues on the provider's device)
directly as this call's state inputs, and lets ONNX Runtime allocate the
outputs on that device; only the non-state outputs are copied to the host.
On the CPU provider the same code runs with device ``cpu``.
"""

from __future__ import annotations

import numpy as np

from edge_snn.runtime.backends.base import Runner
from edge_snn.runtime.backends.onnxrt.loader import SessionFromOnnx, import_onnxruntime
from edge_snn.runtime.contract import STATE_IN, STATE_OUT, state_inputs

GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


class OnnxRuntimeRunner(Runner):
    """Runs an ONNX file with ONNX Runtime; ``loader`` is a :class:`SessionFromOnnx` or a path."""

    name = "onnxruntime"

    def __init__(self, loader, **loader_options):
        loader = loader if isinstance(loader, SessionFromOnnx) else SessionFromOnnx(loader, **loader_options)
        super().__init__(loader.path)
        self.loader = loader
        self.session = None

    def activate_impl(self) -> None:
        self.session = self.loader()
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.providers = self.session.get_providers()
        self.device = "cuda" if self.providers[0] in GPU_PROVIDERS else "cpu"

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, feed)))

    def step_impl(self, inputs, state):
        ort = import_onnxruntime()
        binding = self.session.io_binding()
        for name, array in inputs.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value), self.device, 0)
            binding.bind_ortvalue_input(name, value)
        for name in self.output_names:
            binding.bind_output(name, self.device if name.startswith(STATE_OUT) else "cpu", 0)
        self.session.run_with_iobinding(binding)
        values = dict(zip(self.output_names, binding.get_outputs()))
        outputs = {k: v.numpy() for k, v in values.items() if not k.startswith(STATE_OUT)}
        return outputs, state_inputs(values)

    def state_to_host(self, state):
        return {k: (v if isinstance(v, np.ndarray) else v.numpy()) for k, v in state.items()}

    def state_step(self, state) -> int:
        value = state[STATE_IN + "step"]
        return int(np.asarray(value if isinstance(value, np.ndarray) else value.numpy()).reshape(-1)[0])

    def end_profiling(self) -> str:
        """Stop ONNX Runtime's profiler (``profile_prefix`` given to the loader); returns the trace file."""
        return self.session.end_profiling()

    def deactivate_impl(self) -> None:
        self.session = None
