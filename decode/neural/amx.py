"""Prefill's matrix products on AMX tiles (Intel Sapphire Rapids and later): ``tdpbusd``.

One ``tdpbusd`` multiplies a 16 x 32 tile of unsigned bytes (16 weight rows, one Q4_1
block's nibbles) by an 8 x 64 tile of signed bytes (one block of int8 activations of 16
tokens, 4 consecutive inputs per token side by side: AMX's "VNNI" layout) into 16 x 16
int32 sums, one per (row, token), each exactly a block's integer dot product. The block's
scales then apply as in :mod:`.int8` (AVX-512 code LLVM vectorizes): ``acc += sum * d * xs
+ m * xsum``. A work item is 16 weight rows (two interleaved groups) by every token of the
batch: each block's nibbles are unpacked once into a tile and used for all token tiles.

Where it runs: :data:`AVAILABLE` needs the CPU's ``amx_tile``/``amx_int8`` flags, LLVM's
``amx-tile``/``amx-int8`` host features, and Linux's permission for the tile state
(:func:`.cpu.request_amx`); :mod:`.linear` then runs :func:`self_test` in a child process
when a model loads (:func:`why_not`), and compiles the tile kernel for prompts only if
it passed: a wrong or crashing kernel leaves :mod:`.int8`'s in use, never takes the server
down. Nothing here is compiled on other CPUs: LLVM cannot select tile instructions for them.

The tile kernel is opt-in (``SPARKLS_AMX=1``) until it has run on real AMX hardware.

``SPARKLS_AMX_EMULATE=1`` replaces the tile instructions by Numba loops computing the same
(for testing everything around them on CPUs without AMX; give it its own NUMBA_CACHE_DIR,
as Numba's cache would otherwise serve one variant for the other).
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import lru_cache

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from . import cpu, int8

ROWS = 16  # weight rows per A tile (two groups of 8)
TOKENS = 16  # tokens per B and C tile
K = 32  # inputs per tile product: one block
EMULATED = os.environ.get("SPARKLS_AMX_EMULATE", "") not in ("", "0")


def _why_unavailable() -> str:
    if not int8.AVAILABLE:
        return "no int8 kernels"
    if EMULATED:
        return ""
    if os.environ.get("SPARKLS_AMX", "") != "1":
        # Written and checked against the vpdpbusd kernel with emulated tiles, but never yet run on AMX
        # hardware: until it has been, it is opt-in (and its per-process self-test costs a child start).
        return "AMX kernel is opt-in until verified on AMX hardware (SPARKLS_AMX=1)"
    granted, why = cpu.request_amx()
    if granted and not {"amx-tile", "amx-int8"} <= cpu.FEATURES:
        return "LLVM sees no amx-tile/amx-int8 on this CPU"
    return "" if granted else why


WHY_NOT = _why_unavailable()
AVAILABLE = not WHY_NOT


class _Tile(ir.types.Type):
    """LLVM's ``x86_amx`` (llvmlite has no class for it)."""

    def _to_string(self) -> str:
        return "x86_amx"

    def __eq__(self, other) -> bool:
        return isinstance(other, _Tile)

    def __hash__(self) -> int:
        return hash("x86_amx")


def _emulated_dot(c, a, b):
    """What :func:`_tile_dot` computes, in loops: c (16, 16) int32 = a (16, 32) u8 . b (8, 64) s8 (VNNI layout)."""
    for r in range(ROWS):
        for t in range(TOKENS):
            s = np.int32(0)
            for k in range(K):
                s += np.int32(a[r, k]) * np.int32(b[k // 4, 4 * t + k % 4])
            c[r, t] = s


@intrinsic
def _tile_dot(typingctx, c, a, b):
    """c (16, 16) int32 = a (16, 32) uint8 . b (8, 64) int8, C-contiguous: one ``tdpbusd`` (tilezero,
    two tile loads, the product, a tile store; LLVM adds the tile configuration)."""

    def codegen(context, builder, signature, args):
        if EMULATED:
            return context.compile_internal(builder, _emulated_dot, signature, args)
        c_, a_, b_ = (context.make_array(ty)(context, builder, v) for ty, v in zip(signature.args, args))
        tile, i16, i64, ptr = _Tile(), ir.IntType(16), ir.IntType(64), ir.IntType(8).as_pointer()
        mod = builder.module
        load = cgutils.get_or_insert_function(mod, ir.FunctionType(tile, [i16, i16, ptr, i64]), "llvm.x86.tileloadd64.internal")
        zero = cgutils.get_or_insert_function(mod, ir.FunctionType(tile, [i16, i16]), "llvm.x86.tilezero.internal")
        dot = cgutils.get_or_insert_function(mod, ir.FunctionType(tile, [i16, i16, i16, tile, tile, tile]), "llvm.x86.tdpbusd.internal")
        store = cgutils.get_or_insert_function(mod, ir.FunctionType(ir.VoidType(), [i16, i16, ptr, i64, tile]), "llvm.x86.tilestored64.internal")
        m, n, k = i16(ROWS), i16(4 * TOKENS), i16(K)  # n, k in bytes
        acc = builder.call(zero, [m, n])
        ta = builder.call(load, [m, k, builder.bitcast(a_.data, ptr), i64(K)])
        tb = builder.call(load, [i16(K // 4), n, builder.bitcast(b_.data, ptr), i64(4 * TOKENS)])
        acc = builder.call(dot, [m, n, k, acc, ta, tb])
        builder.call(store, [m, n, builder.bitcast(c_.data, ptr), i64(4 * TOKENS), acc])
        return context.get_dummy_value()

    return types.void(c, a, b), codegen


@njit(cache=True, fastmath=True, error_model="numpy", parallel=True)
def quantize_tiles(x, xb, xs, xsum):
    """Rows of x (T, n) float32 -> int8 blocks in B-tile layout xb (nb, tiles, 8, 64):
    xb[b, j, k // 4, 4 * (t % 16) + k % 4] = input 32b + k of token t = 16j + t % 16, with
    scales xs (nb, 16 * tiles) and dequantized block sums xsum (nb, 16 * tiles); the same
    rounding as :func:`.int8.quantize`. Slots of tokens >= T must be zero (the caller's)."""
    T, n = x.shape
    for t in prange(T):
        j, tt = t // TOKENS, t % TOKENS
        for b in range(n // K):
            o = b * K
            amax = np.float32(0.0)
            for i in range(K):
                v = abs(x[t, o + i])
                amax = v if v > amax else amax
            xs[b, t] = amax / np.float32(127.0)
            inv = np.float32(127.0) / amax if amax > 0 else np.float32(0.0)
            total = np.int32(0)
            for i in range(K):
                v = np.int8(np.rint(x[t, o + i] * inv))
                xb[b, j, i // 4, 4 * tt + i % 4] = v
                total += np.int32(v)
            xsum[b, t] = np.float32(total) * xs[b, t]


@njit(cache=True, inline="always")
def _unpack(q, g, b, a, r0):
    """Rows r0..r0+7 of tile a (16, 32) uint8 = the nibbles of group g's block b (zeros past the last group)."""
    if g >= q.shape[0]:
        for i in range(8):
            for k in range(K):
                a[r0 + i, k] = 0
        return
    for w in range(8):  # word w of a row: bytes 2w, 2w+1 = values (2w, 2w+16), (2w+1, 2w+17)
        for i in range(8):
            word = q[g, b, w, i]
            lo, hi = word & 0xFF, word >> 8
            a[r0 + i, 2 * w] = lo & 15
            a[r0 + i, 2 * w + 16] = lo >> 4
            a[r0 + i, 2 * w + 1] = hi & 15
            a[r0 + i, 2 * w + 17] = hi >> 4


@njit(cache=True, fastmath=True, parallel=True)
def matmul_q4(out, q, d, m, half, xb, xs, xsum, T):
    """out (T, rows) = activations (from :func:`quantize_tiles`) @ W.T, W row-interleaved Q4_1."""
    G, nb, tiles = q.shape[0], q.shape[1], xb.shape[1]
    rows = out.shape[1]
    threads = numba.config.NUMBA_NUM_THREADS
    a_all = np.empty((threads, ROWS, K), np.uint8)
    c_all = np.empty((threads, ROWS, TOKENS), np.int32)
    acc_all = np.empty((threads, ROWS, tiles * TOKENS), np.float32)
    for p in prange((G + 1) // 2):
        tid = numba.get_thread_id()
        a, c, acc = a_all[tid], c_all[tid], acc_all[tid]
        for r in range(ROWS):
            for t in range(acc.shape[1]):
                acc[r, t] = 0.0
        for b in range(nb):
            _unpack(q, 2 * p, b, a, 0)
            _unpack(q, 2 * p + 1, b, a, 8)
            for j in range(tiles):
                _tile_dot(c, a, xb[b, j])
                for r in range(ROWS):
                    g, i = 2 * p + r // 8, r % 8
                    if g < G:
                        scale, low = half[d[g, b, i]], half[m[g, b, i]]
                        for t in range(TOKENS):
                            tok = j * TOKENS + t
                            acc[r, tok] += np.float32(c[r, t]) * (scale * xs[b, tok]) + low * xsum[b, tok]
        for r in range(ROWS):
            row = 16 * p + r
            if row < rows:
                for t in range(T):
                    out[t, row] = acc[r, t]


@njit(cache=True)
def linear_q4(out, x, q, d, m, half):
    """x (T, n) @ W.T -> out (T, rows) for a Q4_1 W: int8 activations in B tiles, then tile products."""
    T, n = x.shape
    tiles = (T + TOKENS - 1) // TOKENS
    xb = np.zeros((n // K, tiles, K // 4, 4 * TOKENS), np.int8)
    xs = np.zeros((n // K, tiles * TOKENS), np.float32)
    xsum = np.zeros((n // K, tiles * TOKENS), np.float32)
    quantize_tiles(x, xb, xs, xsum)
    matmul_q4(out, q, d, m, half, xb, xs, xsum, T)


@njit(cache=True)
def linear(i, n, out, x, q, d, m, half, xq16, xq8, xs, xsum, wbuf):
    """:func:`linear_q4` as a part of :mod:`.linear`'s kernels, run whole (i = 0, n = 1; it is parallel inside)."""
    linear_q4(out, x, q, d, m, half)


SELF_TEST = """
import numpy as np
from sparkls.decode.neural import amx, int8
from sparkls.decode.neural.blocks import HALF, interleave
rng = np.random.default_rng(0)
rows, cols, T = 200, 576, 37
nb = cols // 32
wq, wd, wm = interleave(rng.integers(0, 256, (rows, cols // 2), dtype=np.uint8),
                        rng.uniform(0.001, 0.02, (rows, nb)).astype(np.float16).view(np.uint16),
                        rng.uniform(-0.1, 0.0, (rows, nb)).astype(np.float16).view(np.uint16))
x = rng.standard_normal((T, cols)).astype(np.float32)
got = np.zeros((T, rows), np.float32)
amx.linear_q4(got, x, wq, wd, wm, HALF)
xq, xs, xsum = np.zeros((T, cols), np.int8), np.zeros((T, nb), np.float32), np.zeros((T, nb), np.float32)
int8.quantize(x, xq, xs, xsum)
want = np.zeros((T, rows), np.float32)
int8.matmul_q4(want, wq, wd, wm, xq, xs, xsum)
err = float(np.abs(got - want).max() / np.abs(want).max())
print("ok" if err < 1e-5 else f"differs from the int8 kernel: {err:.2e}")
"""


@lru_cache(maxsize=1)
def why_not() -> str:
    """"" if prompts may run on the tile kernel here, else why not (checked once per process:
    availability, then :func:`self_test`, which emulated tiles skip)."""
    return WHY_NOT or ("" if EMULATED else self_test())


@lru_cache(maxsize=1)
def self_test(timeout: float = 300.0) -> str:
    """Run the tile kernel once in a child process against :mod:`.int8`'s: "" if it agrees, else why not.

    A child, because a wrong tile configuration is a SIGSEGV or SIGILL, not an exception."""
    try:
        out = subprocess.run([sys.executable, "-c", SELF_TEST], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"AMX self-test did not finish: {exc}"
    if out.returncode != 0:
        return f"AMX self-test failed (exit {out.returncode}): {out.stderr.strip().splitlines()[-1:] or ''}"
    last = out.stdout.strip().splitlines()[-1:] or [""]
    return "" if last[0] == "ok" else f"AMX self-test: {last[0]}"
