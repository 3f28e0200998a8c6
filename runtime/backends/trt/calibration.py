"""TensorRT INT8 calibration caches: the implicit-quantization scales of a DLA-form export (torch-free).

NVIDIA's DLA matrix lists QuantizeLinear/DequantizeLinear only as "reconstruction": collapse them
into INT8 scaling factors, i.e. implicit quantization. ``edge-snn export --dla`` of a quantized
checkpoint therefore writes the graph without Q/DQ plus ``<model>.calib.cache`` holding each conv
input's Brevitas scale, in the format of NVIDIA's DLA-SW ``tools/qdq-translator``
(``utils.py``, ``export_to_trt_calib``): a header ``TRT-<version>-EntropyCalibration2``, then one
line ``<tensor name>: <float32 bits of the scale, hex>`` per tensor, the scale being amax / 127.
``edge-snn build --int8`` gives the cache to TensorRT through a calibrator that only reads it
(``IInt8EntropyCalibrator2``: ``get_batch`` returns None, ``read_calibration_cache`` the bytes;
the TensorRT 10 Python API marks calibrators deprecated since 10.1 but keeps them).
"""

from __future__ import annotations

import struct
from pathlib import Path

from edge_snn.errors import UserError

CACHE_SUFFIX = ".calib.cache"
#: TensorRT version code written in the header; the DLA-SW translator writes 8600 for TensorRT 8.6.
#: Whether TensorRT 10.3 checks this code when it reads a cache is not confirmed.
TRT_CACHE_VERSION = "10300"


def cache_path(onnx_path) -> Path:
    """``model.onnx`` -> ``model.calib.cache`` (where ``edge-snn build`` looks for it)."""
    path = Path(onnx_path)
    return path.with_name(path.stem + CACHE_SUFFIX)


def float_hex(value: float) -> str:
    """The float32 bits of ``value`` as lowercase hex without leading zeros (the translator's ``float_to_hex``)."""
    return format(struct.unpack("<I", struct.pack("<f", value))[0], "x")


def calibration_cache(scales: dict[str, float], version: str = TRT_CACHE_VERSION) -> str:
    """The text of a TensorRT calibration cache holding ``scales`` (tensor name -> amax / 127)."""
    lines = [f"TRT-{version}-EntropyCalibration2"]
    lines += [f"{name}: {float_hex(scale)}" for name, scale in sorted(scales.items())]
    return "\n".join(lines) + "\n"


def read_calibration_cache(text: str, *, source: str = "the calibration cache") -> dict[str, float]:
    """Scales in a calibration cache (the inverse of :func:`calibration_cache`)."""
    lines = text.strip().splitlines()
    if not lines or not lines[0].startswith("TRT-") or not lines[0].endswith("Calibration2"):
        raise UserError(f"{source} is not a TensorRT calibration cache (no 'TRT-<version>-EntropyCalibration2' "
                        "header); re-export with `edge-snn export --dla`")
    scales = {}
    for line in lines[1:]:
        name, _, value = line.rpartition(": ")
        try:
            scales[name] = struct.unpack("<f", struct.pack("<I", int(value, 16)))[0]
        except (ValueError, struct.error):
            raise UserError(f"{source}: line {line!r} is not '<tensor>: <hex float>'; re-export with "
                            "`edge-snn export --dla`") from None
    return scales


def cache_calibrator(trt, blob: bytes):
    """A TensorRT calibrator that never calibrates: it hands TensorRT the scales in ``blob``."""

    class CacheOnly(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            return None  # no data: TensorRT must take every scale from the cache

        def read_calibration_cache(self):
            return blob

        def write_calibration_cache(self, cache):
            pass

    return CacheOnly()
