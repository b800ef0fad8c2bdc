"""bf16 <-> float32 inside Numba code: the KV cache's element (see :mod:`.attention`).

bf16 is the top half of a float32 (8 exponent bits, 7 mantissa bits): the precision
SmolLM2 was trained in and is usually served in, and the operand of AVX512-BF16's
``vdpbf16ps``. Widening is a 16-bit shift; :func:`to_bf16` rounds to nearest even.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.extending import intrinsic


@intrinsic
def bits_of_float(typingctx, x):
    """The int32 bit pattern of a float32."""
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def float_from_bits(typingctx, bits):
    """The float32 whose bit pattern is an int32."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@njit(cache=True, inline="always")
def to_bf16(x):
    """float32 -> bf16 bits (uint16), rounded to nearest, ties to even (finite inputs)."""
    b = np.int64(bits_of_float(np.float32(x))) & 0xFFFFFFFF
    return np.uint16((b + 0x7FFF + ((b >> 16) & 1)) >> 16)


@njit(cache=True, inline="always")
def from_bf16(h):
    """bf16 bits -> float32."""
    return float_from_bits(np.int32(h) << 16)


@njit(cache=True, inline="always")
def bf16_pair(lo, hi):
    """Two floats -> their bf16 bits in the low and high half of a uint32."""
    return np.uint32(to_bf16(lo)) | (np.uint32(to_bf16(hi)) << np.uint32(16))
