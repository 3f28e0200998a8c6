"""The DLA-resident form of an export (``edge-snn export --dla``): the threshold gain, INT8 scales as a calibration cache.

On an AGX Orin or Orin NX the DLA is the low-power engine, but it runs only the layers NVIDIA's
DLA matrix lists as native (``targets/data/dla_ops.json``). The DLA form (see
:mod:`edge_snn.export.graph`) records the same body with native layers only; this module holds
what is specific to it:

* :func:`spike_gains`: the factors ``g1, g2, ...`` of ``Clip((U - theta) * g1 * g2, 0, 1)``.
  Exactness: rounding is monotonic and ``fl(U - theta)`` has the sign of ``U - theta`` (0 only
  at U = theta), so U <= theta gives a product <= 0 and a spike 0. For U > theta the smallest
  difference is the spacing ``ulp(theta)`` of the precision just above theta (Sterbenz: U - theta
  is exact for theta < U <= 2 theta), so with ``g = 2 / ulp(theta)`` the product is >= 2 and
  the clip gives exactly 1; overflow to +inf still clips to 1. g is a power of two (so the
  multiplications are exact) and is taken for the *finest* precision the graph may run in
  (FP32, so ONNX Runtime reproduces the standard export bit for bit), then split into factors
  that are finite in the *coarsest* (FP16 on the DLA: at most 2^15 each), so no factor becomes
  inf and 0 * inf never makes a NaN at U = theta. theta = 1: FP16 alone would need g = 2^11
  (2048); FP32 needs 2^24 = 2^12 * 2^12. ``tests/export/test_dla_threshold.py`` checks every
  FP16 value and every FP32 value near theta.
* :class:`DlaInt8Weights`: a Brevitas-quantized model without Q/DQ nodes (NVIDIA's DLA matrix
  lists QuantizeLinear/DequantizeLinear only as "reconstruction": collapse them into INT8
  scaling factors, i.e. implicit quantization). Weights are the dequantized values ``int8 *
  scale``; each conv input's Brevitas scale goes into a TensorRT calibration cache, the format
  of NVIDIA's DLA-SW ``tools/qdq-translator`` (``utils.py export_to_trt_calib``): a header line
  ``TRT-<version>-EntropyCalibration2``, then ``<tensor name>: <hex of the float32 scale's
  bits>`` per tensor (scale = amax / 127). ``edge-snn build --int8 --dla-core N`` feeds it to
  TensorRT through a calibrator that only reads the cache.
"""

from __future__ import annotations

import math

import numpy as np

from edge_snn.errors import UserError
from edge_snn.export.graph import GraphBuilder, Sym
from edge_snn.export.qdq import brevitas_weight, input_scale
from edge_snn.export.weights import FloatWeights
from edge_snn.runtime.backends.trt.calibration import cache_path, calibration_cache

#: Largest power of two finite in each precision's arithmetic (FP16 max is 65504).
MAX_POWER_OF_TWO = {"fp16": 15, "fp32": 127}
#: Significand bits (including the implicit one) of each float precision.
SIGNIFICAND_BITS = {"fp16": 11, "fp32": 24}


def ulp_above(value: float, precision: str) -> float:
    """Spacing of ``precision`` just above ``value`` > 0 (a power of two): 2^(floor(log2 value) - (p - 1))."""
    if value <= 0:
        raise UserError(f"the firing threshold must be positive for the DLA form, got {value}")
    return 2.0 ** (math.floor(math.log2(value)) - (SIGNIFICAND_BITS[precision] - 1))


def spike_gains(threshold: float, *, finest: str = "fp32", coarsest: str = "fp16") -> tuple[float, ...]:
    """Power-of-two factors whose product is ``2 / ulp(threshold)`` in ``finest``, each finite in ``coarsest``."""
    exponent = round(math.log2(2.0 / ulp_above(threshold, finest)))
    limit = MAX_POWER_OF_TWO[coarsest]
    parts = max(1, math.ceil(abs(exponent) / limit))
    base, extra = divmod(exponent, parts)
    return tuple(2.0 ** (base + (1 if i < extra else 0)) for i in range(parts))


def validate_dla_export(model, options) -> None:
    """The DLA form runs one whole frame per call, time-major, batch 1 (see the module docstring of graph)."""
    if options.layout != "time-major":
        raise UserError("--dla exports the time-major layout only (layer-major folds time into the batch, which "
                        "splits DLA loadables); drop --layout")
    if options.batch != 1:
        raise UserError("--dla exports batch 1 (the input is folded to [1, T*C, H, W] for the DLA); drop --batch")
    if options.timesteps != model.timesteps:
        raise UserError(f"--dla runs a whole frame per call from step 0 (its BN scales are constants of the "
                        f"unrolled graph): export with --timesteps {model.timesteps}, the trained T")
    if options.bn_beyond == "last":
        raise UserError("--dla restarts its BN scales at step 0 on every call, which is --bn-beyond cycle (or the "
                        "default error), not last; drop --bn-beyond last")


class DlaInt8Weights(FloatWeights):
    """Dequantized Brevitas weights, no Q/DQ; conv input scales collected for the calibration cache."""

    precision = "int8-implicit"

    def __init__(self, names: dict):
        super().__init__(names)
        self.scales: dict[str, float] = {}  # conv input tensor (as first named) -> Brevitas scale
        self.weight_scale_mismatches = 0  # channels where TensorRT's max|w|/127 differs from Brevitas' scale

    def weight_inputs(self, g: GraphBuilder, module) -> list[str]:
        name = self.names.get(module, "conv")
        integers, scale, axis = brevitas_weight(module)
        integers = integers.astype(np.float32)
        shape = [1] * integers.ndim
        shape[axis] = -1
        per_channel = scale.reshape(shape) if scale.size > 1 else scale.reshape(())
        weight = (integers * per_channel).astype(np.float32)
        # TensorRT's implicit INT8 recomputes weight scales as max|w| / 127 per output channel (the
        # DLA-SW qdq-translator checks the same): count the channels where that is not Brevitas' scale
        reduce = tuple(i for i in range(integers.ndim) if i != axis)
        peak = np.abs(integers).max(axis=reduce)
        self.weight_scale_mismatches += int(np.count_nonzero(peak != 127))
        inputs = [g.initializer(weight, f"{name}.weight")]
        if module.bias is not None:
            inputs.append(g.initializer(module.bias.detach().numpy().astype(np.float32), f"{name}.bias"))
        return inputs

    def activation_input(self, g: GraphBuilder, x: Sym, module) -> str:
        self.scales[x.name] = input_scale(module)
        return x.name


def write_calibration_cache(proto, weights: DlaInt8Weights, onnx_path) -> dict:
    """Write the Brevitas conv-input scales of ``weights`` as ``<model>.calib.cache``; returns a summary."""
    from edge_snn.runtime.files import write_bytes_atomic

    conv_inputs = {node.input[0] for node in proto.graph.node if node.op_type in ("Conv", "ConvTranspose")}
    missing = sorted(set(weights.scales) - conv_inputs)
    if missing:
        raise AssertionError(f"calibration scales for tensors that are not conv inputs: {missing[:5]}")
    path = cache_path(onnx_path)
    write_bytes_atomic(path, calibration_cache(weights.scales).encode())
    return {"calibration_cache": str(path), "int8_tensors": len(weights.scales),
            "weight_scale_mismatches": weights.weight_scale_mismatches}
