"""AveragePool over ``[N, C, H, W]`` float32 in one pass (numpy's nine shifted slices cost nine passes).

ONNX semantics with explicit pads: each output is the sum of its window's
inputs (zero padding included; float32, summed over rows then columns), divided by the
window size when ``count_include_pad`` is 1 (edge-snn's pool, as in the
paper's code), else by the number of in-map inputs; ``ceil_mode`` may add a
last partial window, whose padded count stops at the pads (as ONNX Runtime 1.32 counts;
1.17 counted differently; edge-snn's exporter never sets ceil_mode). Each plane is
copied once into a zero-padded scratch so the window loops have no branches; the
row sums run over contiguous memory (vectorized), only the last kernel-width
adds read strided columns.
"""

from __future__ import annotations

import numba as nb
import numpy as np


def window_counts(in_size: int, out_size: int, k: int, stride: int, pad_lo: int, pad_hi: int, dilation: int,
                  include_pad: bool) -> np.ndarray:
    """Per output index along one axis, the window positions the divisor counts."""
    pos = np.arange(out_size)[:, None] * stride - pad_lo + np.arange(k)[None, :] * dilation
    limit_lo, limit_hi = (-pad_lo, in_size + pad_hi) if include_pad else (0, in_size)
    return ((pos >= limit_lo) & (pos < limit_hi)).sum(1)


@nb.njit(cache=True, parallel=True, nogil=True)
def average_pool(x, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, divisor, out):
    """``out[n, c] = window sums of x[n, c] / divisor`` (``divisor [Ho, Wo]`` float32, see :func:`window_counts`)."""
    n, c, h, w = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    grid_h = max(h + pad_top, (out_h - 1) * stride_h + (kernel_h - 1) * dilation_h + 1)
    grid_w = max(w + pad_left, (out_w - 1) * stride_w + (kernel_w - 1) * dilation_w + 1)
    for plane in nb.prange(n * c):
        b, ch = plane // c, plane % c
        grid = np.zeros((grid_h, grid_w), np.float32)
        src_plane = x[b, ch]
        for ih in range(h):  # explicit loops: slice assignment inside prange miscompiles (numba 0.68)
            for iw in range(w):
                grid[pad_top + ih, pad_left + iw] = src_plane[ih, iw]
        column = np.empty(grid_w, np.float32)
        dst = out[b, ch]
        for oh in range(out_h):  # window = sum over kh of rows (contiguous), then over kw of the strided columns
            first = grid[oh * stride_h]
            for j in range(grid_w):
                column[j] = first[j]
            for kh in range(1, kernel_h):
                src = grid[oh * stride_h + kh * dilation_h]
                for j in range(grid_w):
                    column[j] += src[j]
            row = dst[oh]
            for ow in range(out_w):
                total = column[ow * stride_w]
                for kw in range(1, kernel_w):
                    total += column[ow * stride_w + kw * dilation_w]
                row[ow] = total / divisor[oh, ow]
