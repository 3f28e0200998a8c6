"""One layer in one pass: the event-driven convolution of all T steps and the LIF chain that reads it.

Run apart, a layer's convolution writes its T step outputs (21 MB for conv2
of full-width dl-vgg9), and the layer's chain (:mod:`.chain_kernel`) streams
them back with the membrane: 21 input streams, out of cache by then. Here each
work item of the convolution (a block of 32 or 64 output channels and a band of about
``conv.CHAIN_POSITIONS`` output positions) runs the chain on its own stretch as soon
as a step's output is there: step n's instructions of the chain program
(``bounds[n] .. bounds[n + 1]``, see :meth:`.fusion.ChainProgram.step_bounds`)
right after image n's convolution, with the chain's registers (the membrane)
kept in the item between steps. The conv output is then read back from L1/L2.

The values are the same as the two kernels run one after the other, bit for
bit: each conv output is computed as in :func:`.event_conv.event_conv`, and
each chain value by the same float32 instructions in the same order (the chain
is elementwise, so any stretch of it can run on its own). ``SUM`` totals are
float64 sums taken in another grouping (exact for spike counts).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from edge_snn.runtime.backends.sparse.chain_kernel import interpret
from edge_snn.runtime.backends.sparse.event_conv import convolve_image, tiling
from edge_snn.runtime.backends.sparse.lif_steps import lif_window


@nb.njit(cache=True, parallel=True, nogil=True)
def event_conv_chain(starts, idx, vals, unit_values, packed, c_in, kernel_h, kernel_w, grid_w, stride_h, stride_w,
                     dilation_h, dilation_w, scale, bias, accumulator, out, batch, code, bounds, registers,
                     full_addresses, row_inputs, out_addresses, sum_count, lif, lif_state, lif_final, positions):
    """:func:`.event_conv.event_conv` of the images ``out [T * batch, C, Ho, Wo]``, then the chain, per work item.

    Work items cover about ``positions`` output positions (whole rows; the
    caller passes ``conv.CHAIN_POSITIONS``). Image ``n`` is step ``n // batch``, batch entry ``n % batch``; the chain's
    rows are ``batch x C`` (its shape is one step's ``[batch, C, Ho, Wo]``) and
    its full inputs include the T conv outputs, at ``out[step * batch]``.
    ``lif [T, 7]``: the chain's steps as matched LIF steps
    (:func:`.lif_steps.match_lif_steps`, with the state's full input and the
    final store slot), run by :func:`.lif_steps.lif_window`; with no rows the
    chain is interpreted. Returns (synaptic events per output channel, the
    ``SUM`` totals).
    """
    images, c_out, out_h, out_w = out.shape
    length = out_h * out_w
    size = batch * c_out * length
    blocks = packed.shape[0] // (kernel_h * kernel_w * c_in)
    lanes = packed.shape[1]
    tile_rows, _ = tiling(out_h, out_w, lanes)
    band_rows = min(out_h, max(1, positions // out_w))
    bands = (out_h + band_rows - 1) // band_rows
    whole = band_rows == out_h  # a band is the whole map: the block's channels are one contiguous stretch
    partial = np.zeros((blocks * bands, max(sum_count, 1)), np.float64)
    events = 0
    for item in nb.prange(blocks * bands):
        block = item // bands
        top = (item % bands) * band_rows
        band = min(band_rows, out_h - top)
        channels = min(lanes, c_out - block * lanes)
        lo, hi = top * out_w, (top + band) * out_w
        tile = np.empty((min(tile_rows, band) * out_w, lanes), accumulator)
        matched = lif.shape[0] > 0
        membrane = np.empty((batch, channels * (hi - lo) if matched else 1), np.float32)
        if whole and not matched:
            reg = np.empty((batch, registers, channels * length), np.float32)
        else:
            reg = np.empty((batch * channels if not matched else 1, registers, hi - lo), np.float32)
        visited = 0
        for n in range(images):
            for oh0 in range(top, top + band, tile_rows):
                visited += convolve_image(starts, idx, vals, unit_values, packed, c_in, kernel_h, kernel_w, grid_w,
                                          stride_h, stride_w, dilation_h, dilation_w, scale, bias, out, tile, n,
                                          block, oh0, min(tile_rows, top + band - oh0))
            step, b = n // batch, n % batch
            r0 = b * c_out + block * lanes
            if matched:
                lif_window(lif, step, lif_state, lif_final, membrane[b], full_addresses, row_inputs, out_addresses,
                           partial[item], size, length, r0, r0 + channels, lo, hi)
            elif whole:
                interpret(code, bounds[step], bounds[step + 1], reg[b], full_addresses, row_inputs, out_addresses,
                          partial[item], size, length, r0, r0 + channels, 0, length)
            else:
                for j in range(channels):
                    interpret(code, bounds[step], bounds[step + 1], reg[b * channels + j], full_addresses, row_inputs,
                              out_addresses, partial[item], size, length, r0 + j, r0 + j + 1, lo, hi)
        if block == 0:
            events += visited
    return events, partial.sum(axis=0)
