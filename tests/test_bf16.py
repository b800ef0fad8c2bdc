"""bf16 conversions of the KV cache (decode/neural/bf16.py) against a float64 nearest-value reference."""

from __future__ import annotations

import numpy as np
from numba import njit

from sparkls.decode.neural.bf16 import bf16_pair, from_bf16, to_bf16


@njit(cache=True)
def _round_all(x, out):
    for i in range(x.shape[0]):
        out[i] = to_bf16(x[i])


@njit(cache=True)
def _widen_all(h, out):
    for i in range(h.shape[0]):
        out[i] = from_bf16(h[i])


def nearest_bf16(x: np.ndarray) -> np.ndarray:
    """The bf16 nearest to each float (ties to an even mantissa), chosen by comparing distances in float64."""
    bits = x.view(np.uint32)
    down = (bits >> 16).astype(np.uint32)
    up = down + 1
    widen = lambda b: (b.astype(np.uint32) << 16).view(np.float32).astype(np.float64)  # noqa: E731
    d_down, d_up = np.abs(x - widen(down)), np.abs(widen(up) - x)
    pick_up = (d_up < d_down) | ((d_up == d_down) & (down % 2 == 1))
    return np.where(pick_up, up, down).astype(np.uint16)


def test_rounding_is_to_nearest_even():
    """Ensure that floats round to the nearest bf16, ties to even, over many magnitudes, subnormals, exact ties and signs."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(40000) * 10.0 ** rng.integers(-40, 30, 40000)).astype(np.float32)
    ties = ((rng.integers(0, 0x7F7F, 2000, dtype=np.uint32) << 16) | 0x8000).view(np.float32)  # exactly halfway, finite
    subnormal = (rng.integers(1, 1 << 23, 2000, dtype=np.uint32)).view(np.float32)
    x = np.concatenate([x, -x, ties, -ties, subnormal, np.float32([0.0, -0.0, 1.0, 65504.0, 3.0e38])])
    got = np.empty(len(x), np.uint16)
    _round_all(x, got)
    np.testing.assert_array_equal(got, nearest_bf16(x))


def test_widening_and_pairs():
    """Ensure that bf16 bits widen to the float they stand for, and pairs hold the first value in the low half."""
    bits = np.arange(0, 1 << 16, 7, dtype=np.uint16)
    bits = bits[np.isfinite((bits.astype(np.uint32) << 16).view(np.float32))]
    got = np.empty(len(bits), np.float32)
    _widen_all(bits, got)
    np.testing.assert_array_equal(got.view(np.uint32), bits.astype(np.uint32) << 16)
    pair = int(njit(lambda a, b: bf16_pair(a, b))(np.float32(1.5), np.float32(-2.0)))
    assert (pair & 0xFFFF, pair >> 16) == (0x3FC0, 0xC000)
