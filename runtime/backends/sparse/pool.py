"""AveragePool over ``[N, C, H, W]`` float32 in one pass (numpy's nine shifted slices cost nine passes).

ONNX semantics with explicit pads: each output is the sum of its window's
inputs (zero padding included; float32, summed over rows then columns), divided by the
window size when ``count_include_pad`` is 1 (edge-snn's pool, as in the
paper's code), else by the number of in-map inputs; ``ceil_mode`` may add a
last partial window, whose padded count stops at the pads (as ONNX Runtime 1.32 counts;
1.17 counted differently; edge-snn's exporter never sets ceil_mode). Each plane is
summed row by row into one zero-padded column buffer (rows outside the map are
skipped, padded columns stay 0): the row sums run over contiguous memory
(vectorized), only the last kernel-width adds read strided columns.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime.backends.sparse.simd import address_as_pointer, image_addresses


def window_counts(in_size: int, out_size: int, k: int, stride: int, pad_lo: int, pad_hi: int, dilation: int,
                  include_pad: bool) -> np.ndarray:
    """Per output index along one axis, the window positions the divisor counts."""
    pos = np.arange(out_size)[:, None] * stride - pad_lo + np.arange(k)[None, :] * dilation
    limit_lo, limit_hi = (-pad_lo, in_size + pad_hi) if include_pad else (0, in_size)
    return ((pos >= limit_lo) & (pos < limit_hi)).sum(1)


def pool_geometry(attrs: dict, x_shape) -> tuple:
    """``(kernel, strides, dilations, (pad_top, pad_left), output shape, divisor [Ho, Wo])`` of an AveragePool node."""
    if len(x_shape) != 4 or attrs.get("auto_pad", "NOTSET") != "NOTSET":
        raise UserError("the sparse backend runs 2-D AveragePool with explicit pads only; re-export the model")
    kh, kw = attrs["kernel_shape"]
    sh, sw = attrs.get("strides", [1, 1])
    dh, dw = attrs.get("dilations", [1, 1])
    top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
    rounding = np.ceil if attrs.get("ceil_mode", 0) else np.floor
    out_h = int(rounding((x_shape[2] + top + bottom - dh * (kh - 1) - 1) / sh)) + 1
    out_w = int(rounding((x_shape[3] + left + right - dw * (kw - 1) - 1) / sw)) + 1
    include = bool(attrs.get("count_include_pad", 0))
    divisor = np.outer(window_counts(x_shape[2], out_h, kh, sh, top, bottom, dh, include),
                       window_counts(x_shape[3], out_w, kw, sw, left, right, dw, include)).astype(np.float32)
    return (kh, kw), (sh, sw), (dh, dw), (top, left), (x_shape[0], x_shape[1], out_h, out_w), np.maximum(divisor, 1)


def pool_images(images: list, geometry: tuple, out: np.ndarray) -> None:
    """AveragePool of ``images`` (float32 ``[B, C, H, W]`` arrays, one geometry) into ``out [sum of B, C, Ho, Wo]``."""
    (kh, kw), (sh, sw), (dh, dw), (top, left), _, divisor = geometry
    images = [np.ascontiguousarray(x, np.float32) for x in images]
    _, c, h, w = images[0].shape
    average_pool(image_addresses(images), c, h, w, kh, kw, sh, sw, top, left, dh, dw, divisor, out)  # ``images`` keeps them alive


@nb.njit(cache=True, parallel=True, nogil=True)
def average_pool(addresses, c, h, w, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w,
                 divisor, out):
    """``out[n, c] = window sums of image n's plane c / divisor`` (``divisor [Ho, Wo]`` float32, see :func:`window_counts`).

    Image n is a C-contiguous float32 ``[c, h, w]`` at ``addresses[n]``: the
    steps of a layer (:class:`.program.PoolGroup`) are pooled in one call,
    read in place; the caller keeps the arrays alive through the call.

    Three passes per output row, each a simple loop LLVM vectorizes: the kernel
    rows into the column buffer (contiguous), the window sums along it (written
    out for edge-snn's 3-wide stride-2 window, whose loop then needs no inner
    kernel loop), and the division. One loop doing all three ran 2.7-4.3x slower.
    """
    n = addresses.shape[0]
    out_h, out_w = out.shape[2], out.shape[3]
    grid_w = max(w + pad_left, (out_w - 1) * stride_w + (kernel_w - 1) * dilation_w + 1)
    three_by_two = kernel_w == 3 and stride_w == 2 and dilation_w == 1
    for plane in nb.prange(n * c):
        b, ch = plane // c, plane % c
        src = nb.carray(address_as_pointer(addresses[b]), (c, h, w), np.float32)[ch]
        dst = out[b, ch]
        column = np.zeros(grid_w, np.float32)  # padded columns stay 0
        sums = np.empty(out_w, np.float32)
        for oh in range(out_h):
            inside = column[pad_left:pad_left + w]
            added = 0
            for kh in range(kernel_h):
                ih = oh * stride_h - pad_top + kh * dilation_h
                if 0 <= ih < h:
                    row = src[ih]
                    if added == 0:
                        for iw in range(w):
                            inside[iw] = np.float32(0.0) + row[iw]
                    else:
                        for iw in range(w):
                            inside[iw] += row[iw]
                    added += 1
            if added == 0:
                for iw in range(w):
                    inside[iw] = 0.0
            if three_by_two:
                for ow in range(out_w):
                    sums[ow] = column[2 * ow] + column[2 * ow + 1] + column[2 * ow + 2]
            else:
                for ow in range(out_w):
                    total = column[ow * stride_w]
                    for kw in range(1, kernel_w):
                        total += column[ow * stride_w + kw * dilation_w]
                    sums[ow] = total
            counts = divisor[oh]
            line = dst[oh]
            for ow in range(out_w):
                line[ow] = sums[ow] / counts[ow]
