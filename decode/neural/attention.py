"""Causal grouped-query attention over the bf16 KV cache, in parallel chunks of positions.

The work of one layer is split into items of (KV head, chunk of CHUNK positions), run in
parallel. An item computes, for every query row that sees its chunk and every query head
of its KV head, the scores of the chunk's positions, their softmax *within the chunk*
(max m, sum l of exp(s - m)) and the exp-weighted sum o of the chunk's values; then each
row combines its chunks: out = sum_c exp(m_c - M) o_c / sum_c exp(m_c - M) l_c, M the
largest m_c (split-K "flash decoding"). Why:

- One parallel item reads a key tile and a value row once for all the query heads that
  share it (3 in SmolLM2) and all verified tokens, and the items balance the two cores
  whatever the number of rows (9 heads on 2 threads did not).
- Attention is where a verified draft token costs most (every cached position, every
  head), so its products take pairs: keys, values, queries and softmax weights are bf16
  (the precision SmolLM2 was trained and is usually run in), stored side by side in pairs
  (two key dims of a position, or one value dim of two positions), and one ``vdpbf16ps``
  (AVX512-BF16) multiplies 8 lanes of pairs and adds both products: half the instructions
  of float FMAs over fp16, measured 2.1x faster per key tile. Elsewhere a pair is split by
  two integer ops into floats for two FMAs (bf16 is the top half of a float32).
- The kernels keep 3 heads x 64 positions (or dims) of accumulators in registers and read
  each key and value once per item, not once per head.

A row's result depends only on its own position: the same chunks, kernels and order of
operations whether it is computed alone or among other rows, so verified drafts match
plain decoding bit for bit.

Layouts (uint16 bf16 bits): key_cache (L, KVH, ctx/KEY_TILE, hs/2, 2*KEY_TILE), element
[tile, j, 2p + e] = key dim 2j + e of position KEY_TILE*tile + p; value_cache (L, KVH,
ctx/2, 2*hs), element [i, 2d + e] = value dim d of position 2i + e; queries (T, H, hs/2)
uint32, the bf16 pair of dims (2j, 2j + 1) in the low and high half.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from .bf16 import float_from_bits
from .native import Kernel, caller
from .q8 import _FEATURES, FORCED_FLOAT

KEY_TILE = 64  # positions per key tile
CHUNK = 128  # positions per parallel item (a multiple of KEY_TILE)
LANES = 8  # floats per vector (8 pairs of bf16)
SLAB = 64  # value dims per kernel call: 8 vectors of accumulators per head
# With 32 vector registers (AVX-512VL), 3 heads x 8 vectors of accumulators fit; with 16, one head's.
MAX_HEADS = 3 if "avx512vl" in _FEATURES else 1
BF16_DOT = {"avx512bf16", "avx512vl"} <= _FEATURES and not FORCED_FLOAT  # SPARKLS_FLOAT_KERNELS=1 tests the other path

_I16, _I32, _I64, _F32 = ir.IntType(16), ir.IntType(32), ir.IntType(64), ir.FloatType()
_V8I32, _V8F32 = ir.VectorType(_I32, LANES), ir.VectorType(_F32, LANES)


class _BFloat(ir.types.Type):
    """LLVM's ``bfloat`` (llvmlite has no class for it): the operand type of the bf16 dot product."""

    def _to_string(self) -> str:
        return "bfloat"

    def __eq__(self, other) -> bool:
        return isinstance(other, _BFloat)

    def __hash__(self) -> int:
        return hash("bfloat")


_V16BF = ir.VectorType(_BFloat(), 2 * LANES)


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
        if BF16_DOT:
            self.dot = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_V8F32, [_V8F32, _V16BF, _V16BF]),
                                                      "llvm.x86.avx512bf16.dpbf16ps.256")  # fmt: skip

    def at(self, arr, r, col):
        """Address of arr[r, col] (a 2-D array, any strides)."""
        shape = cgutils.unpack_tuple(self.b, arr.shape, 2)
        strides = cgutils.unpack_tuple(self.b, arr.strides, 2)
        return cgutils.get_item_pointer2(self.c, self.b, arr.data, shape, strides, "A", [r, col])

    def pairs(self, ptr, k):
        """8 bf16 pairs (16 uint16) at ptr + 16k, as 8 x i32."""
        p = self.b.gep(ptr, [_I64(k * 2 * LANES)], source_etype=_I16)
        return self.b.load(self.b.bitcast(p, _V8I32.as_pointer()), align=2)

    def splat_pair(self, ptr):
        """One bf16 pair (a uint32 at ptr) in every lane, ready for :meth:`dot_into`."""
        v = self.b.insert_element(ir.Constant(_V8I32, None), self.b.load(ptr, typ=_I32), _I32(0))
        v = self.b.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))
        return v if BF16_DOT else self.halves(v)

    def halves(self, v):
        """8 x i32 of bf16 pairs -> (low halves, high halves) as floats."""
        lo = self.b.bitcast(self.b.shl(v, ir.Constant(_V8I32, [16] * LANES)), _V8F32)
        hi = self.b.bitcast(self.b.and_(v, ir.Constant(_V8I32, [-65536] * LANES)), _V8F32)
        return lo, hi

    def accumulators(self, n):
        return [cgutils.alloca_once_value(self.b, ir.Constant(_V8F32, [0.0] * LANES)) for _ in range(n)]

    def dot_into(self, acc, x, w):
        """acc += x.lo * w.lo + x.hi * w.hi, lane by lane (x 8 pairs, w a pair from :meth:`splat_pair`)."""
        if BF16_DOT:
            bf = [self.b.bitcast(v, _V16BF) for v in (x, w)]
            self.b.store(self.b.call(self.dot, [self.b.load(acc), *bf]), acc)
        else:
            (x_lo, x_hi), (w_lo, w_hi) = self.halves(x), w
            part = self.b.call(self.fma, [x_lo, w_lo, self.b.load(acc)])
            self.b.store(self.b.call(self.fma, [x_hi, w_hi, part]), acc)

    def store(self, acc, ptr, k):
        self.b.store(self.b.load(acc), self.b.bitcast(self.b.gep(ptr, [_I64(k * LANES)], source_etype=_F32), _V8F32.as_pointer()), align=4)


def _score_kernel(n_heads: int):
    """``scores(tile, q, s, h0, col)``: s[r, col:col+64] = q[h0+r] . keys of the tile, r < n_heads.

    tile (hs/2, 2*KEY_TILE) bf16 pairs of a key tile; q (heads, hs/2) uint32 bf16 pairs of
    the queries (already scaled); s (>= n_heads, >= col+64) float32. Each key pair is read
    once for all the heads; every score sums its products pair by pair in dim order.
    """

    @intrinsic
    def scores(typingctx, tile, q, s, h0, col):
        def codegen(context, builder, signature, args):
            g = _Ir(context, builder, signature, args)
            tile_, q_, s_ = g.arrays[:3]
            h0_, col_ = g.ints[3], g.ints[4]
            n_pairs = cgutils.unpack_tuple(builder, tile_.shape, 2)[0]
            vecs = KEY_TILE // LANES
            accs = g.accumulators(n_heads * vecs)
            with cgutils.for_range(builder, n_pairs) as loop:
                j = loop.index
                keys = g.at(tile_, j, _I64(0))
                qs = [g.splat_pair(g.at(q_, builder.add(h0_, _I64(r)), j)) for r in range(n_heads)]
                for k in range(vecs):
                    x = g.pairs(keys, k)
                    for r in range(n_heads):
                        g.dot_into(accs[r * vecs + k], x, qs[r])
            for r in range(n_heads):
                out = g.at(s_, _I64(r), col_)
                for k in range(vecs):
                    g.store(accs[r * vecs + k], out, k)
            return context.get_dummy_value()

        return types.void(tile, q, s, h0, col), codegen

    return scores


def _value_kernel(n_heads: int, vecs: int):
    """``weigh(values, e, o, h0, d0, i0, n)``: o[h0+r, d0:d0+8*vecs] = sum over positions p of
    weight(r, p) * value(p, d0:...), for the n position pairs i0.. of values (positions 2*i0..).

    values (ctx/2, 2*hs) bf16 value pairs; e (>= n_heads, >= n) uint32 bf16 pairs of the
    weights of those positions; o (heads, hs) float32. Each value row is read once for all
    the heads; every output element sums its products pair by pair in position order.
    """

    @intrinsic
    def weigh(typingctx, values, e, o, h0, d0, i0, n):
        def codegen(context, builder, signature, args):
            g = _Ir(context, builder, signature, args)
            values_, e_, o_ = g.arrays[:3]
            h0_, d0_, i0_, n_ = g.ints[3:7]
            accs = g.accumulators(n_heads * vecs)
            with cgutils.for_range(builder, n_) as loop:
                i = loop.index
                row = g.at(values_, builder.add(i0_, i), builder.mul(d0_, _I64(2)))
                ws = [g.splat_pair(g.at(e_, _I64(r), i)) for r in range(n_heads)]
                for k in range(vecs):
                    x = g.pairs(row, k)
                    for r in range(n_heads):
                        g.dot_into(accs[r * vecs + k], x, ws[r])
            for r in range(n_heads):
                out = g.at(o_, builder.add(h0_, _I64(r)), d0_)
                for k in range(vecs):
                    g.store(accs[r * vecs + k], out, k)
            return context.get_dummy_value()

        return types.void(values, e, o, h0, d0, i0, n), codegen

    return weigh


@intrinsic
def _max8(typingctx, row, n):
    """The largest of row[:n] (a contiguous float32 row, n a multiple of 8, > 0), 8 lanes at a time:
    LLVM leaves Numba's scalar max loop unvectorized (it took half of the softmax's time, measured)."""
    if not (isinstance(row, types.Array) and row.ndim == 1 and row.dtype == types.float32):  # rows of sbuf: unit stride
        raise numba.core.errors.TypingError("_max8 needs a float32 row")

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


@intrinsic
def _softmax_pairs(typingctx, row, packed, n, top):
    """Weights exp(row[i] - top) for i < n, rounded to bf16 (nearest even), stored as pairs
    (positions 2i, 2i+1 in the low and high half of packed[i], a float32 slot holding the
    bits; a lone last position pairs with 0); returns the sum of the rounded weights.

    16 positions at a time, in vector IR: as Numba loops (exp, then rounding and pairing),
    this was a third of a long prompt's attention (measured), the products being the rest.
    row, packed: contiguous float32 rows with room for n rounded up to 16. exp as :func:`fast_exp`, one degree less."""
    for arr in (row, packed):
        if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.dtype == types.float32):
            raise numba.core.errors.TypingError("_softmax_pairs needs float32 rows")

    def codegen(context, builder, signature, args):
        b = builder
        row_, packed_ = (context.make_array(ty)(context, b, a) for ty, a in zip(signature.args[:2], args[:2]))
        n_ = context.cast(b, args[2], signature.args[2], types.int64)

        def vf(x):
            return ir.Constant(_V8F32, [x] * LANES)

        def vi(x):
            return ir.Constant(_V8I32, [x] * LANES)

        def fn(name, n_args=1):
            return cgutils.get_or_insert_function(b.module, ir.FunctionType(_V8F32, [_V8F32] * n_args), name)

        fma, floor = fn("llvm.fma.v8f32", 3), fn("llvm.floor.v8f32")
        fmin, fmax = fn("llvm.minnum.v8f32", 2), fn("llvm.maxnum.v8f32", 2)
        top_v = b.insert_element(ir.Constant(_V8F32, None), args[3], _I32(0))
        top_v = b.shuffle_vector(top_v, top_v, ir.Constant(_V8I32, [0] * LANES))
        lane = ir.Constant(_V8I32, list(range(LANES)))
        n32 = b.trunc(n_, _I32)
        n_v = b.shuffle_vector(b.insert_element(ir.Constant(_V8I32, None), n32, _I32(0)), ir.Constant(_V8I32, None), ir.Constant(_V8I32, [0] * LANES))
        sums = cgutils.alloca_once_value(b, vf(0.0))

        def weights(i0):
            """8 weights of positions i0.., rounded to bf16, as int32 bits >> 16 (0 past n)."""
            at = b.gep(row_.data, [i0], source_etype=_F32)
            x = b.fsub(b.load(b.bitcast(at, _V8F32.as_pointer()), align=4), top_v)
            x = b.call(fmin, [b.call(fmax, [x, vf(-87.0)]), vf(88.0)])
            t = b.fmul(x, vf(1.4426950408889634))
            k = b.call(floor, [b.fadd(t, vf(0.5))])
            r = b.fmul(b.fsub(t, k), vf(0.6931471805599453))
            p = vf(1.0 / 120.0)  # degree 5, relative error < 3e-6: far below bf16's 2**-9 rounding
            for c in (1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0):
                p = b.call(fma, [p, r, vf(c)])
            scale = b.bitcast(b.shl(b.add(b.fptosi(k, _V8I32), vi(127)), vi(23)), _V8F32)
            bits = b.bitcast(b.fmul(p, scale), _V8I32)
            bits = b.lshr(b.add(b.add(bits, vi(0x7FFF)), b.and_(b.lshr(bits, vi(16)), vi(1))), vi(16))
            pos = b.add(lane, b.shuffle_vector(b.insert_element(ir.Constant(_V8I32, None), b.trunc(i0, _I32), _I32(0)),
                                               ir.Constant(_V8I32, None), ir.Constant(_V8I32, [0] * LANES)))
            bits = b.select(b.icmp_signed("<", pos, n_v), bits, vi(0))
            b.store(b.fadd(b.load(sums), b.bitcast(b.shl(bits, vi(16)), _V8F32)), sums)
            return bits

        with cgutils.for_range(b, b.sdiv(b.add(n_, _I64(2 * LANES - 1)), _I64(2 * LANES))) as loop:
            i0 = b.mul(loop.index, _I64(2 * LANES))
            lo, hi = weights(i0), weights(b.add(i0, _I64(LANES)))
            even = b.shuffle_vector(lo, hi, ir.Constant(_V8I32, list(range(0, 2 * LANES, 2))))
            odd = b.shuffle_vector(lo, hi, ir.Constant(_V8I32, list(range(1, 2 * LANES, 2))))
            at = b.gep(packed_.data, [b.mul(loop.index, _I64(LANES))], source_etype=_F32)
            b.store(b.bitcast(b.or_(even, b.shl(odd, vi(16))), _V8F32), b.bitcast(at, _V8F32.as_pointer()), align=4)
        reduce = cgutils.get_or_insert_function(b.module, ir.FunctionType(_F32, [_F32, _V8F32]), "llvm.vector.reduce.fadd.v8f32")
        return b.call(reduce, [ir.Constant(_F32, 0.0), b.load(sums)])

    return types.float32(row, packed, n, top), codegen


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
def _weigh_slab(values, e, o, h0, n, d0, wide, i0, count):
    """The value kernel for heads h0..h0+n-1 (n <= 3) and dims d0.. (64 of them if ``wide``, else 8).

    Spelled out branch by branch: Numba calls an intrinsic only by its global name, and a
    generic dispatcher taking ``*args`` cannot be inlined, which made a chunk 45 % slower (measured)."""
    if wide:
        if n == 3:
            _weigh3(values, e, o, h0, d0, i0, count)
        elif n == 2:
            _weigh2(values, e, o, h0, d0, i0, count)
        else:
            _weigh1(values, e, o, h0, d0, i0, count)
    elif n == 3:
        _weigh3_8(values, e, o, h0, d0, i0, count)
    elif n == 2:
        _weigh2_8(values, e, o, h0, d0, i0, count)
    else:
        _weigh1_8(values, e, o, h0, d0, i0, count)


@njit(cache=True, fastmath=True, inline="always")
def _chunk(key_tiles, values, q, s, e, part_m, part_l, part_o, g, kv_mul, c, p0, n):
    """Scores, in-chunk softmax and weighted values of positions p0..p0+n-1 for the query
    heads of KV head g (queries q (heads, hs/2) of one row). Writes part_m/part_l[h, c] and
    part_o[h, c, :] for those heads. Scratch: s (>= 3, CHUNK + 1) float32 scores, e (>= 3,
    >= CHUNK/2) their weights as bf16 pairs (the bits of each pair held in a float32)."""
    n_pairs = q.shape[1]
    hs = 2 * n_pairs
    for h0 in range(g * kv_mul, (g + 1) * kv_mul, MAX_HEADS):
        nh = min(MAX_HEADS, (g + 1) * kv_mul - h0)
        for tile in range(p0 // KEY_TILE, (p0 + n + KEY_TILE - 1) // KEY_TILE):
            _scores(key_tiles[tile], q, s, h0, nh, tile * KEY_TILE - p0)
        for r in range(nh):
            row, packed = s[r], e[r]
            top = _row_max(row, n)
            total = _softmax_pairs(row, packed, n, top)
            part_m[h0 + r, c] = top
            part_l[h0 + r, c] = total  # the sum of the weights as rounded, so the output is their exact average
        o = part_o[:, c, :]
        i0, count = p0 // 2, (n + 1) // 2
        for d0 in range(0, hs - hs % SLAB, SLAB):
            _weigh_slab(values, e, o, h0, nh, d0, True, i0, count)
        for d0 in range(hs - hs % SLAB, hs, LANES):
            _weigh_slab(values, e, o, h0, nh, d0, False, i0, count)


def attention(out, q, key_cache, value_cache, layer, pos0, kv_mul, sbuf, part_m, part_l, part_o) -> None:
    """Causal grouped-query attention of T query rows at positions pos0.., all heads (from Python: tests, benches).

    out (T, heads*hs); q (T, heads, hs/2) bf16 pairs of the queries, scaled by 1/sqrt(hs);
    key_cache and value_cache as in the module docstring, filled for positions < pos0 + T.
    Row t attends to positions 0..pos0+t. Scratch: sbuf (threads, >= min(kv_mul,
    MAX_HEADS) * 2, CHUNK + 1) float32, each thread's scores, then weights; part_m, part_l (>= T, heads,
    ctx/CHUNK) and part_o (>= T, heads, ctx/CHUNK, hs) each chunk's softmax max, sum and
    weighted values. The forward pass runs the same two steps from compiled code (see :data:`ARGS`).
    """
    threads = numba.get_num_threads()
    args = (out, q, key_cache, value_cache, layer, pos0, kv_mul, sbuf, part_m, part_l, part_o)
    launch(CHUNKS.address(), threads, *args)
    launch(COMBINE.address(), combine_parts(threads, q.shape[0]), *args)


@njit(cache=True, fastmath=True)
def chunks_part(i, n, out, q, key_cache, value_cache, layer, pos0, kv_mul, sbuf, part_m, part_l, part_o):
    """Part i of n of attention's first step: its share of the items (KV head, chunk of CHUNK positions), in
    order, with the scratch rows ``sbuf[i]``. A thread walks through consecutive chunks: the prefetcher streams them."""
    T, n_heads, n_pairs = q.shape
    n_kv = n_heads // kv_mul
    chunks = (pos0 + T + CHUNK - 1) // CHUNK
    items = chunks * n_kv
    rows = sbuf.shape[1] // 2
    s, e = sbuf[i, :rows], sbuf[i, rows:]
    for item in range(i * items // n, (i + 1) * items // n):
        g, c = item // chunks, item % chunks
        p0 = c * CHUNK
        for t in range(max(p0 - pos0, 0), T):  # rows that see part of this chunk
            count = min(CHUNK, pos0 + t + 1 - p0)
            _chunk(key_cache[layer, g], value_cache[layer, g], q[t], s, e, part_m[t], part_l[t], part_o[t], g, kv_mul, c, p0, count)


@njit(cache=True, fastmath=True)
def combine_part(i, n, out, q, key_cache, value_cache, layer, pos0, kv_mul, sbuf, part_m, part_l, part_o):
    """Part i of n of the second step: rows i*T//n.. combine their chunks (:func:`_combine`)."""
    T = q.shape[0]
    _combine(out, part_m, part_l, part_o, pos0, i * T // n, (i + 1) * T // n)


def combine_parts(threads: int, T: int) -> int:
    """How many parts the combine step takes: one for a few rows (a thread launch costs more than it saves)."""
    return min(threads, T) if T >= COMBINE_SPLIT else 1


@njit(cache=True, fastmath=True, inline="always")
def _combine(out, part_m, part_l, part_o, pos0, t0, t1):
    """Rows t0..t1-1 combine their chunks, in chunk order: out = sum_c exp(m_c - M) o_c / sum_c exp(m_c - M) l_c.

    Never inside a ``parallel=True`` function: there Numba turns the array expressions of a loop body into
    parallel regions, one thread launch each (that made a 9-row layer 2x slower, measured)."""
    n_heads, hs = part_o.shape[1], part_o.shape[3]
    weights = np.empty(part_o.shape[2], np.float32)
    acc = np.empty(hs, np.float32)
    for t in range(t0, t1):
        seen = (pos0 + t) // CHUNK + 1
        for h in range(n_heads):
            top = np.float32(-3.0e38)
            for c in range(seen):
                top = max(top, part_m[t, h, c])
            total = np.float32(0.0)
            for c in range(seen):
                weights[c] = fast_exp(part_m[t, h, c] - top)
                total += weights[c] * part_l[t, h, c]
            for i in range(hs):
                acc[i] = 0.0
            for c in range(seen):
                f, o = weights[c], part_o[t, h, c]
                for i in range(hs):
                    acc[i] += f * o[i]
            inv = np.float32(1.0) / total
            for i in range(hs):
                out[t, h * hs + i] = acc[i] * inv


# The forward pass runs attention's two steps by address (see .native and .linear's parts): compiled once, on their own.
ARGS = (
    types.Array(types.float32, 2, "C"),  # out
    types.Array(types.uint32, 3, "C"),  # q
    types.Array(types.uint16, 5, "C"),  # key_cache
    types.Array(types.uint16, 4, "C"),  # value_cache
    types.int64,  # layer
    types.int64,  # pos0
    types.int64,  # kv_mul
    types.Array(types.float32, 3, "C"),  # sbuf
    types.Array(types.float32, 3, "C"),  # part_m
    types.Array(types.float32, 3, "C"),  # part_l
    types.Array(types.float32, 4, "C"),  # part_o
)
PART = (types.int64, types.int64) + ARGS  # part(i, n, *ARGS) and launch(part, n, *ARGS)
call = caller(PART)
COMBINE_SPLIT = 32  # rows from which the combine step runs on every thread (prompt batches, not verification)


@njit(cache=True, parallel=True)
def launch(part, n, out, q, key_cache, value_cache, layer, pos0, kv_mul, sbuf, part_m, part_l, part_o):
    """Run ``part(i, n, ...)`` (an address) for every i < n on the thread pool, or directly if n == 1 (no launch)."""
    if n == 1:
        call(part, 0, 1, out, q, key_cache, value_cache, layer, pos0, kv_mul, sbuf, part_m, part_l, part_o)
    else:
        for i in prange(n):
            call(part, i, n, out, q, key_cache, value_cache, layer, pos0, kv_mul, sbuf, part_m, part_l, part_o)


LAUNCH = Kernel(launch, PART)
CHUNKS = Kernel(chunks_part, PART)
COMBINE = Kernel(combine_part, PART)
