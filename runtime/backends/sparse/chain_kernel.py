"""One pass over a chain of elementwise ONNX nodes: the kernel that runs a :class:`~.fusion.ChainProgram`.

The exporter emits, per layer and step, ``Mul`` (BN scale) ``Add`` (shift)
``Mul`` (leak) ``Add`` (integrate) ``Greater`` ``Cast`` (fire) ``Mul`` ``Sub``
(soft reset), each a full pass over a ``[B, C, H, W]`` tensor in a per-node
runtime. Here the whole chain is one program: the tensor is viewed as rows
``[R, L]`` (typically ``R = B * C`` channels, ``L = H * W``), every small input
(a per-channel scale, the leak, the threshold) is one number per row, and for
each row the instructions run over that row's ``L`` values held in a few
L1-resident registers. Each instruction is one IEEE float32 operation, exactly
the node it came from (no contraction into FMA, no reordering), so the fused
result is bit-identical to running the nodes one by one. ``SUM`` instructions
are fused ``ReduceSum`` nodes (accumulated in float64 per row, then summed).

Operands: kind 0 = register, 1 = full input (a ``[R, L]`` float32 array given
by address), 2 = row input (``row_inputs[index, r]``).
Instruction row: ``(opcode, destination, kind_a, index_a, kind_b, index_b)``;
``STORE`` writes register ``index_a`` to output ``destination``; ``SUM`` adds
register ``index_a``'s total to sum slot ``destination``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from edge_snn.runtime.backends.sparse.simd import address_as_pointer

ADD, SUB, MUL, DIV, GREATER, RELU, COPY, STORE, SUM, MIN, MAX = range(11)
BLOCK = 1024  # values per row block: a few registers of 4 KiB stay in L1
REGISTER, FULL, ROW = 0, 1, 2


@nb.njit(inline="always")
def _binary(op, d, a, b):
    n = d.size
    if op == ADD:
        for i in range(n):
            d[i] = a[i] + b[i]
    elif op == SUB:
        for i in range(n):
            d[i] = a[i] - b[i]
    elif op == MUL:
        for i in range(n):
            d[i] = a[i] * b[i]
    elif op == DIV:
        for i in range(n):
            d[i] = a[i] / b[i]
    elif op == GREATER:
        for i in range(n):
            d[i] = np.float32(1.0) if a[i] > b[i] else np.float32(0.0)
    elif op == MIN:
        for i in range(n):
            d[i] = min(a[i], b[i])
    elif op == MAX:
        for i in range(n):
            d[i] = max(a[i], b[i])


@nb.njit(inline="always")
def _binary_scalar_right(op, d, a, s):
    n = d.size
    if op == ADD:
        for i in range(n):
            d[i] = a[i] + s
    elif op == SUB:
        for i in range(n):
            d[i] = a[i] - s
    elif op == MUL:
        for i in range(n):
            d[i] = a[i] * s
    elif op == DIV:
        for i in range(n):
            d[i] = a[i] / s
    elif op == GREATER:
        for i in range(n):
            d[i] = np.float32(1.0) if a[i] > s else np.float32(0.0)
    elif op == MIN:
        for i in range(n):
            d[i] = min(a[i], s)
    elif op == MAX:
        for i in range(n):
            d[i] = max(a[i], s)


@nb.njit(inline="always")
def _binary_scalar_left(op, d, s, b):
    n = d.size
    if op == ADD:
        for i in range(n):
            d[i] = s + b[i]
    elif op == SUB:
        for i in range(n):
            d[i] = s - b[i]
    elif op == MUL:
        for i in range(n):
            d[i] = s * b[i]
    elif op == DIV:
        for i in range(n):
            d[i] = s / b[i]
    elif op == GREATER:
        for i in range(n):
            d[i] = np.float32(1.0) if s > b[i] else np.float32(0.0)
    elif op == MIN:
        for i in range(n):
            d[i] = min(s, b[i])
    elif op == MAX:
        for i in range(n):
            d[i] = max(s, b[i])


@nb.njit(inline="always")
def _scalar_op(op, a, b):
    if op == ADD:
        return np.float32(a + b)
    if op == SUB:
        return np.float32(a - b)
    if op == MUL:
        return np.float32(a * b)
    if op == DIV:
        return np.float32(a / b)
    if op == MIN:
        return min(a, b)
    if op == MAX:
        return max(a, b)
    return np.float32(1.0) if a > b else np.float32(0.0)


@nb.njit(cache=True, fastmath={"reassoc", "nsz"}, nogil=True)
def _total(values):
    """Sum of float32 values in float64 (vectorized; exact for spike counts, at float64 rounding otherwise)."""
    total = 0.0
    for j in range(values.size):
        total += np.float64(values[j])
    return total


@nb.njit(cache=True, nogil=True)
def interpret(code, i0, i1, reg, full_addresses, row_inputs, out_addresses, sums, size, length, r0, r1, lo, hi):
    """Instructions ``i0 .. i1`` of ``code`` on rows ``r0 .. r1``, values ``lo .. hi`` of each row.

    ``reg [registers, (r1 - r0) * (hi - lo)]`` holds the registers of that
    stretch, and keeps them between calls: the fused conv kernel
    (:mod:`.conv_chain`) runs a time-major chain one step's instructions at a
    time, as each step's conv output of the stretch is ready. More than one row
    needs whole rows (``lo = 0, hi = length``): the rows are then one
    contiguous stretch. ``sums`` receives the ``SUM`` totals.
    """
    seg = hi - lo
    start = r0 * length + lo
    n = (r1 - r0) * seg
    for i in range(i0, i1):
        op, dst, ka, ia, kb, ib = code[i, 0], code[i, 1], code[i, 2], code[i, 3], code[i, 4], code[i, 5]
        if op == STORE:
            o = nb.carray(address_as_pointer(out_addresses[dst]), size, np.float32)[start:start + n]
            src = reg[ia]
            for j in range(n):  # explicit loops: slice assignment inside prange miscompiles (numba 0.68)
                o[j] = src[j]
            continue
        if op == SUM:
            sums[dst] += _total(reg[ia])
            continue
        d = reg[dst]
        if ka == FULL:
            va = nb.carray(address_as_pointer(full_addresses[ia]), size, np.float32)[start:start + n]
        else:
            va = reg[ia]
        if kb == FULL:
            vb = nb.carray(address_as_pointer(full_addresses[ib]), size, np.float32)[start:start + n]
        else:
            vb = reg[ib]
        if op == RELU or op == COPY:
            for rr in range(r1 - r0):  # one scalar per row for ROW operands
                dd = d[rr * seg:(rr + 1) * seg]
                if ka == ROW:
                    sa = row_inputs[ia, r0 + rr]
                    v = sa if op == COPY else max(sa, np.float32(0.0))
                    for j in range(seg):
                        dd[j] = v
                else:
                    xa = va[rr * seg:(rr + 1) * seg]
                    if op == COPY:
                        for j in range(seg):
                            dd[j] = xa[j]
                    else:
                        for j in range(seg):
                            dd[j] = xa[j] if xa[j] > 0 else np.float32(0.0)
        elif ka == ROW and kb == ROW:
            for rr in range(r1 - r0):
                v = _scalar_op(op, row_inputs[ia, r0 + rr], row_inputs[ib, r0 + rr])
                dd = d[rr * seg:(rr + 1) * seg]
                for j in range(seg):
                    dd[j] = v
        elif kb == ROW:  # one scalar per row
            for rr in range(r1 - r0):
                _binary_scalar_right(op, d[rr * seg:(rr + 1) * seg], va[rr * seg:(rr + 1) * seg], row_inputs[ib, r0 + rr])
        elif ka == ROW:
            for rr in range(r1 - r0):
                _binary_scalar_left(op, d[rr * seg:(rr + 1) * seg], row_inputs[ia, r0 + rr], vb[rr * seg:(rr + 1) * seg])
        else:  # no row operand: the item's rows are one contiguous run
            _binary(op, d, va, vb)


@nb.njit(cache=True, parallel=True, nogil=True)
def run_chain(code, registers, full_addresses, row_inputs, out_addresses, sum_count, rows, length):
    """Run ``code`` over all rows; returns the ``SUM`` totals.

    Work items hold about ``BLOCK`` values so that the registers stay in L1
    and the instruction dispatch is paid per block, not per short row: a
    segment of one long row, or several whole short rows (conv8's 16x16 map).
    In an item of short rows, an instruction without a row operand runs over
    the item's rows as one contiguous stretch, and one with a row operand
    loops over the rows with one scalar each; handled row by row throughout
    (operands selected and sliced per row), the same values took 1.35x as
    long in rows of 256 and 2.2x in rows of 64 as in rows of 4096 (now 1.1x
    and 1.3-1.5x).
    """
    per_item = max(1, BLOCK // length)  # whole rows per item when rows are short
    segment = length if per_item > 1 else min(BLOCK, length)
    splits = (length + segment - 1) // segment
    items = (rows + per_item - 1) // per_item if per_item > 1 else rows * splits
    partial = np.zeros((items, max(sum_count, 1)), np.float64)
    size = rows * length
    for item in nb.prange(items):
        if per_item > 1:
            r0 = item * per_item
            r1 = min(rows, r0 + per_item)
            lo, hi = 0, length
        else:
            r0 = item // splits
            r1 = r0 + 1
            lo = (item % splits) * segment
            hi = min(lo + segment, length)
        reg = np.empty((registers, (r1 - r0) * (hi - lo)), np.float32)
        interpret(code, 0, code.shape[0], reg, full_addresses, row_inputs, out_addresses, partial[item], size, length,
                  r0, r1, lo, hi)
    return partial.sum(axis=0)
