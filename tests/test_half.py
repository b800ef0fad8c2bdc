"""fp16 conversions of the KV cache (decode/half.py) against NumPy's float16."""

from __future__ import annotations

import numpy as np
from numba import njit

from sparkls.decode.half import from_half, halves_to_floats, to_half


@njit(cache=True)
def _round_all(x, out):
    for i in range(x.shape[0]):
        out[i] = to_half(x[i])


@njit(cache=True)
def _widen_all(h, out):
    for i in range(h.shape[0]):
        out[i] = from_half(h[i])


def test_every_finite_half_widens_exactly():
    """Ensure that all 63,488 finite fp16 patterns (subnormals, zeros of both signs) widen exactly, one by one and in runs."""
    bits = np.arange(1 << 16, dtype=np.uint16)
    finite = bits[np.isfinite(bits.view(np.float16))]
    want = finite.view(np.float16).astype(np.float32)
    got = np.empty(len(finite), np.float32)
    _widen_all(finite, got)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    run = np.empty(len(finite) // 8 * 8, np.float32)
    halves_to_floats(finite[: len(run)], run)
    np.testing.assert_array_equal(run.view(np.uint32), want[: len(run)].view(np.uint32))


def test_rounding_matches_numpy():
    """Ensure that floats round to the nearest fp16 (ties to even) as NumPy does, including
    subnormals and halfway cases, and that overflow saturates instead of becoming inf."""
    rng = np.random.default_rng(0)
    scaled = np.clip(rng.standard_normal(20000) * 10.0 ** rng.integers(-9, 5, 20000), -60000, 60000)
    exact = np.arange(0x7C00, dtype=np.uint16).view(np.float16).astype(np.float64)  # every finite positive half
    normal_ties = ((np.arange(1, 0x7BFF, dtype=np.uint32) << 13) + 0x38000000 + 0x1000).view(np.float32)
    subnormal_ties = (np.arange(1024) + 0.5) * 2.0**-24
    x = np.concatenate([scaled, exact, normal_ties, -normal_ties, subnormal_ties, -subnormal_ties, [0.0, -0.0, 1e-9, 65504.0, 65519.0]])
    x = x.astype(np.float32)
    got = np.empty(len(x), np.uint16)
    _round_all(x, got)
    np.testing.assert_array_equal(got, x.astype(np.float16).view(np.uint16))
    out = np.empty(3, np.uint16)
    _round_all(np.array([1e5, -1e6, np.inf], np.float32), out)
    assert list(out.view(np.float16)) == [65504.0, -65504.0, 65504.0]
