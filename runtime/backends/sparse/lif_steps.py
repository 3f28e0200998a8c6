"""Recognize, in a compiled chain, the exporter's LIF steps, so that a kernel can run them without the interpreter.

The chain interpreter (:func:`.chain_kernel.interpret`) passes over its
operands once per instruction; a time-major LIF layer is 9 instructions per
step. Over a work item of the fused conv kernel (32 channels x 256 positions)
that took 9.1 us per step, a loop doing the same float32 operations element by
element 1.3-1.6 us. :func:`match_lif_steps` proves, by evaluating the chain's
code symbolically, that each step ``k`` computes exactly

    v[k]   = mem[k-1] * leak + (x[k] * a[k] + b[k])     (``mem[-1]``: a full input, the state)
    s[k]   = 1 if v[k] > threshold else 0               (stored; optionally summed)
    mem[k] = v[k] - s[k] * threshold                    (the last one optionally stored)

with ``x[k]`` the step's conv output and ``a, b, leak, threshold`` per-row
inputs; float addition and multiplication are commutative, so operand order
does not matter, but nothing else may differ. Anything else (another reset,
a clamp, an extra store) returns None and the chain runs interpreted. The
kernel (:func:`lif_window`) evaluates the same tree (:meth:`.fusion.ChainProgram.evaluate`) with the same float32
operations, so the results are bit-identical.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from edge_snn.runtime.backends.sparse import chain_kernel as K
from edge_snn.runtime.backends.sparse.simd import address_as_pointer

X, A, B, LEAK, THRESHOLD, SPIKE_SLOT, SUM_SLOT = range(7)  # columns of a step row


def _times_row(e, node: int) -> list[tuple[int, int]]:
    """``node = other * row`` as (other, row index) pairs (both ways when both are rows)."""
    key = e.nodes[node]
    if key[0] != K.MUL:
        return []
    return [(other, e.nodes[row][1]) for other, row in ((key[1], key[2]), (key[2], key[1])) if e.nodes[row][0] == "R"]


def match_lif_steps(program, steps: list[str]) -> tuple[np.ndarray, int, int] | None:
    """(step rows ``[T, 7]``, the state's full input, the final membrane's store slot or -1), or None.

    Step row columns: the step's full input ``X``, row inputs ``A, B, LEAK,
    THRESHOLD``, the spike's store slot and its ``SUM`` slot (-1: not summed).
    """
    e, stores, sums = program.evaluate()
    full = {name: i for i, name in enumerate(program.full_inputs)}
    if any(name not in full for name in steps):
        return None
    step_inputs = {full[n] for n in steps}
    spike_slot = {node: slot for slot, node in stores.items()}
    rows, state, membrane = [], None, None
    for k, name in enumerate(steps):
        x = e.get(("F", full[name]), create=False)
        found = None
        for slot, spike in stores.items():
            key = e.nodes[spike]
            if key[0] != K.GREATER or e.nodes[key[2]][0] != "R":
                continue
            v, threshold = key[1], e.nodes[key[2]][1]
            if e.nodes[v][0] != K.ADD:
                continue
            for decay, current in ((e.nodes[v][1], e.nodes[v][2]), (e.nodes[v][2], e.nodes[v][1])):
                if e.nodes[current][0] != K.ADD:
                    continue
                for scaled, shift in ((e.nodes[current][1], e.nodes[current][2]), (e.nodes[current][2], e.nodes[current][1])):
                    if e.nodes[shift][0] != "R":
                        continue
                    for source, a in _times_row(e, scaled):
                        if source != x:
                            continue
                        for previous, leak in _times_row(e, decay):
                            first_state = k == 0 and e.nodes[previous][0] == "F" and e.nodes[previous][1] not in step_inputs
                            if previous == membrane or first_state:
                                found = (slot, spike, v, threshold, a, e.nodes[shift][1], leak, previous)
        if found is None:
            return None
        slot, spike, v, threshold, a, b, leak, previous = found
        if k == 0:
            state = e.nodes[previous][1]
        reset = e.get((K.MUL, spike, e.get(("R", threshold))), create=False)
        membrane = None if reset is None else e.get((K.SUB, v, reset), create=False)
        if membrane is None and k < len(steps) - 1:
            return None
        summed = [s for s, node in sums.items() if node == spike]
        rows.append((full[name], a, b, leak, threshold, slot, summed[0] if len(summed) == 1 else -1))
        if len(summed) > 1:
            return None
    final = [slot for slot, node in stores.items() if membrane is not None and node == membrane]
    accounted = {r[SPIKE_SLOT] for r in rows} | set(final[:1])
    if set(stores) != accounted or len(final) > 1 or set(sums) != {r[SUM_SLOT] for r in rows if r[SUM_SLOT] >= 0}:
        return None  # a store or sum the kernel would not write
    if len(spike_slot) != len(stores):
        return None  # one value stored twice
    return np.array(rows, np.int64).reshape(-1, 7), state, final[0] if final else -1


@nb.njit(inline="always")
def _step(x, spikes, m, a, b, leak, threshold):
    """One row's stretch of one step; returns its spike count. ``spikes`` may be ``x`` itself (stored in place)."""
    count = 0
    for j in range(x.size):
        current = x[j] * a
        current = current + b
        v = m[j] * leak
        v = v + current
        fired = v > threshold
        s = np.float32(1.0) if fired else np.float32(0.0)
        spikes[j] = s
        count += fired
        m[j] = v - s * threshold
    return count


@nb.njit(cache=True, nogil=True)
def lif_window(steps, k, state, final, membrane, full_addresses, row_inputs, out_addresses, sums, size, length,
               r0, r1, lo, hi):
    """Step ``k`` of matched LIF steps (:func:`match_lif_steps`) on rows ``r0 .. r1``, values ``lo .. hi`` of each.

    ``membrane [(r1 - r0) * (hi - lo)]`` carries ``mem`` between steps (read
    from the state input at step 0); the last step stores it to slot
    ``final`` when that is not -1. Spike counts go to ``sums`` as exact
    integers (the interpreter's float64 sum of 0/1 values is the same).
    """
    seg = hi - lo
    x = nb.carray(address_as_pointer(full_addresses[steps[k, X]]), size, np.float32)
    spikes = nb.carray(address_as_pointer(out_addresses[steps[k, SPIKE_SLOT]]), size, np.float32)
    if k == 0:
        source = nb.carray(address_as_pointer(full_addresses[state]), size, np.float32)
        for rr in range(r1 - r0):
            base = (r0 + rr) * length + lo
            for j in range(seg):
                membrane[rr * seg + j] = source[base + j]
    count = 0
    in_place = full_addresses[steps[k, X]] == out_addresses[steps[k, SPIKE_SLOT]]
    for rr in range(r1 - r0):
        r = r0 + rr
        a, b = row_inputs[steps[k, A], r], row_inputs[steps[k, B], r]
        leak, threshold = row_inputs[steps[k, LEAK], r], row_inputs[steps[k, THRESHOLD], r]
        base = r * length + lo
        m = membrane[rr * seg:(rr + 1) * seg]
        xs = x[base:base + seg]
        if in_place:  # one array for both: the compiler then sees that loads and stores meet only at one index
            count += _step(xs, xs, m, a, b, leak, threshold)
        else:
            count += _step(xs, spikes[base:base + seg], m, a, b, leak, threshold)
    if steps[k, SUM_SLOT] >= 0:
        sums[steps[k, SUM_SLOT]] += count
    if k == steps.shape[0] - 1 and final >= 0:
        out = nb.carray(address_as_pointer(out_addresses[final]), size, np.float32)
        for rr in range(r1 - r0):
            base = (r0 + rr) * length + lo
            for j in range(seg):
                out[base + j] = membrane[rr * seg + j]


@nb.njit(cache=True, parallel=True, nogil=True)
def lif_step(steps, k, state, final, membrane, full_addresses, row_inputs, out_addresses, sums, rows, length):
    """Step ``k`` of matched LIF steps over all ``rows x length`` values (``membrane``: all of them, carried).

    For a layer whose convolutions run one step at a time (dense, or mixed
    with event steps): each step's chain runs right after its convolution.
    Spike counts are added to ``sums``.
    """
    per_item = max(1, 4096 // length)  # rows per work item: a few thousand values
    items = (rows + per_item - 1) // per_item
    partial = np.zeros((items, sums.size), np.float64)
    for item in nb.prange(items):
        r0 = item * per_item
        r1 = min(rows, r0 + per_item)
        lif_window(steps, k, state, final, membrane[r0 * length:r1 * length], full_addresses, row_inputs,
                   out_addresses, partial[item], rows * length, length, r0, r1, 0, length)
    for item in range(items):
        for j in range(sums.size):
            sums[j] += partial[item, j]
