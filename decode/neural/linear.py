"""The linear layers' kernels, one signature for all of them, and which ones this CPU runs.

Every linear-layer kernel takes the same arguments (:data:`ARGS`: output, input rows, the weight blocks of
:mod:`.blocks`, and every kernel's scratch buffers of the session), so the forward pass is compiled once and the
kernel is data: the forward pass receives the addresses of the kernels its path uses (:mod:`.native`) and calls
them without compiling them again. Each kernel compiles, on its own, the first time a path asks for it, so a
CPU compiles only what it runs: the float kernel only where :mod:`.q8`'s integer kernels cannot run, the int8
one only where prompts use it, the AMX one only where it passed its self-test.

A kernel is two steps (quantize the input rows, then the products), each a *part* function ``part(i, n,
*ARGS)`` doing its i-th share of n, and :func:`launch` runs a step's parts on Numba's thread pool. Why parts
and not ``prange`` loops in each kernel: Numba compiles a ``prange`` body as a function of its own and then
links, optimizes and generates it again inside the enclosing function; a serial part is compiled once, and the
one :func:`launch` serves every kernel (a cold start 3-4 s shorter, measured).

Kernels by path (``PATH_*``, the prompt batches' choice; decode steps and verification always use
:data:`DECODE`): int16 activations (:mod:`.q8`), int8 ones (:mod:`.int8`), int8 on AMX tiles (:mod:`.amx`).
"""

from __future__ import annotations

import os
import zlib

import numpy as np
from typing import NamedTuple

from numba import njit, prange, types

from . import amx, int8, q8
from .attention import BF16_DOT
from .attention import PART as ATTENTION_PART
from .native import Kernel, caller

PATH_INT16, PATH_INT8, PATH_AMX = 0, 1, 2

_F32 = types.float32
ARGS = (
    types.Array(_F32, 2, "C"),  # out (T, rows)
    types.Array(_F32, 2, "C"),  # x (T, n)
    types.Array(types.uint16, 4, "C"),  # q, d, m: the weight matrix (see .blocks)
    types.Array(types.uint16, 3, "C"),
    types.Array(types.uint16, 3, "C"),
    types.Array(_F32, 1, "C", readonly=True),  # half: fp16 bits -> float32
    # Scratch sliced by the caller, never inside a kernel: the same products ran 6-8 % slower on slices
    # taken inside the kernel of C-contiguous arguments than on these (measured).
    types.Array(types.int16, 2, "A"),  # xq (T, n): int16 input blocks (q8)
    types.Array(types.int8, 2, "A"),  # xq8 (T, n): int8 input blocks (int8)
    types.Array(_F32, 2, "A"),  # xs (T, n/32): their scales
    types.Array(_F32, 2, "A"),  # xsum (T, n/32): their blocks' dequantized sums
    types.Array(_F32, 3, "C"),  # wbuf (threads, 4, >= n): dequantized weight rows (float kernel)
)
PART = (types.int64, types.int64) + ARGS  # part(i, n, *ARGS) and launch(part, n, *ARGS)
# The signatures compiled into the forward pass's calls. Numba's cache of a caller does not notice edits to
# another file: the forward pass compares this with the value it was compiled with before calling anything.
ABI = zlib.crc32(repr((PART, ATTENTION_PART)).encode())
call = caller(PART)  # call(address, i or part, n, *ARGS) from compiled code


@njit(cache=True, parallel=True)
def launch(part, n, out, x, q, d, m, half, xq, xq8, xs, xsum, wbuf):
    """Run ``part(i, n, ...)`` (an address) for every i < n on the thread pool, or directly if n == 1 (no launch)."""
    if n == 1:
        call(part, 0, 1, out, x, q, d, m, half, xq, xq8, xs, xsum, wbuf)
    else:
        for i in prange(n):
            call(part, i, n, out, x, q, d, m, half, xq, xq8, xs, xsum, wbuf)


@njit(cache=True, fastmath=True)
def dequantize_row(q, d, m, half, r, out):
    """out (n,) = row r of a row-interleaved weight matrix, Q4_1 or Q8_0 (see :mod:`.blocks`)."""
    g, i = r // 8, r % 8
    nb, K = q.shape[1], q.shape[2]
    for b in range(nb):
        scale = half[d[g, b, i]]
        o = b * 32
        if K == 8:  # word k: packed bytes 2k, 2k+1 = values (2k, 2k+16), (2k+1, 2k+17)
            low = half[m[g, b, i]]
            for k in range(8):
                word = np.int32(q[g, b, k, i])
                lo, hi = word & 0xFF, word >> 8
                out[o + 2 * k] = scale * np.float32(lo & 15) + low
                out[o + 2 * k + 16] = scale * np.float32(lo >> 4) + low
                out[o + 2 * k + 1] = scale * np.float32(hi & 15) + low
                out[o + 2 * k + 17] = scale * np.float32(hi >> 4) + low
        else:  # word k: int8 values 2k, 2k+1
            for k in range(16):
                word = np.int32(q[g, b, k, i])
                lo, hi = word & 0xFF, word >> 8
                out[o + 2 * k] = np.float32(lo - 256 if lo > 127 else lo) * scale
                out[o + 2 * k + 1] = np.float32(hi - 256 if hi > 127 else hi) * scale


@njit(cache=True, fastmath=True)
def float_part(i, n, out, x, q, d, m, half, xq, xq8, xs, xsum, wbuf):
    """Part i of n of x (T,n) @ W.T -> out (T,rows) in float32, for CPUs without the integer kernels of :mod:`.q8`.

    Dequantizes 4 weight rows at a time into ``wbuf[i]`` (4, >=n) and reuses them
    for all T rows of x: the dequantization is paid once per weight read.
    """
    T, cols = x.shape
    blocks = (out.shape[1] + 3) // 4
    w = wbuf[i]
    for rb in range(i * blocks // n, (i + 1) * blocks // n):
        r0 = rb * 4
        k = min(4, out.shape[1] - r0)
        for r in range(k):
            dequantize_row(q, d, m, half, r0 + r, w[r])
        for t in range(T):
            xt = x[t]
            for r in range(k):
                wr = w[r]
                acc = np.float32(0.0)
                for j in range(cols):
                    acc += wr[j] * xt[j]
                out[t, r0 + r] = acc


class Steps(NamedTuple):
    """A linear kernel as the forward pass runs it: addresses of its parts (0: no such step) and whether each
    step is split across the threads (else it runs whole, in the calling thread)."""

    quantize: int
    quantize_split: bool
    products: int
    products_split: bool


class LinearKernel:
    """The parts of one kernel, compiled (or loaded from Numba's cache) when first asked for."""

    def __init__(self, quantize, quantize_split: bool, products, products_split: bool) -> None:
        self.quantize = Kernel(quantize, PART) if quantize is not None else None
        self.products = Kernel(products, PART)
        self.split = quantize_split, products_split

    @property
    def compiled(self) -> bool:
        return self.products.compiled

    def steps(self) -> Steps:
        return Steps(self.quantize.address() if self.quantize else 0, self.split[0], self.products.address(), self.split[1])


LAUNCH = Kernel(launch, PART)
FLOAT = LinearKernel(None, False, float_part, True)
INT16 = LinearKernel(q8.quantize_part, False, q8.products_part, True)  # a few microseconds: no thread launch
INT8 = LinearKernel(int8.quantize_part, True, int8.products_part, True)
AMX = LinearKernel(None, False, amx.linear, False)  # parallel inside
DECODE = INT16 if q8.AVAILABLE else FLOAT  # decode steps, verification, short prompt batches, the LM head


def kernel_for(path: int) -> LinearKernel:
    """The kernel of prompt batches (of at least ``int8.MIN_TOKENS`` tokens, Q4_1 weights) on ``path``."""
    return {PATH_INT8: INT8, PATH_AMX: AMX}.get(path, DECODE)


def kernel_paths() -> tuple[int, str]:
    """(path for prompt batches, a description of the kernels in use) for this CPU.

    AMX tiles where the CPU has them, Linux grants them and a self-test in a child process
    agrees with the vpdpbusd kernel; else vpdpbusd; else int16. ``SPARKLS_PREFILL=int16``
    (or ``int8``) caps the choice."""
    attn = "bf16 attention " + ("vdpbf16ps" if BF16_DOT else "fma")
    if not q8.AVAILABLE:
        return PATH_INT16, f"float linear; {attn}"
    isa = "avx512-vnni" if q8.VNNI else "avx2"
    cap = os.environ.get("SPARKLS_PREFILL", "")
    decode = f"decode int16 {isa}; {attn}"
    if not int8.AVAILABLE or cap == "int16":
        return PATH_INT16, f"prefill int16 {isa}; {decode}"
    why = amx.why_not() or (cap == "int8" and "SPARKLS_PREFILL=int8")
    if not why:
        return PATH_AMX, f"prefill int8 amx-tdpbusd{' (emulated)' if amx.EMULATED else ''}; {decode}"
    return PATH_INT8, f"prefill int8 vpdpbusd (no AMX: {why}); {decode}"
