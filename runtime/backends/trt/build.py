"""``edge-snn build``: an edge-snn ONNX graph to a TensorRT 10 engine plus its sidecar.

A serialized engine is only valid for the TensorRT version and the GPU it was
built on, and it forgets the ONNX metadata. So every engine gets a sidecar
``<engine>.json`` (e.g. ``model.engine.json``) holding the TensorRT version,
GPU name and compute capability, SHA-256 of the ONNX file and of the engine,
the build flags, and the ONNX ``metadata_props`` dict: the runtime reads the
model contract from it and refuses a stale or foreign engine *before*
deserializing it (:func:`check_engine_compatible`).

Precisions (``weakly typed`` network, TensorRT picks kernels per layer):

- ``fp32``: FP32 kernels, TF32 switched off; a spike is a threshold
  comparison, so TF32's 10-bit mantissa would flip spikes against the
  reference.
- ``fp16``: ``BuilderFlag.FP16``.
- ``int8``: needs a graph with QuantizeLinear/DequantizeLinear nodes (QAT
  export). TensorRT reads the scales from them (explicit quantization); no
  calibrator exists in this project, so an FP32 graph is refused. The INT8
  flag is still set because TensorRT 10 up to 10.11 (JetPack 6 ships 10.3)
  requires it for weakly typed networks; layers outside Q/DQ pairs stay FP32.
- ``best``: FP16 plus, when the graph has Q/DQ nodes, INT8 (``trtexec --best``).
- ``int8`` on a DLA-form export of a quantized checkpoint (no Q/DQ, a
  ``<model>.calib.cache`` next to it, :mod:`.calibration`): implicit
  quantization from the cache's Brevitas scales, with FP16 for the layers the
  cache gives no scale.

The first half of this module (sidecar, hashing, compatibility) is plain
Python and tested without a GPU; the TensorRT calls are in
:func:`build_engine` only.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from edge_snn.errors import UserError
from edge_snn.runtime.backends.trt.cuda import cuda_versions, describe_versions, gpu_info
from edge_snn.runtime.backends.trt.sidecar import make_sidecar, write_sidecar
from edge_snn.runtime.files import file_sha256, write_bytes_atomic
from edge_snn.runtime.platform_info import this_module

PRECISIONS = ("fp32", "fp16", "int8", "best")
TIMING_CACHE_NAME = ".edge-snn-timing.cache"
DEFAULT_WORKSPACE_MB = 1024
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")

TRT_INSTALL_HINT = ("TensorRT is not installed: on a Jetson it comes with JetPack (sudo apt install python3-libnvinfer, "
                    "and a venv made with --system-site-packages); on an x86-64 PC pip install 'edge-snn[tensorrt]'")


def read_onnx_summary(onnx_path) -> tuple[dict[str, str], bool]:
    """(``metadata_props`` dict, whether the graph holds Q/DQ nodes), without loading external weights."""
    from edge_snn.runtime.model_file import load_onnx_file

    proto = load_onnx_file(onnx_path)
    metadata = {p.key: p.value for p in proto.metadata_props}
    has_qdq = any(node.op_type in QDQ_OPS for node in proto.graph.node)
    return metadata, has_qdq


def resolve_flags(precision: str, *, has_qdq: bool, dla_core: int | None, model_name: str = "the model",
                  has_cache: bool = False) -> dict:
    """The builder flags for ``precision`` on a graph with/without Q/DQ nodes or a calibration cache."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "int8" and not (has_qdq or has_cache):
        raise UserError(f"int8 precision needs a quantized graph, but {model_name} has no QuantizeLinear/DequantizeLinear "
                        "nodes and no calibration cache next to it, and edge-snn has no INT8 calibrator; export a "
                        "quantized checkpoint (with --dla for the DLA's calibration cache), or build with --fp16")
    implicit = has_cache and not has_qdq and precision in ("int8", "best")
    fp16 = precision in ("fp16", "best") or implicit  # implicit INT8: layers without a scale run FP16
    int8 = precision == "int8" or (precision == "best" and (has_qdq or implicit))
    if dla_core is not None and not (fp16 or int8):
        raise UserError("DLA cores run FP16 or INT8 only; add --fp16 (or --int8 for a quantized graph) to use --dla-core")
    return {"fp16": fp16, "int8": int8, "tf32": False if precision == "fp32" else True}


def target_build_defaults(target) -> tuple[str, int | None]:
    """(precision, DLA core) a target profile asks for: ``defaults.precision``, read with its ``build_flags``.

    ``int8`` with ``--fp16`` among the flags means ``best`` (FP16 where a layer
    is not quantized, as trtexec does); ``--best`` means ``best``;
    ``--dla-core=N`` / ``--useDLACore=N`` picks a DLA core.
    """
    defaults = getattr(target, "defaults", None)
    precision = str(getattr(defaults, "precision", "fp32") or "fp32")
    flags = [str(f) for f in (getattr(defaults, "build_flags", ()) or ())]
    if "--best" in flags or (precision == "int8" and "--fp16" in flags):
        precision = "best"
    dla_core = None
    for i, flag in enumerate(flags):
        name, _, value = flag.partition("=")
        if name in ("--dla-core", "--useDLACore"):
            value = value or (flags[i + 1] if i + 1 < len(flags) else "")
            if value.isdigit():
                dla_core = int(value)
    return precision, dla_core


def default_timing_cache(engine_path) -> Path:
    return Path(engine_path).resolve().parent / TIMING_CACHE_NAME


# --- TensorRT and CUDA (imported lazily) -------------------------------------
def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise UserError(TRT_INSTALL_HINT) from None
    return tensorrt


def _logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def _parse_onnx(trt, builder, logger, onnx_path: Path):
    network = builder.create_network(0)  # TensorRT 10: always explicit batch; EXPLICIT_BATCH is ignored
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [f"node {err.node()}: {err.desc()}" for err in map(parser.get_error, range(parser.num_errors))]
        raise UserError(f"TensorRT {trt.__version__} cannot parse {onnx_path}: {'; '.join(errors)[:800]}. "
                        f"Check it with `edge-snn check {onnx_path.name} --target TARGET`")
    return network, parser


def _load_timing_cache(config, path: Path) -> None:
    """Give the builder the timing cache at ``path`` (a fresh one if absent, damaged or from another build)."""
    blob = path.read_bytes() if path.is_file() else b""
    try:
        cache = config.create_timing_cache(blob)
        loaded = cache is not None and config.set_timing_cache(cache, ignore_mismatch=False)
    except Exception:  # TensorRT raises its own types on a damaged blob
        loaded = False
    if not loaded:  # another TensorRT version or GPU: start over; the file is overwritten after the build
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def build_engine(onnx_path, engine_path, *, precision: str = "fp32", dla_core: int | None = None,
                 gpu_fallback: bool = True, timing_cache=None, workspace_mb: int = DEFAULT_WORKSPACE_MB) -> dict:
    """Build ``engine_path`` (and ``<engine>.json``) from an edge-snn ONNX graph; returns the sidecar.

    precision: ``fp32`` (default), ``fp16``, ``int8`` (Q/DQ graphs only) or ``best``.
    dla_core: run on that DLA core (Jetson AGX/NX), with layers DLA cannot run
        on the GPU when ``gpu_fallback`` (default True).
    timing_cache: path of TensorRT's timing cache; default
        ``<engine folder>/.edge-snn-timing.cache``, loaded and saved back so
        rebuilds skip kernel timing.
    workspace_mb: scratch memory TensorRT may use per layer (default 1024 MiB).
    """
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    from edge_snn.runtime.backends.trt.calibration import cache_calibrator, cache_path, read_calibration_cache

    metadata, has_qdq = read_onnx_summary(onnx_path)
    calib = cache_path(onnx_path)
    has_cache = calib.is_file() and not has_qdq
    flags = resolve_flags(precision, has_qdq=has_qdq, dla_core=dla_core, model_name=str(onnx_path),
                          has_cache=has_cache)
    cache_blob = calib.read_bytes() if has_cache and flags["int8"] else None
    if cache_blob is not None:
        read_calibration_cache(cache_blob.decode(errors="replace"), source=str(calib))  # damaged: say so now
    trt = import_tensorrt()
    gpu_name, capability = gpu_info()
    cache_path = Path(timing_cache) if timing_cache is not None else default_timing_cache(engine_path)

    logger = _logger(trt)
    try:
        builder = trt.Builder(logger)
    except Exception as err:  # TensorRT raises when it cannot initialize CUDA
        builder, reason = None, f"{type(err).__name__}: {err}"
    else:
        reason = "it returned None"
    if builder is None:
        raise UserError(f"TensorRT {trt.__version__} could not create a builder ({reason}; "
                        f"{describe_versions(cuda_versions())}); run `edge-snn doctor` for the fix")
    network, _parser = _parse_onnx(trt, builder, logger, onnx_path)  # the parser owns weights until the build
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if not flags["tf32"]:
        config.clear_flag(trt.BuilderFlag.TF32)
    if flags["fp16"]:
        config.set_flag(trt.BuilderFlag.FP16)
    if flags["int8"]:
        config.set_flag(trt.BuilderFlag.INT8)
    calibrator = None  # kept referenced here until the build is done
    if cache_blob is not None:  # implicit quantization: TensorRT reads every scale from the cache
        calibrator = cache_calibrator(trt, cache_blob)
        config.int8_calibrator = calibrator
    if dla_core is not None:
        if not 0 <= dla_core < builder.num_DLA_cores:
            raise UserError(f"--dla-core {dla_core} does not exist: this device has {builder.num_DLA_cores} DLA "
                            "core(s) (AGX Orin and Orin NX have 2, Orin Nano none)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        if gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    _load_timing_cache(config, cache_path)

    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise UserError(f"TensorRT could not build an engine from {onnx_path} at {precision} (see its log above); "
                        "try a larger --workspace-mb, another precision, or without --dla-core")
    engine_bytes = bytes(memoryview(serialized))
    write_bytes_atomic(cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
    write_bytes_atomic(engine_path, engine_bytes)

    sidecar = make_sidecar(
        onnx_path=onnx_path, engine_path=engine_path, model_sha256=file_sha256(onnx_path),
        engine_sha256=hashlib.sha256(engine_bytes).hexdigest(), trt_version=trt.__version__,
        gpu_name=gpu_name, compute_capability=capability, metadata=metadata, build_seconds=seconds,
        module=this_module(),
        flags={"precision": precision, **flags, "dla_core": dla_core, "gpu_fallback": bool(gpu_fallback),
               "calibration_cache": str(calib) if cache_blob is not None else None,
               "workspace_mb": int(workspace_mb), "timing_cache": str(cache_path)},
    )
    write_sidecar(engine_path, sidecar)
    return sidecar
