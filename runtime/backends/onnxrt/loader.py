"""Loading an ONNX file into an ONNX Runtime session: providers, their options, the session itself.

``SessionFromOnnx(path, ...)`` is a loader in Polygraphy's sense: a cheap
description of what to load, called by the runner's ``activate()``; nothing
heavy (not even ``import onnxruntime``) happens before that call.

Providers are chosen from what the installed onnxruntime offers, best first
(TensorRT, CUDA, CPU), unless the caller names them. TensorRT's engine cache
and timing cache go to a folder next to the model so the second start is fast.
"""

from __future__ import annotations

from pathlib import Path

from edge_snn.errors import UserError

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
INSTALL_HINT = ("onnxruntime is not installed: pip install 'edge-snn[cpu]' (the CPU onnxruntime wheel) on a PC; "
                "on a Jetson install NVIDIA's onnxruntime-gpu wheel for your JetPack instead")


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return onnxruntime


def available_providers() -> list[str]:
    return list(import_onnxruntime().get_available_providers())


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


def session_model(path: str, onnxruntime_version: str, *, cpu: bool = True):
    """What to hand ``InferenceSession`` for ``path``: the path, or the bytes of the session's rewritten copy.

    Two rewrites, neither changing a number: an int8-integer file's activations retyped to
    uint8 on an onnxruntime release without int8 ConvInteger (:mod:`.integer_compat`), and,
    for the CPU provider, convolutions that mostly read padding split into tap blocks
    (:mod:`.tap_blocks`). A file with external weights is handed over as it is (the tap
    blocks would need its weights in memory), except when it must be retyped.
    """
    import onnx

    from edge_snn.runtime.backends.onnxrt.integer_compat import (needs_uint8_activations, takes_int8_activations,
                                                                 uint8_activations)
    from edge_snn.runtime.backends.onnxrt.tap_blocks import split_padded_convs
    from edge_snn.runtime.model_file import load_onnx_file

    if not cpu and takes_int8_activations(onnxruntime_version):
        return path  # neither rewrite can apply: do not parse the file again
    proto = load_onnx_file(path)
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    retype = needs_uint8_activations(proto, onnxruntime_version)
    if external and not retype:
        return path
    if external:
        proto = load_onnx_file(path, load_weights=True)
    changed = False
    if retype:
        proto, changed = uint8_activations(proto), True
    try:
        split = split_padded_convs(proto) if cpu and not external else None
    except Exception:  # a damaged graph: an optimization must not hide what ONNX Runtime says of it
        split = None
    if split is not None:
        proto, changed = split, True
    return proto.SerializeToString() if changed else path


class SessionFromOnnx:
    """Loader: ``SessionFromOnnx(path, providers=None, threads=0)()`` is an ``onnxruntime.InferenceSession``.

    threads: intra-op threads (0: ONNX Runtime's default, one per core).
    fp16 / int8: TensorRT execution provider precisions.
    profile_prefix: switch ONNX Runtime's profiler on, writing to this prefix.
    """

    def __init__(self, path, *, providers: list[str] | None = None, threads: int = 0, fp16: bool = False,
                 int8: bool = False, profile_prefix: str | None = None):
        if threads < 0:
            raise UserError(f"--threads must be 0 (one per core) or more, got {threads}")
        self.path = str(path)
        self.providers, self.threads = providers, threads
        self.fp16, self.int8, self.profile_prefix = fp16, int8, profile_prefix

    def __call__(self):
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = self.threads
        if self.profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = self.profile_prefix
        providers = choose_providers(self.providers, self.path, fp16=self.fp16, int8=self.int8)
        cpu_only = all(name == "CPUExecutionProvider" for name, _ in providers)
        model = session_model(self.path, ort.__version__, cpu=cpu_only)
        try:
            return ort.InferenceSession(model, sess_options=options, providers=providers)
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
            raise UserError(f"ONNX Runtime cannot load {self.path}: {str(err).splitlines()[0][:200]}") from None
