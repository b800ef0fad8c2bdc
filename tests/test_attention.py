"""Chunked grouped-query attention over the bf16 KV cache (decode/neural/attention.py) against NumPy."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from sparkls.decode.neural.attention import CHUNK, KEY_TILE, MAX_HEADS, attention


def bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bits, round to nearest even (as decode/neural/attention.py's to_bf16)."""
    b = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


def widen(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def caches(rng, n_kv, hs, ctx):
    """A key cache (tiles of key dim pairs) and a value cache (position pairs), bf16 bits, plus their floats."""
    keys, values = bf16(rng.standard_normal((n_kv, ctx, hs))), bf16(rng.standard_normal((n_kv, ctx, hs)))
    tiles = keys.reshape(n_kv, ctx // KEY_TILE, KEY_TILE, hs // 2, 2).transpose(0, 1, 3, 2, 4)
    key_cache = np.ascontiguousarray(tiles).reshape(1, n_kv, ctx // KEY_TILE, hs // 2, 2 * KEY_TILE)
    pairs = values.reshape(n_kv, ctx // 2, 2, hs).transpose(0, 1, 3, 2)
    value_cache = np.ascontiguousarray(pairs).reshape(1, n_kv, ctx // 2, 2 * hs)
    return key_cache, value_cache, widen(keys), widen(values)


def query_pairs(q: np.ndarray) -> np.ndarray:
    """(T, H, hs) floats -> (T, H, hs/2) uint32 bf16 pairs, and the floats they hold."""
    bits = bf16(q)
    return np.ascontiguousarray(bits).view(np.uint32), widen(bits)


def run(q, key_cache, value_cache, pos0, kv_mul):
    T, H, n_pairs = q.shape
    hs = 2 * n_pairs
    chunks = key_cache.shape[2] * KEY_TILE // CHUNK
    out = np.full((T, H * hs), np.nan, np.float32)
    sbuf = np.zeros((numba.config.NUMBA_NUM_THREADS, 2 * min(kv_mul, MAX_HEADS), CHUNK + 1), np.float32)
    part_m, part_l = np.zeros((T, H, chunks), np.float32), np.zeros((T, H, chunks), np.float32)
    part_o = np.zeros((T, H, chunks, hs), np.float32)
    attention(out, q, key_cache, value_cache, 0, pos0, kv_mul, sbuf, part_m, part_l, part_o)
    return out


def reference(q, keys, values, pos0, kv_mul):
    T, H, hs = q.shape
    out = np.zeros((T, H * hs), np.float64)
    for t in range(T):
        n = pos0 + t + 1
        for h in range(H):
            g = h // kv_mul
            s = keys[g, :n].astype(np.float64) @ q[t, h]
            p = np.exp(s - s.max())
            out[t, h * hs : (h + 1) * hs] = p @ values[g, :n] / p.sum()
    return out


@pytest.mark.parametrize(
    "n_heads, n_kv, hs, pos0, T",
    [
        (9, 3, 64, 0, 1),  # SmolLM2's heads, first position
        (9, 3, 64, 300, 9),  # a verification across chunk boundaries
        (9, 3, 64, 120, 20),  # rows on both sides of the first chunk's end
        (4, 4, 32, 200, 3),  # no grouping, 8-dim slabs only
        (8, 2, 24, 129, 5),  # 4 heads per KV head (blocks of 3 + 1 or 1s), 8-dim slabs
        (10, 2, 128, 250, 2),  # 5 heads per KV head, two 64-dim slabs
        (6, 2, 80, 300, 4),  # a 64-dim slab and two 8-dim ones
    ],
)
def test_matches_numpy(n_heads, n_kv, hs, pos0, T):
    """Ensure that every row attends, causally, to its own positions as softmax(q.K) V in float64 does,
    on the same bf16 keys, values and queries; the weights are bf16 too (2^-9 relative rounding)."""
    rng = np.random.default_rng(pos0 + T)
    ctx = 512
    key_cache, value_cache, keys, values = caches(rng, n_kv, hs, ctx)
    q, q_floats = query_pairs(rng.standard_normal((T, n_heads, hs)) / np.sqrt(hs))
    got = run(q, key_cache, value_cache, pos0, n_heads // n_kv)
    np.testing.assert_allclose(got, reference(q_floats, keys, values, pos0, n_heads // n_kv), rtol=0, atol=3e-3)


def test_rows_do_not_depend_on_the_batch():
    """Ensure that a row's output is bitwise the same alone as among a verification's rows,
    and that positions after a row (already in the cache for later rows) do not leak into it."""
    rng = np.random.default_rng(7)
    key_cache, value_cache, _, _ = caches(rng, 3, 64, 512)
    q, _ = query_pairs(rng.standard_normal((12, 9, 64)) / 8)
    pos0 = 250
    batch = run(q, key_cache, value_cache, pos0, 3)
    for t in range(12):
        alone = run(q[t : t + 1], key_cache, value_cache, pos0 + t, 3)
        np.testing.assert_array_equal(alone[0], batch[t], err_msg=f"row {t}")


def test_peaked_scores_stay_finite():
    """Ensure that scores hundreds apart (one chunk's max far below another's) give exact weights, not NaN."""
    rng = np.random.default_rng(3)
    key_cache, value_cache, keys, values = caches(rng, 1, 64, 512)
    q, _ = query_pairs(40.0 * np.sign(keys[0, 5])[None, None, :])  # position 5 scores ~40 * sum|k| >> every other
    got = run(q, key_cache, value_cache, 400, 1)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0], values[0, 5], rtol=1e-6, atol=0)
