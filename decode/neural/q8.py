"""Integer matrix products: int16-quantized activations times the model's own weight blocks.

Weights stay in two of GGUF's block formats (see :mod:`.blocks`): Q8_0 (32 int8 values
and one fp16 scale) and Q4_1 (32 4-bit values, an fp16 scale and an fp16 minimum:
``w = d * nibble + m``). Each linear layer quantizes its input rows to int16 blocks of 32
with one float32 scale (and, for Q4_1, the block's sum), then multiplies them with the
weights widened to int16: ``vpdpwssd`` where the CPU has AVX-512 VNNI, ``vpmaddwd`` on AVX2.

The weights are row-interleaved (see :mod:`.blocks`): one instruction takes the same
2-value word of 8 rows and multiplies it by the same 2 activations broadcast to all lanes,
so each of the 8 int32 lanes sums one row's block exactly, with no horizontal sums; a block
then costs one conversion and one FMA by the 8 rows' scales per token. Tiles of 8 rows by up
to 8 tokens share every load. Against tiles of 2 rows whose lanes held parts of one row's
block (a conversion, a scale product and an FMA per row and token, then a horizontal sum):
2x faster on SmolLM2's matrices for 1 to 9 tokens (measured in one process).

Why: decoding one token streams every weight from memory, so bytes per weight set the
speed (4.5 bits for Q4_1, 8.5 for Q8_0), and a weight block then costs a handful of
instructions per token instead of 32 float FMAs plus a dequantization, so verifying 8
drafted tokens costs far less than 8 decode steps. int16 rather than int8 activations:
with int8 blocks, SmolLM2's logits on a 440-token Python file agreed with the float
reference on 93.6 % of top-1 tokens (min row correlation 0.9960); int16: 96.8 % (0.9987),
both with the weights re-quantized to int8. Each block's integer sum is exact, and each
(row, token) goes through the same float operations in the same order whatever the tile,
so a token's logits do not depend on how many tokens were verified with it.

CPUs without AVX2 (and non-x86 ones) keep the float kernels of :mod:`.llama`:
``AVAILABLE`` says which is in use (``SPARKLS_FLOAT_KERNELS=1`` forces the float ones).
Numba's cache does not notice edits to this file in the functions of other modules that
inline it (:mod:`.int8` inlines :func:`quantize_row`): clear ``decode/neural/__pycache__`` after editing.
"""

from __future__ import annotations

import os
import tempfile

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types

from .cpu import FEATURES as _FEATURES
from .blocks import GROUP
from numba.core import cgutils
from numba.core.extending import intrinsic

BLOCK = 32

VNNI = {"avx512vnni", "avx512vl"} <= _FEATURES
FORCED_FLOAT = os.environ.get("SPARKLS_FLOAT_KERNELS", "") not in ("", "0")
# F16C (fp16 scales) came before AVX2 on every x86 CPU; checked anyway.
AVAILABLE = {"avx2", "f16c"} <= _FEATURES and not FORCED_FLOAT
if FORCED_FLOAT and not os.environ.get("NUMBA_CACHE_DIR"):
    # Numba keys a cached function by its source location, not by what it calls: without a
    # cache of their own, the float kernels' forward pass would be the integer one loaded again.
    numba.config.CACHE_DIR = os.path.join(tempfile.gettempdir(), f"sparkls-float-kernels-{getattr(os, 'getuid', lambda: 0)()}")

_I8, _I16, _I32, _I64, _F16, _F32 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64), ir.HalfType(), ir.FloatType()
_V16I8, _V16I16, _V8I32, _V8F16, _V8F32 = (ir.VectorType(_I8, 16), ir.VectorType(_I16, 16), ir.VectorType(_I32, 8),
                                           ir.VectorType(_F16, 8), ir.VectorType(_F32, 8))  # fmt: skip


def _lanes(idx: list[int]) -> ir.Constant:
    return ir.Constant(ir.VectorType(_I32, len(idx)), idx)


def _declare(builder, name: str, ret, args):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)


def item_ptr(context, builder, arr, idx):
    """Address of arr[idx] (a Numba array struct, any strides) in an intrinsic's codegen."""
    n = len(idx)
    shape = cgutils.unpack_tuple(builder, arr.shape, n)
    strides = cgutils.unpack_tuple(builder, arr.strides, n)
    return cgutils.get_item_pointer2(context, builder, arr.data, shape, strides, "A", idx)


def splat(builder, value, vty):
    """value in all 8 lanes of a vector of type vty."""
    v = builder.insert_element(ir.Constant(vty, None), value, _I32(0))
    return builder.shuffle_vector(v, v, _lanes([0] * 8))


def store_group(context, builder, out_, g_, tokens, accs):
    """out[tok, 8g:8g+8] = each token's accumulator (8 x float32 in an alloca), the columns past
    out's end left out (the last group of a matrix whose rows are not a multiple of 8)."""
    n_out = cgutils.unpack_tuple(builder, out_.shape, 2)[1]
    col0 = builder.mul(g_, _I64(GROUP))
    whole = builder.icmp_signed("<=", builder.add(col0, _I64(GROUP)), n_out)
    with builder.if_else(whole, likely=True) as (full, partial):
        with full:
            for t, tok in enumerate(tokens):
                builder.store(builder.load(accs[t]), builder.bitcast(item_ptr(context, builder, out_, [tok, col0]), _V8F32.as_pointer()), align=4)
        with partial:
            for t, tok in enumerate(tokens):
                v = builder.load(accs[t])
                for i in range(GROUP):
                    col = builder.add(col0, _I64(i))
                    with builder.if_then(builder.icmp_signed("<", col, n_out)):
                        builder.store(builder.extract_element(v, _I32(i)), item_ptr(context, builder, out_, [tok, col]))


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def quantize_row(x, xq, xs, xsum, t, top):
    """Row t of x (T, n) float32 -> integer blocks of 32 in xq (values within +-top: 32767 for int16,
    127 for int8), their scales xs[t] and the dequantized sums of the blocks xsum[t]."""
    for b in range(x.shape[1] // BLOCK):  # no slice per block, a select for the max, rint: 1.6x faster than before, same results (measured)
        o = b * BLOCK
        amax = np.float32(0.0)
        for j in range(BLOCK):
            a = abs(x[t, o + j])
            amax = a if a > amax else amax
        xs[t, b] = amax / top
        inv = top / amax if amax > 0 else np.float32(0.0)
        total = np.int32(0)
        for j in range(BLOCK):
            v = np.int32(np.rint(x[t, o + j] * inv))  # rint: round half to even, as np.round
            xq[t, o + j] = v
            total += v
        xsum[t, b] = np.float32(total) * xs[t, b]


def _group_dot(n_tokens: int, q4: bool):
    """An intrinsic: ``group_dot(out, q, d, m, xq, xs, xsum, g, t0)`` writes out[t0+t, 8g:8g+8] for t < n_tokens.

    One int32 lane per weight row: each instruction multiplies one word (2 values) of 8 rows
    by the same 2 activations, broadcast, so a block's 32 products land summed in the row's
    lane; a block ends with one conversion and one FMA by the 8 rows' scales for all 8 rows.
    """
    K = 8 if q4 else 16
    # Independent integer accumulators per token: with one, a block's 16 vpdpwssd form a
    # dependency chain per token and 8 tokens ran 20 % slower than with 4 chains (measured
    # with the group hot in cache: 71 vs 89 MACs/ns per thread; vpdpwssd's peak here is 116).
    chains = 4

    @intrinsic
    def group_dot(typingctx, out, q, d, m, xq, xs, xsum, g, t0):
        def codegen(context, builder, signature, args):
            out_, q_, d_, m_, xq_, xs_, xsum_ = (context.make_array(ty)(context, builder, a) for ty, a in zip(signature.args[:7], args[:7]))
            g_ = context.cast(builder, args[7], signature.args[7], types.int64)
            t0_ = context.cast(builder, args[8], signature.args[8], types.int64)

            def ptr(arr, idx):
                return item_ptr(context, builder, arr, idx)

            def splat8(value, vty):
                return splat(builder, value, vty)

            zero_i, zero_f = ir.Constant(_V8I32, [0] * 8), ir.Constant(_V8F32, [0.0] * 8)
            if VNNI:
                dp = _declare(builder, "llvm.x86.avx512.vpdpwssd.256", _V8I32, [_V8I32, _V8I32, _V8I32])

                def madd(acc, w, x):
                    return builder.call(dp, [acc, builder.bitcast(w, _V8I32), x])
            else:
                pmadd = _declare(builder, "llvm.x86.avx2.pmadd.wd", _V8I32, [_V16I16, _V16I16])

                def madd(acc, w, x):
                    return builder.add(acc, builder.call(pmadd, [w, builder.bitcast(x, _V16I16)]))

            fma = _declare(builder, "llvm.fma.v8f32", _V8F32, [_V8F32] * 3)
            n_blocks = cgutils.unpack_tuple(builder, d_.shape, 3)[1]
            tokens = [builder.add(t0_, _I64(t)) for t in range(n_tokens)]
            accs = [cgutils.alloca_once_value(builder, zero_f) for _ in range(n_tokens)]
            with cgutils.for_range(builder, n_blocks) as loop:
                b = loop.index
                scales = builder.fpext(builder.load(builder.bitcast(ptr(d_, [g_, b, _I64(0)]), _V8F16.as_pointer()), align=2), _V8F32)
                x_rows = [ptr(xq_, [t, builder.mul(b, _I64(BLOCK))]) for t in tokens]
                ints = [[zero_i] * chains for _ in tokens]
                step = 0
                for k in range(K):
                    unit = builder.load(builder.bitcast(ptr(q_, [g_, b, _I64(k), _I64(0)]), _V16I8.as_pointer()), align=2)
                    if q4:
                        wide = builder.zext(unit, _V16I16)
                        parts = [(builder.and_(wide, ir.Constant(_V16I16, [15] * 16)), 2 * k),
                                 (builder.lshr(wide, ir.Constant(_V16I16, [4] * 16)), 16 + 2 * k)]  # fmt: skip
                    else:
                        parts = [(builder.sext(unit, _V16I16), 2 * k)]
                    for w, col in parts:
                        c = step % chains
                        step += 1
                        for t, xr in enumerate(x_rows):
                            pair = builder.load(builder.bitcast(builder.gep(xr, [_I64(col)], source_etype=_I16), _I32.as_pointer()), align=2)
                            ints[t][c] = madd(ints[t][c], w, splat8(pair, _V8I32))
                for t, tok in enumerate(tokens):
                    total = ints[t][0]
                    for c in range(1, chains):
                        total = builder.add(total, ints[t][c])
                    x_scale = splat8(builder.load(ptr(xs_, [tok, b])), _V8F32)
                    acc = builder.call(fma, [builder.sitofp(total, _V8F32), builder.fmul(scales, x_scale), builder.load(accs[t])])
                    if q4:
                        mins = builder.fpext(builder.load(builder.bitcast(ptr(m_, [g_, b, _I64(0)]), _V8F16.as_pointer()), align=2), _V8F32)
                        acc = builder.call(fma, [mins, splat8(builder.load(ptr(xsum_, [tok, b])), _V8F32), acc])
                    builder.store(acc, accs[t])
            store_group(context, builder, out_, g_, tokens, accs)
            return context.get_dummy_value()

        return types.void(out, q, d, m, xq, xs, xsum, g, t0), codegen

    return group_dot


def _group_tiles(d1, d2, d3, d4, d5, d6, d7, d8):
    @njit(cache=True, inline="always")
    def group(out, q, d, m, xq, xs, xsum, g, T):
        """out[:, 8g:8g+8] for every token, in as few tiles of at most 8 tokens as possible, of
        balanced sizes: a tile reads and widens the group's weights once, so 7 tokens as one
        tile cost less than as 4 + 2 + 1, and 9 as 5 + 4 less than 8 + 1 (measured: 7 tokens
        took as long as 8 with tiles of 8, 4, 2 and 1 only)."""
        n_tiles = (T + 7) // 8
        t = 0
        for i in range(n_tiles):
            size = (T - t) // (n_tiles - i)
            # Spelled out: an intrinsic is called by name only (see attention._weigh_slab).
            if size == 8:
                d8(out, q, d, m, xq, xs, xsum, g, t)
            elif size == 7:
                d7(out, q, d, m, xq, xs, xsum, g, t)
            elif size == 6:
                d6(out, q, d, m, xq, xs, xsum, g, t)
            elif size == 5:
                d5(out, q, d, m, xq, xs, xsum, g, t)
            elif size == 4:
                d4(out, q, d, m, xq, xs, xsum, g, t)
            elif size == 3:
                d3(out, q, d, m, xq, xs, xsum, g, t)
            elif size == 2:
                d2(out, q, d, m, xq, xs, xsum, g, t)
            else:
                d1(out, q, d, m, xq, xs, xsum, g, t)
            t += size

    return group


_group_q8 = _group_tiles(*(_group_dot(n, False) for n in range(1, 9)))
_group_q4 = _group_tiles(*(_group_dot(n, True) for n in range(1, 9)))


@njit(cache=True, fastmath=True, error_model="numpy")
def quantize_part(i, n, out, x, q, d, m, half, xq, xq8, xs, xsum, wbuf):
    """Part i of n of a linear layer's first step: rows of x (T, n) float32 -> int16 blocks xq (T, n), their
    scales xs and the dequantized sums of the blocks xsum. Arguments as every kernel's (see :mod:`.linear`)."""
    T = x.shape[0]
    for t in range(i * T // n, (i + 1) * T // n):
        quantize_row(x, xq, xs, xsum, t, np.float32(32767.0))


@njit(cache=True, error_model="numpy")
def products_part(i, n, out, x, q, d, m, half, xq, xq8, xs, xsum, wbuf):
    """Part i of n of the second step: out (T, rows) = the int16 activations @ W.T, for consecutive groups
    of 8 rows of a row-interleaved Q4_1 (K = 8 words per block) or Q8_0 (K = 16) W.

    Each group of 8 weight rows is read from memory once; tiles of up to 8 tokens share every load.
    """
    T = x.shape[0]
    G = q.shape[0]
    if q.shape[2] == 8:
        for g in range(i * G // n, (i + 1) * G // n):
            _group_q4(out, q, d, m, xq, xs, xsum, g, T)
    else:
        for g in range(i * G // n, (i + 1) * G // n):
            _group_q8(out, q, d, m, xq, xs, xsum, g, T)
