"""Hashed n-gram counts with longest-match backoff, compiled with Numba.

A context is the run of up to ``max_order`` tokens before a target token. Two
open-addressing tables hold the counts:

- contexts, keyed by a 64-bit hash of the token run: total count, the best next token
  and its count (so a query is O(order)), and the head of a linked list of its pairs;
- pairs (context slot, next token): count and the next pair of the same context, so
  removing counts can find the new best exactly.

Counts can be added and removed for any span of a token array, which is how documents
update incrementally as the user edits them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

FNV_PRIME = np.uint64(0x100000001B3)
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
EMPTY = -1


class Tables(NamedTuple):
    """The arrays of one n-gram table; slot 0 of ``meta`` counts used contexts, slot 1 pairs."""

    ctx_key: np.ndarray  # (C,) uint64, 0 = empty slot
    ctx_total: np.ndarray  # (C,) int32, occurrences of the context
    ctx_best: np.ndarray  # (C,) int32, most frequent next token
    ctx_best_count: np.ndarray  # (C,) int32
    ctx_head: np.ndarray  # (C,) int32, first pair slot of the context, or EMPTY
    pair_ctx: np.ndarray  # (P,) int32, context slot, or EMPTY for an empty slot
    pair_tok: np.ndarray  # (P,) int32, next token
    pair_count: np.ndarray  # (P,) int32
    pair_link: np.ndarray  # (P,) int32, next pair slot of the same context, or EMPTY
    meta: np.ndarray  # (2,) int64: [used contexts, used pairs]


def new_tables(ctx_slots: int = 1 << 12, pair_slots: int = 1 << 13) -> Tables:
    """Empty tables; sizes are rounded up to powers of two."""
    c = 1 << max(4, int(ctx_slots - 1).bit_length())
    p = 1 << max(4, int(pair_slots - 1).bit_length())
    return Tables(
        np.zeros(c, np.uint64),
        np.zeros(c, np.int32),
        np.full(c, EMPTY, np.int32),
        np.zeros(c, np.int32),
        np.full(c, EMPTY, np.int32),
        np.full(p, EMPTY, np.int32),
        np.zeros(p, np.int32),
        np.zeros(p, np.int32),
        np.full(p, EMPTY, np.int32),
        np.zeros(2, np.int64),
    )


# --- hashing -------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _mix(h):
    # splitmix64 finaliser: spreads FNV's low-entropy low bits over the slot index.
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


@njit(cache=True, inline="always")
def _extend(h, token):
    """Hash of a context grown by one more token on its left."""
    return (h ^ np.uint64(token + 1)) * FNV_PRIME


@njit(cache=True, inline="always")
def _key(h):
    return _mix(h) | np.uint64(1)  # 0 marks an empty slot


# --- slots ---------------------------------------------------------------------------


@njit(cache=True)
def _ctx_slot(t, key, create):
    """Slot of context ``key``; inserted if absent and ``create``, else -1 when absent."""
    mask = t.ctx_key.shape[0] - 1
    i = np.int64(key & np.uint64(mask))
    while True:
        k = t.ctx_key[i]
        if k == key:
            return i
        if k == 0:
            if not create:
                return -1
            t.ctx_key[i] = key
            t.meta[0] += 1
            return i
        i = (i + 1) & mask


@njit(cache=True, inline="always")
def _find_ctx(t, key):
    return _ctx_slot(t, key, False)


@njit(cache=True)
def _pair_slot(t, ctx, token, create):
    mask = t.pair_ctx.shape[0] - 1
    h = _mix(np.uint64(ctx) * np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(token + 1))
    i = np.int64(h & np.uint64(mask))
    while True:
        c = t.pair_ctx[i]
        if c == ctx and t.pair_tok[i] == token:
            return i
        if c == EMPTY:
            if not create:
                return -1
            t.pair_ctx[i] = ctx
            t.pair_tok[i] = token
            t.pair_link[i] = t.ctx_head[ctx]
            t.ctx_head[ctx] = i
            t.meta[1] += 1
            return i
        i = (i + 1) & mask


@njit(cache=True)
def _bump(t, ctx, token, delta):
    """Add ``delta`` occurrences of ``token`` after context slot ``ctx``; keep the best exact."""
    p = _pair_slot(t, ctx, token, delta > 0)
    if p < 0:
        return
    count = t.pair_count[p] + delta
    if count < 0:  # removing what was never added: ignore rather than corrupt
        return
    t.pair_count[p] = count
    t.ctx_total[ctx] += delta
    if delta > 0:
        if count > t.ctx_best_count[ctx] or t.ctx_best[ctx] == token:
            t.ctx_best[ctx] = token
            t.ctx_best_count[ctx] = count
    elif t.ctx_best[ctx] == token:
        best, best_count = EMPTY, 0
        q = t.ctx_head[ctx]
        while q != EMPTY:
            if t.pair_count[q] > best_count:
                best, best_count = t.pair_tok[q], t.pair_count[q]
            q = t.pair_link[q]
        t.ctx_best[ctx] = best
        t.ctx_best_count[ctx] = best_count


# --- updates and queries -------------------------------------------------------------


@njit(cache=True)
def add_span(t, tokens, start, stop, max_order, delta):
    """Count (``delta`` = +1) or uncount (-1) the n-grams whose target lies in ``tokens[start:stop]``."""
    for i in range(max(start, 1), stop):
        h = FNV_OFFSET
        for k in range(1, min(max_order, i) + 1):
            h = _extend(h, tokens[i - k])
            key = _key(h)
            if delta > 0:
                ctx = _ctx_slot(t, key, True)
            else:
                ctx = _find_ctx(t, key)
                if ctx < 0:
                    break
            _bump(t, ctx, tokens[i], delta)


@njit(cache=True)
def longest_match(t, history, n, max_order):
    """Best next token after ``history[:n]`` from the longest context seen.

    Returns ``(token, order, count, total)``; order 0 and token EMPTY when no context matches.
    """
    h = FNV_OFFSET
    best, order, count, total = EMPTY, 0, 0, 0
    for k in range(1, min(max_order, n) + 1):
        h = _extend(h, history[n - k])
        ctx = _find_ctx(t, _key(h))
        if ctx < 0 or t.ctx_total[ctx] <= 0:
            break  # every longer context contains this one, so none can match
        best, order = t.ctx_best[ctx], k
        count, total = t.ctx_best_count[ctx], t.ctx_total[ctx]
    return best, order, count, total


@njit(cache=True)
def next_tokens(t, history, n, order):
    """All tokens seen after the last ``order`` tokens of ``history[:n]``, with their counts."""
    h = FNV_OFFSET
    for k in range(1, order + 1):
        h = _extend(h, history[n - k])
    ctx = _find_ctx(t, _key(h))
    size = 0
    if ctx >= 0:
        q = t.ctx_head[ctx]
        while q != EMPTY:
            size += 1
            q = t.pair_link[q]
    toks = np.empty(size, np.int32)
    counts = np.empty(size, np.int32)
    if ctx >= 0:
        q, j = t.ctx_head[ctx], 0
        while q != EMPTY:
            toks[j], counts[j] = t.pair_tok[q], t.pair_count[q]
            j += 1
            q = t.pair_link[q]
    return toks, counts


@njit(cache=True)
def _rehash_into(old, new):
    """Copy every live context and pair of ``old`` into the larger ``new``."""
    remap = np.full(old.ctx_key.shape[0], EMPTY, np.int64)
    for i in range(old.ctx_key.shape[0]):
        if old.ctx_key[i] != 0 and old.ctx_total[i] > 0:
            j = _ctx_slot(new, old.ctx_key[i], True)
            remap[i] = j
            new.ctx_total[j] = old.ctx_total[i]
            new.ctx_best[j] = old.ctx_best[i]
            new.ctx_best_count[j] = old.ctx_best_count[i]
    for p in range(old.pair_ctx.shape[0]):
        c = old.pair_ctx[p]
        if c != EMPTY and old.pair_count[p] > 0 and remap[c] != EMPTY:
            q = _pair_slot(new, remap[c], old.pair_tok[p], True)
            new.pair_count[q] = old.pair_count[p]


def reserve(t: Tables, new_ngrams: int) -> Tables:
    """Tables that can take ``new_ngrams`` more n-grams at a load factor ≤ 1/2 (``t`` itself if it can)."""
    need_ctx = int(t.meta[0]) + new_ngrams
    need_pair = int(t.meta[1]) + new_ngrams
    if 2 * need_ctx <= t.ctx_key.shape[0] and 2 * need_pair <= t.pair_ctx.shape[0]:
        return t
    grown = new_tables(max(2 * need_ctx, t.ctx_key.shape[0]), max(2 * need_pair, t.pair_ctx.shape[0]))
    _rehash_into(t, grown)
    return grown
