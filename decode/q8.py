"""Integer matrix products: int16-quantized activations times the model's own weight blocks.

Weights stay in two of GGUF's block formats (see :mod:`.gguf_model`): Q8_0 (32 int8 values
and one fp16 scale) and Q4_1 (32 4-bit values, an fp16 scale and an fp16 minimum:
``w = d * nibble + m``). Each linear layer quantizes its input rows to int16 blocks of 32
with one float32 scale (and, for Q4_1, the block's sum), then multiplies them with the
weights widened to int16, 16 pairs per instruction: ``vpdpwssd`` where the CPU has AVX-512
VNNI, ``vpmaddwd`` on AVX2. Tiles of 2 weight rows by up to 4 tokens share every load.

Why: decoding one token streams every weight from memory, so bytes per weight set the
speed (4.5 bits for Q4_1, 8.5 for Q8_0), and a weight block then costs a handful of
instructions per token instead of 32 float FMAs plus a dequantization, so verifying 8
drafted tokens costs far less than 8 decode steps. int16 rather than int8 activations:
with int8 blocks, SmolLM2's logits on a 440-token Python file agreed with the float
reference on 93.6 % of top-1 tokens (min row correlation 0.9960); int16: 96.8 % (0.9987),
both with the weights re-quantized to int8. Each (row, token) dot is computed with the
same instructions in the same order whatever the tile, so a token's logits do not depend
on how many tokens were verified with it.

CPUs without AVX2 (and non-x86 ones) keep the float kernels of :mod:`.llama`:
``AVAILABLE`` says which is in use (``SPARKLS_FLOAT_KERNELS=1`` forces the float ones).
Numba's cache does not notice edits to this file in the functions of :mod:`.llama` that
inline it: clear ``decode/__pycache__`` after editing.
"""

from __future__ import annotations

import os
import tempfile

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.core.extending import intrinsic

BLOCK = 32


def _host_features() -> set[str]:
    try:
        llvm.initialize_native_target()
        flags = llvm.get_host_cpu_features()
    except Exception:  # an LLVM that cannot tell: assume nothing
        return set()
    return {name for name, on in flags.items() if on}


_FEATURES = _host_features()
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


def _block_products(builder, q_lo, q_hi, x_lo, x_hi):
    """The 32 products of one block (weights widened to int16), summed into 8 int32 lanes."""
    if VNNI:
        dp = _declare(builder, "llvm.x86.avx512.vpdpwssd.256", _V8I32, [_V8I32, _V8I32, _V8I32])
        acc = builder.call(dp, [ir.Constant(_V8I32, [0] * 8), builder.bitcast(q_lo, _V8I32), builder.bitcast(x_lo, _V8I32)])
        return builder.call(dp, [acc, builder.bitcast(q_hi, _V8I32), builder.bitcast(x_hi, _V8I32)])
    madd = _declare(builder, "llvm.x86.avx2.pmadd.wd", _V8I32, [_V16I16, _V16I16])
    return builder.add(builder.call(madd, [q_lo, x_lo]), builder.call(madd, [q_hi, x_hi]))


def _horizontal_sum(builder, v):
    n = v.type.count
    while n > 1:
        n //= 2
        lo = builder.shuffle_vector(v, v, _lanes(list(range(n))))
        hi = builder.shuffle_vector(v, v, _lanes(list(range(n, 2 * n))))
        v = builder.fadd(lo, hi, flags=("contract",))
    return builder.extract_element(v, _I32(0))


def _tile_dot(n_rows: int, n_tokens: int, q4: bool):
    """An intrinsic: weight rows ``i .. i+n_rows-1`` dotted with activation rows ``t0 .. t0+n_tokens-1``.

    ``tile_dot(q, d, m, xq, xs, xsum, i, t0)`` -> tuple of n_rows * n_tokens float32
    (row-major). Weights (see :func:`matmul`): q (rows, n) int8 values as uint8 for Q8_0, or
    (rows, n/2) packed nibbles for Q4_1; d (rows, n/32) fp16 bits; m (rows, n/32 padded with
    zeros to a multiple of 8) fp16 bits, unused for Q8_0. Activations: xq (T, n) int16, xs
    (T, n/32) their scales, xsum (T, as m) the dequantized sum of each block (Q4_1's
    ``m * sum(x)`` term, summed eight blocks at a time after the integer products). Per block, each weight row is loaded and
    widened once and each activation row once, for the whole tile.
    """

    @intrinsic
    def tile_dot(typingctx, q, d, m, xq, xs, xsum, i, t0):
        sig = types.UniTuple(types.float32, n_rows * n_tokens)(q, d, m, xq, xs, xsum, i, t0)

        def codegen(context, builder, signature, args):
            q_, d_, m_, xq_, xs_, xsum_ = (context.make_array(ty)(context, builder, a) for ty, a in zip(signature.args[:6], args[:6]))
            i_, t0_ = args[6], args[7]

            def row(arr, r):  # address of arr[r, 0], whatever the strides
                shape = cgutils.unpack_tuple(builder, arr.shape, 2)
                strides = cgutils.unpack_tuple(builder, arr.strides, 2)
                return cgutils.get_item_pointer2(context, builder, arr.data, shape, strides, "A", [r, _I64(0)])

            def load(ptr, index, element, ty, align):
                return builder.load(builder.gep(ptr, [index], source_etype=element), typ=ty, align=align)

            def half(ptr, index):  # an fp16 value stored as its 16 bits -> float32
                return builder.fpext(builder.bitcast(load(ptr, index, _I16, _I16, 2), _F16), _F32)

            def splat(value):
                v = builder.insert_element(ir.Constant(_V8F32, None), value, _I32(0))
                return builder.shuffle_vector(v, v, _lanes([0] * 8))

            def weights(b, q_row, d_row):
                """(values 0..15 widened, values 16..31 widened, scale splat) of block b."""
                if q4:  # byte j holds value j in its low nibble and value j + 16 in its high one
                    packed = load(q_row, builder.mul(b, _I64(16)), _I8, _V16I8, 1)
                    lo = builder.zext(builder.and_(packed, ir.Constant(_V16I8, [15] * 16)), _V16I16)
                    hi = builder.zext(builder.lshr(packed, ir.Constant(_V16I8, [4] * 16)), _V16I16)
                    return lo, hi, splat(half(d_row, b))
                start = builder.mul(b, _I64(BLOCK))
                lo = builder.sext(load(q_row, start, _I8, _V16I8, 1), _V16I16)
                hi = builder.sext(load(q_row, builder.add(start, _I64(16)), _I8, _V16I8, 1), _V16I16)
                return lo, hi, splat(half(d_row, b))

            n_blocks = cgutils.unpack_tuple(builder, d_.shape, 2)[1]
            rows = [builder.add(i_, _I64(r)) for r in range(n_rows)]
            tokens = [builder.add(t0_, _I64(t)) for t in range(n_tokens)]
            w_rows = [(row(q_, r), row(d_, r)) for r in rows]
            x_rows = [(row(xq_, t), row(xs_, t)) for t in tokens]
            accs = [cgutils.alloca_once_value(builder, ir.Constant(_V8F32, [0.0] * 8)) for _ in range(n_rows * n_tokens)]
            with cgutils.for_range(builder, n_blocks) as loop:
                b = loop.index
                lo = builder.mul(b, _I64(BLOCK))
                hi = builder.add(lo, _I64(16))
                w = [weights(b, *ptrs) for ptrs in w_rows]
                x = [(load(p, lo, _I16, _V16I16, 2), load(p, hi, _I16, _V16I16, 2), splat(load(sp, b, _F32, _F32, 4))) for p, sp in x_rows]
                for r, (q_lo, q_hi, w_scale) in enumerate(w):
                    for t, (x_lo, x_hi, x_scale) in enumerate(x):
                        sums = builder.sitofp(_block_products(builder, q_lo, q_hi, x_lo, x_hi), _V8F32)
                        scale = builder.fmul(w_scale, x_scale, flags=("contract",))
                        acc = accs[r * n_tokens + t]
                        builder.store(builder.fadd(builder.load(acc), builder.fmul(sums, scale, flags=("contract",)), flags=("contract",)), acc)
            if q4:  # sum over blocks of m * sum(x), 8 blocks at a time (m and xsum are zero-padded to a multiple of 8)
                m_rows = [row(m_, r) for r in rows]
                s_rows = [row(xsum_, t) for t in tokens]
                n_eights = builder.sdiv(cgutils.unpack_tuple(builder, m_.shape, 2)[1], _I64(8))
                with cgutils.for_range(builder, n_eights) as loop:
                    at = builder.mul(loop.index, _I64(8))
                    mins = [builder.fpext(load(p, at, _I16, _V8F16, 2), _V8F32) for p in m_rows]
                    xsums = [load(p, at, _F32, _V8F32, 4) for p in s_rows]
                    for r, mv in enumerate(mins):
                        for t, xv in enumerate(xsums):
                            acc = accs[r * n_tokens + t]
                            builder.store(builder.fadd(builder.load(acc), builder.fmul(mv, xv, flags=("contract",)), flags=("contract",)), acc)
            sums = [_horizontal_sum(builder, builder.load(a)) for a in accs]
            return context.make_tuple(builder, signature.return_type, sums)

        return sig, codegen

    return tile_dot


def _tiles(q4: bool):
    return {(r, t): _tile_dot(r, t, q4) for r in (1, 2) for t in (1, 2, 4)}


_Q8, _Q4 = _tiles(False), _tiles(True)


@njit(cache=True, fastmath=True, error_model="numpy")
def quantize(x, xq, xs, xsum):
    """Rows of x (T, n) float32 -> int16 blocks xq (T, n), their scales xs (T, n/32) and the
    dequantized sums of the blocks xsum (T, >= n/32; the columns past n/32 are zeroed)."""
    T, n = x.shape
    for t in range(T):
        xsum[t, n // BLOCK :] = 0.0
        for b in range(n // BLOCK):
            blk = x[t, b * BLOCK : (b + 1) * BLOCK]
            amax = np.float32(0.0)
            for j in range(BLOCK):
                amax = max(amax, abs(blk[j]))
            xs[t, b] = amax / np.float32(32767.0)
            inv = np.float32(32767.0) / amax if amax > 0 else np.float32(0.0)
            total = 0
            for j in range(BLOCK):
                v = np.int16(np.round(blk[j] * inv))
                xq[t, b * BLOCK + j] = v
                total += np.int32(v)
            xsum[t, b] = np.float32(total) * xs[t, b]


def _row_pair(dot_2x4, dot_2x2, dot_2x1):
    @njit(cache=True, inline="always")
    def rows(out, q, d, m, xq, xs, xsum, i, T):
        """out[:, i:i+2] for every token, in tiles of 2 weight rows x 4, 2, 1 tokens."""
        t = 0
        while t + 4 <= T:
            a0, a1, a2, a3, b0, b1, b2, b3 = dot_2x4(q, d, m, xq, xs, xsum, i, t)
            out[t, i], out[t + 1, i], out[t + 2, i], out[t + 3, i] = a0, a1, a2, a3
            out[t, i + 1], out[t + 1, i + 1], out[t + 2, i + 1], out[t + 3, i + 1] = b0, b1, b2, b3
            t += 4
        if t + 2 <= T:
            a0, a1, b0, b1 = dot_2x2(q, d, m, xq, xs, xsum, i, t)
            out[t, i], out[t + 1, i], out[t, i + 1], out[t + 1, i + 1] = a0, a1, b0, b1
            t += 2
        if t < T:
            a0, b0 = dot_2x1(q, d, m, xq, xs, xsum, i, t)
            out[t, i], out[t, i + 1] = a0, b0

    return rows


def _row_single(dot_1x4, dot_1x2, dot_1x1):
    @njit(cache=True, inline="always")
    def row(out, q, d, m, xq, xs, xsum, i, T):
        """out[:, i] for every token (the odd row left over)."""
        t = 0
        while t + 4 <= T:
            a0, a1, a2, a3 = dot_1x4(q, d, m, xq, xs, xsum, i, t)
            out[t, i], out[t + 1, i], out[t + 2, i], out[t + 3, i] = a0, a1, a2, a3
            t += 4
        if t + 2 <= T:
            a0, a1 = dot_1x2(q, d, m, xq, xs, xsum, i, t)
            out[t, i], out[t + 1, i] = a0, a1
            t += 2
        if t < T:
            (a0,) = dot_1x1(q, d, m, xq, xs, xsum, i, t)
            out[t, i] = a0

    return row


_rows_q8, _row_q8 = _row_pair(_Q8[2, 4], _Q8[2, 2], _Q8[2, 1]), _row_single(_Q8[1, 4], _Q8[1, 2], _Q8[1, 1])
_rows_q4, _row_q4 = _row_pair(_Q4[2, 4], _Q4[2, 2], _Q4[2, 1]), _row_single(_Q4[1, 4], _Q4[1, 2], _Q4[1, 1])


@njit(cache=True, parallel=True)
def matmul(out, q, d, m, xq, xs, xsum):
    """out (T, rows) = activations (T, n) @ W.T for W in Q8_0 (m has no columns) or Q4_1 blocks.

    Each weight row is read from memory once; tiles of 2 rows x up to 4 tokens share every load.
    """
    T, rows = xq.shape[0], q.shape[0]
    if m.shape[1] > 0:
        for p in prange(rows // 2):
            _rows_q4(out, q, d, m, xq, xs, xsum, 2 * p, T)
        if rows % 2:
            _row_q4(out, q, d, m, xq, xs, xsum, rows - 1, T)
    else:
        for p in prange(rows // 2):
            _rows_q8(out, q, d, m, xq, xs, xsum, 2 * p, T)
        if rows % 2:
            _row_q8(out, q, d, m, xq, xs, xsum, rows - 1, T)
