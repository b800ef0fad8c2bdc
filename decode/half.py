"""fp16 <-> float32 inside Numba code, which has no float16 type: the KV cache's element.

The cache holds keys and values as fp16 bit patterns (uint16), as llama.cpp does by
default: half the memory of float32 (23 KB instead of 46 KB per token for SmolLM2) and
half the bytes attention reads per decoded token, which at 1.6k cached positions are as
many as the weights'. Values are rounded to nearest even and saturate at +-65504.

:func:`halves_to_floats` widens a run of them with F16C's ``vcvtph2ps`` (every AVX2 CPU
has it), else bit by bit; :func:`to_half` rounds one float (the cache is written a few
hundred values per token and layer, so scalar code is fast enough).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from .q8 import _FEATURES, FORCED_FLOAT

F16C = "f16c" in _FEATURES and not FORCED_FLOAT


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
def to_half(x):
    """float32 -> fp16 bits (uint16), round to nearest even; beyond +-65504 saturates, NaN stays NaN."""
    b = np.int32(bits_of_float(np.float32(x)))
    sign = (b >> 16) & 0x8000
    e = (b >> 23) & 0xFF
    m = b & 0x7FFFFF
    if e == 0xFF:
        return np.uint16(sign | (0x7E00 if m else 0x7BFF))
    e16 = e - 112  # exponent rebased from 127 to 15
    if e16 >= 0x1F:
        return np.uint16(sign | 0x7BFF)
    if e16 <= 0:  # fp16 subnormal (or zero): value = mantissa * 2**-24
        if e16 < -10:
            return np.uint16(sign)
        m |= 0x800000
        shift = 14 - e16
        hm = m >> shift
        rem = m & ((1 << shift) - 1)
        halfway = 1 << (shift - 1)
        if rem > halfway or (rem == halfway and (hm & 1)):
            hm += 1
        return np.uint16(sign | hm)
    out = sign | (e16 << 10) | (m >> 13)
    rem = m & 0x1FFF
    if rem > 0x1000 or (rem == 0x1000 and (out & 1)):
        out += 1  # a carry into the exponent is the right rounding too
    return np.uint16(out)


@njit(cache=True, inline="always")
def from_half(h):
    """fp16 bits -> float32 (finite values: the cache holds no inf or NaN)."""
    h = np.int32(h)
    sign = (h & 0x8000) << 16
    em = h & 0x7FFF
    if em >= 0x0400:
        return float_from_bits(sign | ((em << 13) + 0x38000000))
    mag = np.float32(em) * np.float32(5.9604644775390625e-08)  # subnormal: em * 2**-24
    return -mag if sign else mag


@intrinsic
def _widen(typingctx, src, dst):
    """dst[:] = src as floats, 8 per vcvtph2ps; src (n,) uint16, dst (n,) float32 contiguous, n % 8 == 0."""
    sig = types.void(src, dst)

    def codegen(context, builder, signature, args):
        s = context.make_array(signature.args[0])(context, builder, args[0])
        d = context.make_array(signature.args[1])(context, builder, args[1])
        n = builder.sdiv(cgutils.unpack_tuple(builder, d.shape, 1)[0], ir.IntType(64)(8))
        v8i16, v8f16, v8f32 = ir.VectorType(ir.IntType(16), 8), ir.VectorType(ir.HalfType(), 8), ir.VectorType(ir.FloatType(), 8)
        with cgutils.for_range(builder, n) as loop:
            at = builder.mul(loop.index, ir.IntType(64)(8))
            h = builder.load(builder.gep(s.data, [at], source_etype=ir.IntType(16)), typ=v8i16, align=2)
            f = builder.fpext(builder.bitcast(h, v8f16), v8f32)
            builder.store(f, builder.bitcast(builder.gep(d.data, [at], source_etype=ir.FloatType()), v8f32.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


if F16C:

    @njit(cache=True, inline="always")
    def halves_to_floats(src, dst):
        """dst[:] = src widened; 1-D contiguous, len % 8 == 0."""
        _widen(src, dst)

else:

    @njit(cache=True, inline="always")
    def halves_to_floats(src, dst):
        """dst[:] = src widened; 1-D contiguous, len % 8 == 0."""
        for i in range(dst.shape[0]):
            dst[i] = from_half(src[i])
