"""Buffers on cache lines: where the sparse backend's kernels read and write whole vectors."""

from __future__ import annotations

import numpy as np

ALIGNMENT = 64  # bytes: one cache line, and one AVX-512 vector


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialized C-contiguous array whose data starts on a cache line (``ALIGNMENT`` bytes).

    numpy only promises 16-byte alignment: a layer's packed weights landed at
    offsets 0, 16, 32 or 48 of a line, differently from run to run, and off a
    32-byte boundary every vector load of a weight row straddles two cache
    lines. Rows on cache lines: 1.18 instead of 1.54 ns per row in the event
    kernel (Zen 4, AVX-512); full-width dl-vgg9 frames 1-25 ms faster on one
    thread in four paired runs (what a run lost depended on where its weights
    had landed).
    """
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(count * dtype.itemsize + ALIGNMENT, np.uint8)
    skip = -raw.ctypes.data % ALIGNMENT
    return raw[skip:skip + count * dtype.itemsize].view(dtype).reshape(shape)
