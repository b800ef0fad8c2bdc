"""Causal grouped-query attention straight from the fp16 KV cache, in chunks of positions.

The work of one layer is split into items of (KV head, chunk of CHUNK positions), run in
parallel. An item computes, for every query row that sees its chunk and every query head
of its KV head, the scores of the chunk's positions, their softmax *within the chunk*
(max m, sum l of exp(s - m)) and the exp-weighted sum o of the chunk's values; then each
row combines its chunks: out = sum_c exp(m_c - M) o_c / sum_c exp(m_c - M) l_c, M the
largest m_c (split-K "flash decoding"). Why:

- One parallel item reads a key tile and a value row once for all the query heads that
  share it (3 in SmolLM2) and all verified tokens, and the items balance the two cores
  whatever the number of rows (9 heads on 2 threads did not).
- Keys and values are widened from fp16 inside the kernels (``vcvtph2ps`` on x86), so
  no float copy of the layer's cache is written and read back.
- The kernels below keep 3 heads x 64 positions (or dims) of accumulators in registers
  and read each key and value once per item, not once per head: attention of a
  9-token verification at 1.8k positions took 7x a decode step's, now about 2x (measured).

A row's result depends only on its own position: the same chunks, kernels and order of
operations whether it is computed alone or among other rows, so verified drafts match
plain decoding bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from .half import float_from_bits
from .q8 import _FEATURES

KEY_TILE = 64  # positions per tile of the transposed key cache: (hs, KEY_TILE) fp16
CHUNK = 128  # positions per parallel item (a multiple of KEY_TILE)
LANES = 8  # floats per vector
SLAB = 64  # value dims per kernel call: 8 vectors of accumulators per head
# With 32 vector registers (AVX-512VL), 3 heads x 8 vectors of accumulators fit; with 16, one head's.
MAX_HEADS = 3 if "avx512vl" in _FEATURES else 1

_I16, _I32, _I64, _F32 = ir.IntType(16), ir.IntType(32), ir.IntType(64), ir.FloatType()
_V8I16, _V8F16, _V8F32 = ir.VectorType(_I16, LANES), ir.VectorType(ir.HalfType(), LANES), ir.VectorType(_F32, LANES)


@njit(cache=True, fastmath=True, inline="always")
def fast_exp(x):
    """exp(x) in float32, relative error < 4e-6; vectorizes (libm's expf does not, and SVML is absent).

    exp(x) = 2**n * exp(r) with n = round(x / ln 2), |r| <= ln(2)/2; degree-6 Taylor for exp(r).
    """
    x = min(max(x, np.float32(-87.0)), np.float32(88.0))
    t = x * np.float32(1.4426950408889634)
    n = np.floor(t + np.float32(0.5))
    r = (t - n) * np.float32(0.6931471805599453)
    p = np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    return p * float_from_bits(np.int32((np.int32(n) + 127) << 23))


class _Ir:
    """IR helpers of one kernel's codegen."""

    def __init__(self, context, builder, signature, args):
        self.c, self.b = context, builder
        self.arrays = [context.make_array(ty)(context, builder, a) if isinstance(ty, types.Array) else None
                       for ty, a in zip(signature.args, args)]  # fmt: skip
        self.ints = [context.cast(builder, a, ty, types.int64) if isinstance(ty, types.Integer) else None
                     for ty, a in zip(signature.args, args)]  # fmt: skip
        self.fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V8F32, [_V8F32] * 3), "llvm.fma.v8f32")

    def at(self, arr, r, col, etype):
        """Address of arr[r, col] (a 2-D array, any strides)."""
        shape = cgutils.unpack_tuple(self.b, arr.shape, 2)
        strides = cgutils.unpack_tuple(self.b, arr.strides, 2)
        return cgutils.get_item_pointer2(self.c, self.b, arr.data, shape, strides, "A", [r, col])

    def halves(self, ptr, k):
        """8 fp16 values at ptr + 8k, widened to floats."""
        h = self.b.load(self.b.gep(ptr, [_I64(k * LANES)], source_etype=_I16), typ=_V8I16, align=2)
        return self.b.fpext(self.b.bitcast(h, _V8F16), _V8F32)

    def splat(self, ptr):
        v = self.b.insert_element(ir.Constant(_V8F32, None), self.b.load(ptr, typ=_F32), _I32(0))
        return self.b.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))

    def accumulators(self, n):
        return [cgutils.alloca_once_value(self.b, ir.Constant(_V8F32, [0.0] * LANES)) for _ in range(n)]

    def fma_into(self, acc, a, x):
        self.b.store(self.b.call(self.fma, [a, x, self.b.load(acc)]), acc)

    def store(self, acc, ptr, k):
        self.b.store(self.b.load(acc), self.b.bitcast(self.b.gep(ptr, [_I64(k * LANES)], source_etype=_F32), _V8F32.as_pointer()), align=4)


def _score_kernel(n_heads: int):
    """``scores(tile, q, s, h0, col)``: s[r, col:col+64] = q[h0+r] . key tile, r < n_heads.

    tile (hs, KEY_TILE) fp16 bits, the keys of 64 positions transposed; q (heads, hs) float32
    queries (already scaled); s (>= n_heads, >= col+64) float32. Each key dim is read once
    for all the heads; every score sums its hs products in dim order (one FMA chain).
    """

    @intrinsic
    def scores(typingctx, tile, q, s, h0, col):
        def codegen(context, builder, signature, args):
            g = _Ir(context, builder, signature, args)
            tile_, q_, s_ = g.arrays[:3]
            h0_, col_ = g.ints[3], g.ints[4]
            hs = cgutils.unpack_tuple(builder, tile_.shape, 2)[0]
            vecs = KEY_TILE // LANES
            accs = g.accumulators(n_heads * vecs)
            with cgutils.for_range(builder, hs) as loop:
                j = loop.index
                keys = g.at(tile_, j, _I64(0), _I16)
                qs = [g.splat(g.at(q_, builder.add(h0_, _I64(r)), j, _F32)) for r in range(n_heads)]
                for k in range(vecs):
                    x = g.halves(keys, k)
                    for r in range(n_heads):
                        g.fma_into(accs[r * vecs + k], qs[r], x)
            for r in range(n_heads):
                out = g.at(s_, _I64(r), col_, _F32)
                for k in range(vecs):
                    g.store(accs[r * vecs + k], out, k)
            return context.get_dummy_value()

        return types.void(tile, q, s, h0, col), codegen

    return scores


def _value_kernel(n_heads: int, vecs: int):
    """``weigh(values, e, o, h0, d0, p0, n)``: o[h0+r, d0:d0+8*vecs] = sum_i e[r, i] * values[p0+i, d0:...], i < n.

    values (ctx, hs) fp16 bits; e (>= n_heads, >= n) float32 weights of positions p0..;
    o (heads, hs) float32. Each value row is read once for all the heads; every output
    element sums its n products in position order.
    """

    @intrinsic
    def weigh(typingctx, values, e, o, h0, d0, p0, n):
        def codegen(context, builder, signature, args):
            g = _Ir(context, builder, signature, args)
            values_, e_, o_ = g.arrays[:3]
            h0_, d0_, p0_, n_ = g.ints[3:7]
            accs = g.accumulators(n_heads * vecs)
            with cgutils.for_range(builder, n_) as loop:
                i = loop.index
                row = g.at(values_, builder.add(p0_, i), d0_, _I16)
                ws = [g.splat(g.at(e_, _I64(r), i, _F32)) for r in range(n_heads)]
                for k in range(vecs):
                    x = g.halves(row, k)
                    for r in range(n_heads):
                        g.fma_into(accs[r * vecs + k], ws[r], x)
            for r in range(n_heads):
                out = g.at(o_, builder.add(h0_, _I64(r)), d0_, _F32)
                for k in range(vecs):
                    g.store(accs[r * vecs + k], out, k)
            return context.get_dummy_value()

        return types.void(values, e, o, h0, d0, p0, n), codegen

    return weigh


@intrinsic
def _max8(typingctx, row, n):
    """The largest of row[:n] (a contiguous float32 row, n a multiple of 8, > 0), 8 lanes at a time:
    LLVM leaves Numba's scalar max loop unvectorized (it took half of the softmax's time, measured)."""
    if not (isinstance(row, types.Array) and row.ndim == 1 and row.layout == "C" and row.dtype == types.float32):
        raise numba.core.errors.TypingError("_max8 needs a contiguous float32 row")

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        n = context.cast(builder, args[1], signature.args[1], types.int64)
        fmax = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V8F32, [_V8F32, _V8F32]), "llvm.maxnum.v8f32")
        acc = cgutils.alloca_once_value(builder, ir.Constant(_V8F32, [-3.0e38] * LANES))
        with cgutils.for_range(builder, builder.sdiv(n, _I64(LANES))) as loop:
            at = builder.gep(arr.data, [builder.mul(loop.index, _I64(LANES))], source_etype=_F32)
            v = builder.load(builder.bitcast(at, _V8F32.as_pointer()), align=4)
            builder.store(builder.call(fmax, [builder.load(acc), v]), acc)
        reduce = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_F32, [_V8F32]), "llvm.vector.reduce.fmax.v8f32")
        return builder.call(reduce, [builder.load(acc)])

    return types.float32(row, n), codegen


@njit(cache=True, inline="always")
def _row_max(row, n):
    whole = n - n % LANES
    top = _max8(row, whole) if whole > 0 else np.float32(-3.0e38)
    for i in range(whole, n):
        top = max(top, row[i])
    return top


_scores1, _scores2, _scores3 = (_score_kernel(n) for n in (1, 2, 3))
_weigh1, _weigh2, _weigh3 = (_value_kernel(n, SLAB // LANES) for n in (1, 2, 3))  # 64 dims
_weigh1_8, _weigh2_8, _weigh3_8 = (_value_kernel(n, 1) for n in (1, 2, 3))  # 8 dims: head sizes not a multiple of 64


@njit(cache=True, inline="always")
def _scores(tile, q, s, h0, n, col):
    if n == 3:
        _scores3(tile, q, s, h0, col)
    elif n == 2:
        _scores2(tile, q, s, h0, col)
    else:
        _scores1(tile, q, s, h0, col)


@njit(cache=True, inline="always")
def _weigh_slab(values, e, o, h0, n, d0, wide, p0, count):
    """The value kernel for heads h0..h0+n-1 (n <= 3) and dims d0.. (64 of them if ``wide``, else 8)."""
    if wide:
        if n == 3:
            _weigh3(values, e, o, h0, d0, p0, count)
        elif n == 2:
            _weigh2(values, e, o, h0, d0, p0, count)
        else:
            _weigh1(values, e, o, h0, d0, p0, count)
    elif n == 3:
        _weigh3_8(values, e, o, h0, d0, p0, count)
    elif n == 2:
        _weigh2_8(values, e, o, h0, d0, p0, count)
    else:
        _weigh1_8(values, e, o, h0, d0, p0, count)


@njit(cache=True, fastmath=True, inline="always")
def _chunk(key_tiles, values, q, s, part_m, part_l, part_o, g, kv_mul, c, p0, n):
    """Scores, in-chunk softmax and weighted values of positions p0..p0+n-1 for the query
    heads of KV head g (queries q (heads, hs) of one row). Writes part_m/part_l[h, c] and
    part_o[h, c, :] for those heads."""
    hs = q.shape[1]
    for h0 in range(g * kv_mul, (g + 1) * kv_mul, MAX_HEADS):
        nh = min(MAX_HEADS, (g + 1) * kv_mul - h0)
        for tile in range(p0 // KEY_TILE, (p0 + n + KEY_TILE - 1) // KEY_TILE):
            _scores(key_tiles[tile], q, s, h0, nh, tile * KEY_TILE - p0)
        for r in range(nh):
            row = s[r, :n]
            top = _row_max(s[r], n)
            total = np.float32(0.0)
            for i in range(n):
                x = fast_exp(row[i] - top)
                row[i] = x
                total += x
            part_m[h0 + r, c] = top
            part_l[h0 + r, c] = total
        o = part_o[:, c, :]
        for d0 in range(0, hs - hs % SLAB, SLAB):
            _weigh_slab(values, s, o, h0, nh, d0, True, p0, n)
        for d0 in range(hs - hs % SLAB, hs, LANES):
            _weigh_slab(values, s, o, h0, nh, d0, False, p0, n)


@njit(cache=True, parallel=True, fastmath=True)
def attention(out, q, key_cache, value_cache, layer, pos0, kv_mul, sbuf, part_m, part_l, part_o):
    """Causal grouped-query attention of T query rows at positions pos0.., all heads.

    out (T, heads*hs); q (T, heads, hs) queries, scaled by 1/sqrt(hs); key_cache (L, KVH,
    ctx/KEY_TILE, hs, KEY_TILE) and value_cache (L, KVH, ctx, hs) fp16 bits, filled for
    positions < pos0 + T. Row t attends to positions 0..pos0+t. Scratch: sbuf (threads,
    >= min(kv_mul, MAX_HEADS), CHUNK) each thread's scores; part_m, part_l (>= T, heads,
    ctx/CHUNK) and part_o (>= T, heads, ctx/CHUNK, hs) each chunk's softmax max, sum and
    weighted values.
    """
    T, n_heads, hs = q.shape
    n_kv = n_heads // kv_mul
    n_last = pos0 + T
    chunks = (n_last + CHUNK - 1) // CHUNK
    for item in prange(chunks * n_kv):
        g, c = item // chunks, item % chunks  # a thread walks through consecutive chunks: the prefetcher streams them
        p0 = c * CHUNK
        s = sbuf[numba.get_thread_id()]
        for t in range(max(p0 - pos0, 0), T):  # rows that see part of this chunk
            n = min(CHUNK, pos0 + t + 1 - p0)
            _chunk(key_cache[layer, g], value_cache[layer, g], q[t], s, part_m[t], part_l[t], part_o[t], g, kv_mul, c, p0, n)
    weights = np.empty(chunks, np.float32)
    acc = np.empty(hs, np.float32)
    for t in range(T):  # each row combines its chunks, in chunk order
        seen = (pos0 + t) // CHUNK + 1
        for h in range(n_heads):
            top = np.float32(-3.0e38)
            for c in range(seen):
                top = max(top, part_m[t, h, c])
            total = np.float32(0.0)
            for c in range(seen):
                weights[c] = fast_exp(part_m[t, h, c] - top)
                total += weights[c] * part_l[t, h, c]
            acc[:] = 0.0
            for c in range(seen):
                f, o = weights[c], part_o[t, h, c]
                for i in range(hs):
                    acc[i] += f * o[i]
            inv = np.float32(1.0) / total
            for i in range(hs):
                out[t, h * hs + i] = acc[i] * inv
