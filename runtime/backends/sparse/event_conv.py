"""Event-driven convolution: only the inputs that are nonzero do work, only taps that land on the map are visited.

A convolution is linear in its input, so ``y = sum over nonzero inputs x[c, p]
of x[c, p] * (the weights that input reaches)``. For 0/1 spikes the product is
the weight itself: the layer becomes additions of weight rows. Two steps:

1. :func:`build_lists` compresses the input ``[C, H, W]`` into, per position of
   the *zero-padded* grid ``(H + pads) x (W + pads)``, the list of its nonzero
   channels (and their values). Padding positions get empty lists, so a tap
   that falls in the padding costs one empty-list check and no arithmetic:
   conv8's dilation 12 on a 16x16 map (75% of its taps in the padding) does
   only the work of the taps inside.
2. :func:`event_conv` (tap-major gather): for each block of 32 (or 64) output channels
   and each kernel tap, the tap's weight slab ``[C_in, 32]`` (8-32 KiB: L1, or L2
   for 256 input channels) is added into an output tile, one row per contributing input channel,
   through :func:`~edge_snn.runtime.backends.sparse.simd.accumulate_row`.
   Tap-major beat position-major (all taps of one output, weights from L2) by
   1.4x on dl-vgg9's layers and a row-scatter by 3-5x (docs/decisions.md).

Both take many images at once: the steps of a layer in a time-major graph (and
the batch), read in place by address. Each work item of :func:`event_conv`
runs all of them, so a block of output channels loads its weight slabs once
per call instead of once per step; that matters where the weights outgrow the
cache (conv8: 9.4 MB of float weights).

Weights are packed once at load by :func:`pack_weights` as
``[ceil(C_out/32), KH, KW, C_in, 32]`` (zero-padded output channels), so the 32
output channels of one (tap, input channel) are one contiguous row.

INT8 (QDQ graphs): the input is the QuantizeLinear integers, the weights the
int8 initializer; accumulation is exact in int32 and the epilogue multiplies by
``input scale x weight scale[c_out]`` once (``scale``), then adds the bias.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from edge_snn.runtime.backends.sparse.buffers import aligned_empty
from edge_snn.runtime.backends.sparse.simd import (BLOCK, LANES, WIDE_LANES, accumulate_row, accumulate_row_scaled,
                                                   accumulate_row_scaled_wide, accumulate_row_wide, address_as_pointer,
                                                   store_transposed, trailing_zeros)

TILE_BYTES = 16 * 1024  # output tile per (channel block, rows): stays in L1 next to one tap's weight slab
BAND_POSITIONS = 1024  # input positions per work item of build_lists (whole rows)


def pack_weights(weight: np.ndarray, lanes: int = LANES) -> np.ndarray:
    """``[C_out, C_in, KH, KW]`` -> ``[ceil(C_out/lanes) * KH * KW * C_in, lanes]`` (rows of ``lanes`` output channels).

    ``lanes``: ``LANES`` or ``WIDE_LANES``; the kernels read it from the rows' width.

    The rows start on cache lines (:func:`~edge_snn.runtime.backends.sparse.buffers.aligned_empty`).
    """
    c_out, c_in, kh, kw = weight.shape
    if lanes not in (LANES, WIDE_LANES):
        raise ValueError(f"weight rows are {LANES} or {WIDE_LANES} output channels wide, not {lanes}")
    blocks = -(-c_out // lanes)
    padded = np.zeros((blocks * lanes, c_in, kh, kw), weight.dtype)
    padded[:c_out] = weight
    packed = padded.reshape(blocks, lanes, c_in, kh, kw).transpose(0, 3, 4, 2, 1)
    rows = aligned_empty((blocks * kh * kw * c_in, lanes), weight.dtype)
    rows[:] = packed.reshape(rows.shape)
    return rows


@nb.njit(cache=True, nogil=True)
def count_nonzero(x):
    """Nonzero elements of a C-contiguous array (any dtype)."""
    flat = x.reshape(-1)
    n = 0
    for i in range(flat.size):
        n += flat[i] != 0
    return n


@nb.njit(cache=True, parallel=True, nogil=True)
def build_lists(addresses, c_in, h, w, pad_top, pad_left, grid_h, grid_w, starts, idx, vals, not_one):
    """Per image and position of the padded ``grid_h x grid_w`` grid, the nonzero channels of the image.

    ``addresses [N]``: where each image ``[C, H, W]`` lies (C-contiguous, of
    ``vals``' dtype), so the steps of a layer are compressed together without
    being copied into one array. The caller keeps the arrays alive through the
    call: an address does not hold its array. Fills ``starts [N, grid_h * grid_w + 1]`` with
    offsets into ``idx``/``vals``, images one after another (the list of image
    n at grid position q is ``idx[starts[n, q]:starts[n, q + 1]]``, channels
    ascending; ``vals`` holds the input values, written only for images that
    have values other than 1) and ``not_one [N]`` with each image's count of
    values other than 1. Returns the nonzero count of all images.

    Two passes. The first reads the input channel by channel (contiguous,
    vectorized) and sets, per position, one bit per nonzero channel in 64-bit
    words, counting them too. The second walks each position's words with
    ``cttz`` and writes its list in one sequential run. The lists were filled
    channel by channel before (a 64-position mask per channel, each entry
    stored through a per-position fill pointer): 2x slower on full-width
    dl-vgg9 (33 -> 16.5 ms per frame, conv2 19 -> 8.6), same lists.

    Work items are bands of whole rows, about ``BAND_POSITIONS`` positions
    each; threads split the bands, each writing only its bands' lists. A
    band's stretch of one channel is then 4 KiB of contiguous input, which the
    hardware prefetchers follow: with bands of 64 positions (one row of conv2's
    64x64 map) the first pass read 256-byte pieces 16 KiB apart, and paired
    frames of full-width dl-vgg9 were 8-9 ms slower on one thread (bands of
    256 to 4096 positions all measured 4-9 ms faster), 3-7 ms slower on two.
    """
    images = addresses.shape[0]
    plane = h * w
    band = max(1, BAND_POSITIONS // w)
    bands = (h + band - 1) // band
    words = (c_in + 63) // 64
    count = np.zeros((images, plane), np.int32)  # per position at most c_in; int32 lanes count twice as fast
    masks = np.zeros((images, words, plane), np.uint64)  # bit c % 64 of word c // 64: channel c is nonzero
    band_not_one = np.zeros(images * bands, np.int64)
    for item in nb.prange(images * bands):
        n, b = item // bands, item % bands
        lo, hi = b * band * w, min(h, (b + 1) * band) * w
        x = nb.carray(address_as_pointer(addresses[n]), (c_in, plane), vals.dtype)
        counted = count[n, lo:hi]
        found = 0
        for c in range(c_in):
            seg = x[c, lo:hi]
            bits = masks[n, c >> 6, lo:hi]
            shift = np.uint64(c & 63)
            for j in range(hi - lo):
                v = seg[j]
                nonzero = v != 0
                counted[j] += np.int32(nonzero)
                bits[j] |= np.uint64(nonzero) << shift
                found += nonzero & (v != 1)
        band_not_one[item] = found
    total = 0
    for n in range(images):
        q = 0
        starts[n, 0] = total
        for gh in range(grid_h):
            ih = gh - pad_top
            for gw in range(grid_w):
                iw = gw - pad_left
                if 0 <= ih < h and 0 <= iw < w:
                    total += count[n, ih * w + iw]
                q += 1
                starts[n, q] = total
    if total > idx.size or total > vals.size:  # the fill below writes by computed index: never past the buffers
        raise ValueError("build_lists: idx/vals hold fewer entries than the images' nonzero count")
    for n in range(images):
        not_one[n] = band_not_one[n * bands:(n + 1) * bands].sum()
    for item in nb.prange(images * bands):
        n, b = item // bands, item % bands
        x = nb.carray(address_as_pointer(addresses[n]), (c_in, plane), vals.dtype)
        values = not_one[n] != 0  # spikes: the kernel adds rows and never reads vals
        for ih in range(b * band, min(h, (b + 1) * band)):
            first = (ih + pad_top) * grid_w + pad_left
            for iw in range(w):
                p = ih * w + iw
                k = starts[n, first + iw]
                for word_index in range(words):
                    word = masks[n, word_index, p]
                    while word != np.uint64(0):
                        c = word_index * 64 + np.int64(trailing_zeros(word))
                        word &= word - np.uint64(1)
                        idx[k] = c
                        if values:
                            vals[k] = x[c, p]
                        k += 1
    return total


@nb.njit(cache=True, nogil=True)
def convolve_image(starts, idx, vals, unit_values, packed, c_in, kernel_h, kernel_w, grid_w, stride_h, stride_w,
                   dilation_h, dilation_w, scale, bias, out, tile, n, block, oh0, rows):
    """Image ``n``'s output channels ``block * lanes ...`` on output rows ``oh0 .. oh0 + rows`` into ``out``.

    One work item of :func:`event_conv` (and of the fused kernel in
    :mod:`.conv_chain`) for one image: the tile is zeroed, every tap's rows
    added, then scaled, biased and stored. Returns the rows it added.
    """
    c_out, out_w = out.shape[1], out.shape[3]
    lanes = tile.shape[1]  # the packed rows' width: LANES or WIDE_LANES
    for t in range(rows * out_w):  # explicit loops: slice assignment inside prange miscompiles (numba 0.68)
        for j in range(lanes):
            tile[t, j] = 0
    visited = 0
    image_starts = starts[n]
    for kh in range(kernel_h):
        for kw in range(kernel_w):
            wbase = ((block * kernel_h + kh) * kernel_w + kw) * c_in
            for r in range(rows):
                q0 = ((oh0 + r) * stride_h + kh * dilation_h) * grid_w + kw * dilation_w
                if image_starts[q0] == image_starts[q0 + (out_w - 1) * stride_w + 1]:
                    continue  # the tap reads only empty lists in this row (padding, or no spikes)
                if lanes == WIDE_LANES:
                    if unit_values[n]:
                        visited += accumulate_row_wide(tile, r * out_w, packed, wbase, image_starts, idx, vals, q0, stride_w, out_w)
                    else:
                        visited += accumulate_row_scaled_wide(tile, r * out_w, packed, wbase, image_starts, idx, vals, q0, stride_w, out_w)
                elif unit_values[n]:
                    visited += accumulate_row(tile, r * out_w, packed, wbase, image_starts, idx, vals, q0, stride_w, out_w)
                else:
                    visited += accumulate_row_scaled(tile, r * out_w, packed, wbase, image_starts, idx, vals, q0, stride_w, out_w)
    channels = min(lanes, c_out - block * lanes)
    positions = rows * out_w
    blocked = positions - positions % BLOCK if channels == lanes else 0
    for t in range(0, blocked, BLOCK):  # the tile's positions are contiguous in each channel plane
        for j in range(0, lanes, BLOCK):
            store_transposed(tile, t, j, out, n, block * lanes + j, oh0 * out_w + t, scale, bias)
    for j in range(channels):
        co = block * lanes + j
        s, b = scale[co], bias[co]
        for t in range(blocked, positions):
            out[n, co, oh0 + t // out_w, t % out_w] = np.float32(tile[t, j] * s + b)
    return visited


@nb.njit(cache=True, nogil=True)
def tiling(out_h, out_w, lanes):
    """(output rows per work item, row tiles): a tile of ``lanes`` channels stays within ``TILE_BYTES``."""
    rows_per_tile = max(1, min(out_h, TILE_BYTES // (out_w * lanes * 4)))
    return rows_per_tile, (out_h + rows_per_tile - 1) // rows_per_tile


@nb.njit(cache=True, parallel=True, nogil=True)
def event_conv(starts, idx, vals, unit_values, packed, c_in, kernel_h, kernel_w, grid_w, stride_h, stride_w,
               dilation_h, dilation_w, scale, bias, accumulator, out):
    """``out [N, C_out, Ho, Wo]`` (float32) = conv of each listed image (see :func:`build_lists`).

    Each work item (a block of 32 or 64 output channels and a band of
    output rows, see :func:`tiling`) runs every image, so the block's weight slabs are loaded once
    for all N images (the T steps of a layer) instead of once per image.
    ``accumulator``: ``np.float32`` for float weights, ``np.int32`` for int8.
    ``unit_values [N]``: every listed value of image n is 1 (spikes), so rows
    are added, not multiplied. ``scale [C_out]`` multiplies each output channel
    (all ones for float weights), ``bias [C_out]`` is added after. Returns the
    number of (nonzero input, tap inside the map) pairs over all images:
    synaptic events per output channel.
    """
    images, c_out, out_h, out_w = out.shape
    taps = kernel_h * kernel_w
    blocks = packed.shape[0] // (taps * c_in)
    lanes = packed.shape[1]
    rows_per_tile, row_tiles = tiling(out_h, out_w, lanes)
    events = 0
    for item in nb.prange(blocks * row_tiles):
        block = item // row_tiles
        oh0 = (item % row_tiles) * rows_per_tile
        rows = min(rows_per_tile, out_h - oh0)
        tile = np.empty((rows * out_w, lanes), accumulator)
        visited = 0
        for n in range(images):
            visited += convolve_image(starts, idx, vals, unit_values, packed, c_in, kernel_h, kernel_w, grid_w,
                                      stride_h, stride_w, dilation_h, dilation_w, scale, bias, out, tile, n, block,
                                      oh0, rows)
        if block == 0:
            events += visited
    return events
