"""The one hand-vectorized loop of the sparse backend, written as LLVM IR through a numba intrinsic.

numba's auto-vectorizer does not keep a per-output accumulator in registers
across a variable-length list of weight rows (it loads and stores the
accumulator for every row, which caps the loop at ~4 adds per cycle on the
machine we measured). This intrinsic states the loop with an explicit
``<32 x float>`` (or ``<32 x i32>``) accumulator, which LLVM lowers to four
AVX2 (or two AVX-512) registers on x86-64 and eight NEON registers on aarch64: one weight row
of 32 output channels is added per contributing input spike, nothing else
touches memory. Layers of 64k output channels use rows of 64 (``WIDE_LANES``,
:func:`accumulate_row_wide`): four accumulators per list. See ``docs/decisions.md`` ("sparse backend").

:func:`accumulate_row` (``vals`` ignored: 0/1 spikes add the row) and
:func:`accumulate_row_scaled` (``acc += vals[k] * row``) compute, for
``o in range(n)`` and ``q = q0 + o * qstep``::

    tile[t0 + o, :] += sum over k in [starts[q], starts[q + 1]) of (vals[k] *) w2[wbase + idx[k], :]

``tile``: C-contiguous 2-D, 32 columns, float32 (or int32 for int8 weights);
``w2``: C-contiguous 2-D, 32 columns, float32 (or int8, widened before the
add); ``starts`` int64, ``idx`` int32, ``vals`` the input's dtype. Outputs
whose list is empty are skipped without touching the tile. Returns the number
of (input, weight row) pairs visited, i.e. synaptic events / 32 lanes.
Accumulation per output runs in list order, so results are deterministic.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from edge_snn.runtime.backends.sparse.kernel_cache import drop_stale_cache

drop_stale_cache()  # every kernel module imports this one first: no stale cached kernel can load (see kernel_cache)

LANES = 32  # output channels per weight row (the vector width of one accumulator)
WIDE_LANES = 64  # the same for layers of 64k output channels: one visit of a list adds twice the channels


def _element(dtype) -> ir.Type:
    if isinstance(dtype, types.Float):
        return ir.FloatType() if dtype.bitwidth == 32 else ir.DoubleType()
    return ir.IntType(dtype.bitwidth)


def _splat(builder, scalar, vector_type: ir.VectorType):
    """``scalar`` in every lane of a ``vector_type`` value (LLVM's insert + zero-mask shuffle, one broadcast)."""
    undefined = ir.Constant(vector_type, ir.Undefined)
    first = builder.insert_element(undefined, scalar, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(first, undefined, ir.Constant(ir.VectorType(ir.IntType(32), vector_type.count), [0] * vector_type.count))


def _make(scaled: bool, lanes: int):
    def typer(typingctx, tile, t0, w2, wbase, starts, idx, vals, q0, qstep, n):
        for name, arr in (("tile", tile), ("w2", w2), ("starts", starts), ("idx", idx), ("vals", vals)):
            if not isinstance(arr, types.Array):
                raise TypeError(f"{name} must be an array")
        float_acc = isinstance(tile.dtype, types.Float)
        if float_acc != isinstance(w2.dtype, types.Float):
            raise TypeError("tile and w2 must both be float or both be integer")
        return types.int64(tile, t0, w2, wbase, starts, idx, vals, q0, qstep, n), _codegen

    def _codegen(context, builder, signature, args):
        sig = signature.args
        tile_a, w_a, starts_a, idx_a, vals_a = (context.make_array(sig[i])(context, builder, args[i]) for i in (0, 2, 4, 5, 6))
        i64 = ir.IntType(64)
        floating = isinstance(sig[0].dtype, types.Float)
        acc_el = _element(sig[0].dtype)
        acc_t = ir.VectorType(acc_el, lanes)
        w_t = ir.VectorType(_element(sig[2].dtype), lanes)

        def as_i64(value, ty):
            return context.cast(builder, value, ty, types.int64)

        t0, wbase, q0, qstep, n = (as_i64(args[i], sig[i]) for i in (1, 3, 7, 8, 9))
        tile_stride = builder.extract_value(tile_a.strides, 0)
        w_stride = builder.extract_value(w_a.strides, 0)
        tile_bytes = builder.bitcast(tile_a.data, ir.IntType(8).as_pointer())
        w_bytes = builder.bitcast(w_a.data, ir.IntType(8).as_pointer())

        def load_index(array, ty, at):
            value = builder.load(builder.gep(array.data, [at]))
            return as_i64(value, ty.dtype) if value.type != i64 else value

        def widen(vec):  # int8 weight row -> int32 lanes; float rows stay
            return vec if floating else builder.sext(vec, acc_t)

        def convert_scalar(value):
            if floating:
                return value if value.type == acc_el else builder.fpext(value, acc_el) if isinstance(value.type, ir.FloatType) else builder.sitofp(value, acc_el)
            return builder.sext(value, acc_el) if value.type.width < acc_el.width else value

        entry = builder.block
        o_head, o_body, o_load = (builder.append_basic_block(s) for s in ("o_head", "o_body", "o_load"))
        k_head, k_body, k_done, o_next, done = (builder.append_basic_block(s) for s in ("k_head", "k_body", "k_done", "o_next", "done"))
        builder.branch(o_head)

        builder.position_at_end(o_head)
        o = builder.phi(i64)
        visited = builder.phi(i64)
        o.add_incoming(ir.Constant(i64, 0), entry)
        visited.add_incoming(ir.Constant(i64, 0), entry)
        builder.cbranch(builder.icmp_signed("<", o, n), o_body, done)

        builder.position_at_end(o_body)
        q = builder.add(q0, builder.mul(o, qstep))
        k0 = load_index(starts_a, sig[4], q)
        k1 = load_index(starts_a, sig[4], builder.add(q, ir.Constant(i64, 1)))
        builder.cbranch(builder.icmp_signed("<", k0, k1), o_load, o_next)

        builder.position_at_end(o_load)
        acc_ptr = builder.bitcast(builder.gep(tile_bytes, [builder.mul(builder.add(t0, o), tile_stride)]), acc_t.as_pointer())
        acc0 = builder.load(acc_ptr, align=4)
        builder.branch(k_head)

        builder.position_at_end(k_head)
        k = builder.phi(i64)
        acc = builder.phi(acc_t)
        k.add_incoming(k0, o_load)
        acc.add_incoming(acc0, o_load)
        builder.cbranch(builder.icmp_signed("<", k, k1), k_body, k_done)

        builder.position_at_end(k_body)
        row = builder.add(wbase, load_index(idx_a, sig[5], k))
        row_ptr = builder.bitcast(builder.gep(w_bytes, [builder.mul(row, w_stride)]), w_t.as_pointer())
        term = widen(builder.load(row_ptr, align=1))
        if scaled:
            scalar = convert_scalar(builder.load(builder.gep(vals_a.data, [k])))
            broadcast = _splat(builder, scalar, acc_t)
            term = builder.fmul(term, broadcast) if floating else builder.mul(term, broadcast)
        summed = builder.fadd(acc, term) if floating else builder.add(acc, term)
        k.add_incoming(builder.add(k, ir.Constant(i64, 1)), k_body)
        acc.add_incoming(summed, k_body)
        builder.branch(k_head)

        builder.position_at_end(k_done)
        builder.store(acc, acc_ptr, align=4)
        counted = builder.add(visited, builder.sub(k1, k0))
        builder.branch(o_next)

        builder.position_at_end(o_next)
        new_visited = builder.phi(i64)
        new_visited.add_incoming(visited, o_body)
        new_visited.add_incoming(counted, k_done)
        o.add_incoming(builder.add(o, ir.Constant(i64, 1)), o_next)
        visited.add_incoming(new_visited, o_next)
        builder.branch(o_head)

        builder.position_at_end(done)
        return visited

    return intrinsic(typer)


accumulate_row = _make(scaled=False, lanes=LANES)
accumulate_row_scaled = _make(scaled=True, lanes=LANES)
accumulate_row_wide = _make(scaled=False, lanes=WIDE_LANES)
accumulate_row_scaled_wide = _make(scaled=True, lanes=WIDE_LANES)


BLOCK = 16  # positions x channels transposed at once by store_transposed


@intrinsic
def store_transposed(typingctx, tile, t0, j0, out, n, co, pos, scale, bias):
    """Write a 16 x 16 block of an output tile into the channel planes of ``out``, scaled and biased.

    For ``i, j in range(16)``::

        out[n, co + j].flat[pos + i] = float32(tile[t0 + i, j0 + j] * scale[co + j] + bias[co + j])

    ``tile`` holds positions in rows and channels in columns; ``out`` (C-contiguous
    float32 ``[N, C, H, W]``) wants each channel's positions contiguous. The
    block is loaded as 16 rows, transposed in registers by four rounds of
    interleaving (each row i and i + 8 -> rows 2i and 2i + 1), and stored as 16
    contiguous runs. Float tiles compute ``x * float32(scale) + float32(bias)``
    in float32; integer tiles convert to float64 first. Both equal the scalar
    ``float32(x * scale + bias)`` in float64 that they replace when the scale is 1
    (float weights) or the tile holds integers, and the bias is a float32 value.
    """
    arrays = (tile, out, scale, bias)
    if not all(isinstance(a, types.Array) and a.layout == "C" for a in arrays):
        return None
    if tile.ndim != 2 or out.ndim != 4 or out.dtype != types.float32 or scale.dtype != types.float64 or bias.dtype != types.float64:
        return None
    floating = isinstance(tile.dtype, types.Float)
    if not floating and not (isinstance(tile.dtype, types.Integer) and tile.dtype.bitwidth == 32):
        return None

    def codegen(context, builder, signature, args):
        sig = signature.args
        tile_a, out_a, scale_a, bias_a = (context.make_array(sig[i])(context, builder, args[i]) for i in (0, 3, 7, 8))
        i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
        f32, f64 = ir.FloatType(), ir.DoubleType()
        el = f32 if floating else i32
        row_t = ir.VectorType(el, BLOCK)
        t0, j0, n, co, pos = (context.cast(builder, args[i], sig[i], types.int64) for i in (1, 2, 4, 5, 6))
        tile_bytes = builder.bitcast(tile_a.data, i8.as_pointer())
        tile_stride = builder.extract_value(tile_a.strides, 0)
        rows = []
        for i in range(BLOCK):
            at = builder.add(builder.mul(builder.add(t0, ir.Constant(i64, i)), tile_stride), builder.mul(j0, ir.Constant(i64, 4)))
            rows.append(builder.load(builder.bitcast(builder.gep(tile_bytes, [at]), row_t.as_pointer()), align=4))
        low = [k for i in range(BLOCK // 2) for k in (i, BLOCK + i)]
        high = [k for i in range(BLOCK // 2, BLOCK) for k in (i, BLOCK + i)]
        for _ in range(4):  # log2(16) rounds of interleaving transpose the block
            mixed = []
            for i in range(BLOCK // 2):
                for mask in (low, high):
                    mixed.append(builder.shuffle_vector(rows[i], rows[i + BLOCK // 2], ir.Constant(ir.VectorType(i32, BLOCK), mask)))
            rows = mixed
        out_bytes = builder.bitcast(out_a.data, i8.as_pointer())
        out_strides = [builder.extract_value(out_a.strides, k) for k in (0, 1)]
        base = builder.add(builder.mul(n, out_strides[0]), builder.mul(pos, ir.Constant(i64, 4)))
        wide_t = ir.VectorType(f32 if floating else f64, BLOCK)

        def splat(value):
            return _splat(builder, value, wide_t)

        for j in range(BLOCK):
            channel = builder.add(co, ir.Constant(i64, j))
            s = builder.load(builder.gep(scale_a.data, [channel]))
            b = builder.load(builder.gep(bias_a.data, [channel]))
            if floating:
                value = builder.fadd(builder.fmul(rows[j], splat(builder.fptrunc(s, f32))), splat(builder.fptrunc(b, f32)))
            else:
                value = builder.fptrunc(builder.fadd(builder.fmul(builder.sitofp(rows[j], ir.VectorType(f64, BLOCK)), splat(s)), splat(b)),
                                        ir.VectorType(f32, BLOCK))
            at = builder.add(base, builder.mul(channel, out_strides[1]))
            builder.store(value, builder.bitcast(builder.gep(out_bytes, [at]), ir.VectorType(f32, BLOCK).as_pointer()), align=4)
        return context.get_dummy_value()

    return types.none(tile, t0, j0, out, n, co, pos, scale, bias), codegen


def image_addresses(arrays) -> np.ndarray:
    """Where each image ``[C, H, W]`` of the C-contiguous ``[B, C, H, W]`` ``arrays`` lies, in order (int64).

    The kernels read images in place by these addresses (:func:`address_as_pointer`);
    the caller keeps the arrays alive until the kernel has returned.
    """
    return np.array([x.ctypes.data + i * x[0].nbytes for x in arrays for i in range(x.shape[0])], np.int64)


@intrinsic
def address_as_pointer(typingctx, address):
    """An integer address (``array.ctypes.data``) as a ``void*``, for ``numba.carray`` views of many arrays at once."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], ir.IntType(8).as_pointer())

    return types.voidptr(address), codegen


@intrinsic
def trailing_zeros(typingctx, word):
    """The index of the lowest set bit of a nonzero ``uint64`` (LLVM's ``cttz``: one instruction on x86-64 and aarch64)."""
    if not (isinstance(word, types.Integer) and word.bitwidth == 64 and not word.signed):
        return None

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fn = builder.module.declare_intrinsic("llvm.cttz", [i64], ir.FunctionType(i64, [i64, ir.IntType(1)]))
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 1)])  # zero input: undefined, never passed

    return types.uint64(word), codegen
