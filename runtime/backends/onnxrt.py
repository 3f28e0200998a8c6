"""ONNX Runtime backend: TensorRT, CUDA or CPU execution providers.

Providers are chosen from what the installed onnxruntime offers, best first
(TensorRT, CUDA, CPU), unless the caller names them. TensorRT's engine cache
and timing cache go to a folder next to the model so the second start is fast.
On the CPU the session's I/O binding lets consecutive streaming calls reuse
output buffers; on CUDA the state stays on the device between calls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.backends.base import Runner

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def _import_ort():
    try:
        import onnxruntime
    except ImportError:
        raise UserError("onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu on a CUDA machine)") from None
    return onnxruntime


def available_providers() -> list[str]:
    return list(_import_ort().get_available_providers())


def provider_options(provider: str, model_path: str, *, fp16: bool = False, int8: bool = False) -> dict:
    """Options that make a provider production-ready (engine caching for TensorRT)."""
    if provider == "TensorrtExecutionProvider":
        cache = str(Path(model_path).with_suffix("")) + ".ort-trt-cache"
        Path(cache).mkdir(parents=True, exist_ok=True)
        return {
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": "True",
            "trt_timing_cache_path": cache,
            "trt_fp16_enable": "True" if fp16 else "False",
            "trt_int8_enable": "True" if int8 else "False",
        }
    if provider == "CUDAExecutionProvider":
        return {"cudnn_conv_algo_search": "EXHAUSTIVE"}
    return {}


def choose_providers(requested: list[str] | None, model_path: str, *, fp16: bool = False, int8: bool = False) -> list:
    available = available_providers()
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise UserError(f"execution provider(s) {missing} not available here (available: {available}); "
                            f"install onnxruntime-gpu or drop --providers")
        names = list(requested)
    else:
        names = [p for p in PREFERRED if p in available] or available
    return [(p, provider_options(p, model_path, fp16=fp16, int8=int8)) for p in names]


class OnnxRuntimeRunner(Runner):
    """Runs an ONNX file with ONNX Runtime."""

    name = "onnxruntime"

    def __init__(self, model_path: str, *, providers: list[str] | None = None, threads: int = 0,
                 fp16: bool = False, int8: bool = False, profile: bool = False):
        super().__init__(model_path)
        self.requested = providers
        self.threads = threads
        self.fp16, self.int8, self.profile = fp16, int8, profile
        self.session = None

    def activate_impl(self) -> None:
        ort = _import_ort()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = self.threads
        options.enable_profiling = self.profile
        try:
            self.session = ort.InferenceSession(
                self.model_path, sess_options=options,
                providers=choose_providers(self.requested, self.model_path, fp16=self.fp16, int8=self.int8))
        except UserError:
            raise
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
            raise UserError(f"ONNX Runtime cannot load {self.model_path}: {str(err).splitlines()[0][:200]}") from None
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.providers = self.session.get_providers()

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, feed)))

    def deactivate_impl(self) -> None:
        self.session = None


class BoundOnnxRuntimeRunner(OnnxRuntimeRunner):
    """ONNX Runtime with I/O binding: the streaming state never leaves the device.

    Each call binds the fresh input from host memory, binds the previous call's
    state outputs (OrtValues on the provider's device) directly as this call's
    state inputs, and lets ONNX Runtime allocate the outputs on that device;
    only the non-state outputs are copied to the host. On the CPU provider the
    same code runs with device ``cpu`` (and saves the output allocations' copies).
    """

    def activate_impl(self) -> None:
        super().activate_impl()
        self.device = "cuda" if self.providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider") else "cpu"

    def step_impl(self, inputs, state):
        from edge_snn.runtime.contract import STATE_IN, STATE_OUT

        ort = _import_ort()
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
        new_state = {STATE_IN + k[len(STATE_OUT):]: v for k, v in values.items() if k.startswith(STATE_OUT)}
        return outputs, new_state

    def state_to_host(self, state):
        return {k: (v if isinstance(v, np.ndarray) else v.numpy()) for k, v in state.items()}
