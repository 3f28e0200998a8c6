"""Which kernel taps of a convolution read the feature map, and which read its zero padding.

One account, used wherever work is counted or skipped: ONNX Runtime's tap blocks
(:mod:`edge_snn.runtime.backends.onnxrt.tap_blocks`), the sparse backend's dense-MAC
count, and the benchmark's effective (padding-free) MACs.
"""

from __future__ import annotations

import numpy as np


def tap_bands(size_in: int, size_out: int, k: int, stride: int, pad: int, dilation: int) -> list[tuple[int, int, int, int]]:
    """Output ranges along one axis that read the same taps: ``(o0, o1, j0, j1)``, taps j0..j1 inclusive.

    Output ``o`` reads input ``o * stride - pad + j * dilation`` through tap ``j``; the taps
    that land inside the map form one contiguous range, and consecutive outputs with the same
    range form a band. An output that sees only padding gets the empty range ``(0, -1)``.
    """
    bands: list[list[int]] = []
    for o in range(size_out):
        valid = [j for j in range(k) if 0 <= o * stride - pad + j * dilation < size_in]
        taps = (valid[0], valid[-1]) if valid else (0, -1)
        if bands and (bands[-1][2], bands[-1][3]) == taps:
            bands[-1][1] = o + 1
        else:
            bands.append([o, o + 1, *taps])
    return [tuple(b) for b in bands]


def padding_share(bands: list[list[tuple[int, int, int, int]]], kernel) -> float:
    """Fraction of a conv's (output, tap) pairs that read zero padding, from its per-axis :func:`tap_bands`."""
    inside = np.prod([sum((o1 - o0) * (j1 - j0 + 1) for o0, o1, j0, j1 in axis) for axis in bands])
    total = np.prod([axis[-1][1] * k for axis, k in zip(bands, kernel)])
    return 1.0 - float(inside) / float(total)


def inside_pairs(size_in: int, size_out: int, k: int, stride: int, pad: int, dilation: int) -> int:
    """(output, tap) pairs along one axis whose input position is in the map, not padding."""
    return sum((o1 - o0) * (j1 - j0 + 1) for o0, o1, j0, j1 in tap_bands(size_in, size_out, k, stride, pad, dilation))
