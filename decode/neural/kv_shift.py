"""Moving a session's cached keys and values to earlier positions instead of prefilling them again.

When a document's prompt window moves down (the user typed past its end), the new prompt is the same header
followed by the old window minus its first lines. Those tokens are already in the KV cache, only ``drop``
positions too far. As llama.cpp's context shift does, they are moved down and their keys re-rotated: RoPE
turns each key pair by ``pos * theta_i``, and a rotation by ``(dst - src) * theta_i`` takes a key from
position ``src`` to ``dst``. Values carry no position. The moved keys are rounded to bf16 once more (the
cache's precision). As in llama.cpp, the kept tokens' keys and values in layers above the first still reflect
the dropped tokens they attended to when computed: a shifted prompt reads them as a slightly longer context.

Layouts are those of :mod:`.attention`: keys ``(L, KVH, ctx/KEY_TILE, hs/2, 2*KEY_TILE)``, element
``[tile, j, 2p + e]`` = dim ``2j + e`` of position ``KEY_TILE*tile + p``; values ``(L, KVH, ctx/2, 2*hs)``,
element ``[i, 2d + e]`` = dim ``d`` of position ``2i + e``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .attention import KEY_TILE
from .bf16 import from_bf16, to_bf16

PROBE = 8  # tokens of the new prompt looked up in the cache to find where they moved from
MIN_MATCH = 32  # a shift is worth it when at least this many cached tokens are reused


@njit(cache=True, parallel=True)
def shift_kv(key_cache, value_cache, cos, sin, src, dst, n):
    """Move cached positions ``src..src+n-1`` to ``dst..dst+n-1`` (``dst < src``), re-rotating keys.

    ``cos``/``sin`` are the RoPE tables (max_ctx, hs/2); the rotation is by ``-(src - dst)``.
    """
    L, G = key_cache.shape[0], key_cache.shape[1]
    half = key_cache.shape[3]
    d = src - dst
    for lg in prange(L * G):
        layer, g = lg // G, lg % G
        keys = key_cache[layer, g]
        values = value_cache[layer, g]
        for t in range(n):  # ascending: every read position is at or after every written one
            ps, pd = src + t, dst + t
            ts, os_ = ps // KEY_TILE, 2 * (ps % KEY_TILE)
            td, od = pd // KEY_TILE, 2 * (pd % KEY_TILE)
            for j in range(half):
                a = from_bf16(keys[ts, j, os_])
                b = from_bf16(keys[ts, j, os_ + 1])
                c, s = cos[d, j], -sin[d, j]  # rotation by -d * theta_j
                keys[td, j, od] = to_bf16(a * c - b * s)
                keys[td, j, od + 1] = to_bf16(a * s + b * c)
            for i in range(values.shape[1] // 2):
                values[pd // 2, 2 * i + pd % 2] = values[ps // 2, 2 * i + ps % 2]


def find_shift(cached: np.ndarray, ids: np.ndarray, keep: int) -> tuple[int, int]:
    """``(drop, match)``: the new prompt ``ids`` continues, after their common prefix ``keep``, with
    ``match`` tokens found in ``cached`` at ``keep + drop``. ``(0, 0)`` when no shift is worth it."""
    probe = ids[keep : keep + PROBE]
    tail = cached[keep:]
    if len(probe) < PROBE or len(tail) <= PROBE:
        return 0, 0
    best = (0, 0)
    for at in np.flatnonzero(tail[: len(tail) - PROBE + 1] == probe[0])[:256]:
        if at == 0 or not np.array_equal(tail[at : at + PROBE], probe):
            continue
        n = min(len(tail) - at, len(ids) - keep)
        diff = np.flatnonzero(tail[at : at + n] != ids[keep : keep + n])
        match = int(diff[0]) if diff.size else n
        if match > best[1]:
            best = (int(at), match)
    return best if best[1] >= MIN_MATCH else (0, 0)
