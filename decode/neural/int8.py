"""Prefill's matrix products: int8 activations times Q4_1 weight nibbles, ``vpdpbusd``.

Decoding is memory-bound, prefill compute-bound: a batch of tokens reads each weight once
and spends its time multiplying. :mod:`.q8` widens weights and activations to int16
(``vpdpwssd``: 2 products per int32 lane); here activations are int8 blocks of 32 and a
Q4_1 weight's nibble is already an unsigned byte, so ``vpdpbusd`` (u8 x s8) takes 4
products per lane, with no offset to compensate (the nibble is the unsigned operand).
The weights stay in :mod:`.blocks`' row-interleaved layout: two adjacent words of a
group (32 bytes) are interleaved 16 bits at a time so each row's lane holds 4 consecutive
bytes, i.e. 4 low nibbles (values 4j..4j+3) and 4 high ones (4j+16..4j+19).

A tile is one group of 8 rows by 8 tokens: each block's weights are unpacked once per
tile and each token's 4-byte activation word is broadcast to all 8 lanes. Every tile has
8 tokens (a short last tile repeats the last token, writing the same values again), so
one kernel is compiled per block format instead of eight.

Where it is used: batches of at least :data:`MIN_TOKENS` tokens fed as a prompt (prefill).
Verification and decode steps keep the int16 products: a token's logits must not depend on
how many tokens were verified with it, and int8 activations agree less with the float
reference (see docs/benchmarks.md for what that does to generated tokens). Q8_0 matrices
(SmolLM2's LM head, which prefill runs for one token only) also keep the int16 products.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from .cpu import FEATURES
from .q8 import AVAILABLE as INT_KERNELS
from .q8 import item_ptr, quantize_row, splat, store_group

BLOCK = 32
TILE = 8  # tokens per tile
MIN_TOKENS = 16  # fewer tokens: the int16 path (verification, short feeds)
# vpdpbusd on 256-bit vectors: AVX-512 VNNI (+VL) or AVX-VNNI, the same LLVM intrinsic.
AVAILABLE = INT_KERNELS and ({"avx512vnni", "avx512vl"} <= FEATURES or "avxvnni" in FEATURES)

_I8, _I16, _I32, _I64, _F16, _F32 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64), ir.HalfType(), ir.FloatType()
_V32I8, _V16I16, _V8I32, _V8F16, _V8F32 = (ir.VectorType(_I8, 32), ir.VectorType(_I16, 16), ir.VectorType(_I32, 8),
                                           ir.VectorType(_F16, 8), ir.VectorType(_F32, 8))  # fmt: skip


@njit(cache=True, fastmath=True, error_model="numpy", parallel=True)
def quantize(x, xq, xs, xsum):
    """Rows of x (T, n) float32 -> int8 blocks xq (T, n), their scales xs (T, n/32) and the
    dequantized sums of the blocks xsum (T, n/32), rows in parallel."""
    for t in prange(x.shape[0]):
        quantize_row(x, xq, xs, xsum, t, np.float32(127.0))


def _declare(builder, name: str, ret, args):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)


@intrinsic
def _tile_q4(typingctx, out, q, d, m, xq, xs, xsum, g, t0, T):
    """out[t0+t, 8g:8g+8] for t < 8 (tokens past T - 1 read and write token T - 1)."""

    def codegen(context, builder, signature, args):
        out_, q_, d_, m_, xq_, xs_, xsum_ = (context.make_array(ty)(context, builder, a) for ty, a in zip(signature.args[:7], args[:7]))
        g_, t0_, T_ = (context.cast(builder, a, ty, types.int64) for a, ty in zip(args[7:], signature.args[7:]))

        def ptr(arr, idx):
            return item_ptr(context, builder, arr, idx)

        def splat8(value, vty):
            return splat(builder, value, vty)

        dp = _declare(builder, "llvm.x86.avx512.vpdpbusd.256", _V8I32, [_V8I32, _V8I32, _V8I32])
        fma = _declare(builder, "llvm.fma.v8f32", _V8F32, [_V8F32] * 3)
        zero_i, zero_f = ir.Constant(_V8I32, [0] * 8), ir.Constant(_V8F32, [0.0] * 8)
        last = builder.sub(T_, _I64(1))
        tokens = []
        for t in range(TILE):
            tok = builder.add(t0_, _I64(t))
            tokens.append(builder.select(builder.icmp_signed(">", tok, last), last, tok))
        n_blocks = cgutils.unpack_tuple(builder, d_.shape, 3)[1]
        accs = [cgutils.alloca_once_value(builder, zero_f) for _ in tokens]
        # words 2j and 2j+1 of the 8 rows (16 + 16 bytes) -> row i's 4 bytes in lane i
        mix = ir.Constant(ir.VectorType(_I32, 16), [k for i in range(8) for k in (i, i + 8)])
        low4 = ir.Constant(_V32I8, [15] * 32)
        with cgutils.for_range(builder, n_blocks) as loop:
            b = loop.index
            weights = []  # (value offset in the block, 8 x i32 of u8 nibbles)
            for j in range(4):
                words = builder.load(builder.bitcast(ptr(q_, [g_, b, _I64(2 * j), _I64(0)]), _V16I16.as_pointer()), align=2)
                rows = builder.bitcast(builder.shuffle_vector(words, words, mix), _V32I8)
                lo = builder.and_(rows, low4)
                hi = builder.and_(builder.bitcast(builder.lshr(builder.bitcast(rows, _V16I16), ir.Constant(_V16I16, [4] * 16)), _V32I8), low4)
                weights += [(4 * j, builder.bitcast(lo, _V8I32)), (16 + 4 * j, builder.bitcast(hi, _V8I32))]
            scales = builder.fpext(builder.load(builder.bitcast(ptr(d_, [g_, b, _I64(0)]), _V8F16.as_pointer()), align=2), _V8F32)
            mins = builder.fpext(builder.load(builder.bitcast(ptr(m_, [g_, b, _I64(0)]), _V8F16.as_pointer()), align=2), _V8F32)
            for t, tok in enumerate(tokens):
                x_row = ptr(xq_, [tok, builder.mul(b, _I64(BLOCK))])
                chains = [zero_i, zero_i]
                for k, (col, w) in enumerate(weights):
                    word = builder.load(builder.bitcast(builder.gep(x_row, [_I64(col)], source_etype=_I8), _I32.as_pointer()), align=1)
                    chains[k % 2] = builder.call(dp, [chains[k % 2], w, splat8(word, _V8I32)])
                total = builder.add(chains[0], chains[1])
                x_scale = splat8(builder.load(ptr(xs_, [tok, b])), _V8F32)
                acc = builder.call(fma, [builder.sitofp(total, _V8F32), builder.fmul(scales, x_scale), builder.load(accs[t])])
                acc = builder.call(fma, [mins, splat8(builder.load(ptr(xsum_, [tok, b])), _V8F32), acc])
                builder.store(acc, accs[t])
        store_group(context, builder, out_, g_, tokens, accs)
        return context.get_dummy_value()

    return types.void(out, q, d, m, xq, xs, xsum, g, t0, T), codegen


@njit(cache=True, inline="always")
def _products(out, q, d, m, xq, xs, xsum):
    T = xq.shape[0]
    for g in prange(q.shape[0]):
        for t0 in range(0, T, TILE):
            _tile_q4(out, q, d, m, xq, xs, xsum, g, t0, T)


@njit(cache=True, parallel=True)
def matmul_q4(out, q, d, m, xq, xs, xsum):
    """out (T, rows) = int8 activations (T, n) @ W.T, W row-interleaved Q4_1; each thread takes
    consecutive groups of 8 rows, and each group's weights are read from memory once."""
    _products(out, q, d, m, xq, xs, xsum)


# The prompt path's linear layer (see .linear): quantize, then products, each split in parts run in parallel.


@njit(cache=True, fastmath=True, error_model="numpy")
def quantize_part(i, n, out, x, q, d, m, half, xq16, xq, xs, xsum, wbuf):
    """Part i of n of :func:`quantize` into xq, xs, xsum (arguments as every kernel's, see :mod:`.linear`)."""
    T = x.shape[0]
    for t in range(i * T // n, (i + 1) * T // n):
        quantize_row(x, xq, xs, xsum, t, np.float32(127.0))


@njit(cache=True, error_model="numpy")
def products_part(i, n, out, x, q, d, m, half, xq16, xq, xs, xsum, wbuf):
    """Part i of n of :func:`matmul_q4`: consecutive groups of 8 rows of a row-interleaved Q4_1 W, every token."""
    T = x.shape[0]
    G = q.shape[0]
    for g in range(i * G // n, (i + 1) * G // n):
        for t0 in range(0, T, TILE):
            _tile_q4(out, q, d, m, xq, xs, xsum, g, t0, T)
