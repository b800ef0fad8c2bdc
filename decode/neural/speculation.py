"""How many drafted tokens to verify: the length that maximizes tokens per second.

Verifying k drafts costs one forward pass of k+1 tokens: about ``step + k * extra``
seconds, where ``extra`` (the cost of one more token in the batch) depends on the CPU,
the kernels, the context length and whatever else the machine is doing. Drafts are
accepted left to right until the first miss; a verification of k drafts yields
``1 + p1 + p1*p2 + ... + p1*...*pk`` tokens on average, where ``pi`` is the chance that
draft i is accepted once drafts 1..i-1 were. Acceptance is measured per draft position,
not as one rate: n-gram drafts of code come in runs (a copied line is right to its end,
or wrong from its first token), so a draft that got past its first token is likelier to
go on, and one rate would cut long runs short (measured: 1.4 vs 1.7x on the editing
benchmark). An untried position borrows the rate of the one before.

Drafts are looked up in the history itself (:func:`match_draft`): the tokens that followed
the earlier place whose context matches the latest tokens longest. How long that match
is says how far to trust the draft, so acceptance is kept per class of match length: a
32-token match in a copied function is right far more often than a 2-token one after a
detour. Simulated from greedy outputs at measured costs on 13 editing and continuation
prompts, longest match with a table per match class vs the latest 4-gram match with one
table: 1.59 vs 1.46x (geometric mean), the bench's editing prompt 1.96 vs 1.65x.

Everything is a decaying average (costs: a decayed least-squares line over pass sizes),
so the length follows the machine and the text: long drafts for code being repeated, none
when the drafter keeps guessing wrong or batches cost too much. While drafts on offer are declined, the estimates relax back toward their
priors, so drafting is tried again: one slow verification (a page fault, a preempted
thread) must not switch speculation off for good.
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple

import numpy as np
from numba import njit

MAX_DRAFT = 16  # positions whose acceptance is tracked; longer drafts reuse the last one's
MATCH_CAP = 32  # context tokens compared when looking a draft up; longer matches are alike
_UNSEEN = (0.0,) * MAX_DRAFT  # counts of a match class no verification has reached yet


class Draft(NamedTuple):
    """Proposed next tokens and the length of the context match they were found by."""

    tokens: list[int]
    match: int


def match_class(match: int) -> int:
    """Acceptance class of a match length: two per doubling (1, 2, 3, 4-5, 6-7, 8-11, ...)."""
    return int(2 * math.log2(min(match, MATCH_CAP))) if match > 1 else 0


@njit(cache=True)
def _longest_match(history, cap):
    """(start of the continuation, match length) of the earlier position whose preceding
    tokens match the end of ``history`` longest (the latest among equals), or (-1, 0)."""
    n = history.shape[0]
    best, at = 0, -1
    for j in range(n - 2, -1, -1):
        length = 0
        while length < cap and length <= j and history[j - length] == history[n - 1 - length]:
            length += 1
        if length > best:
            best, at = length, j + 1
            if length == cap:
                break
    return at, best


def match_draft(history: np.ndarray, k: int = MAX_DRAFT) -> Draft:
    """Up to k tokens that followed the best-matching earlier context of ``history``'s end
    (prompt lookup by longest match: copies, renamed near-copies and repeated idioms)."""
    history = np.ascontiguousarray(history, np.int32)
    at, match = _longest_match(history, MATCH_CAP)
    if at < 0:
        return Draft([], 0)
    return Draft(history[at : at + k].tolist(), match)


class DraftBudget:
    """Costs of forward passes and the drafter's acceptance per position, shared by a model's sessions."""

    PRIOR_WEIGHT = 1.0  # weight of the prior cost ratio against the timed passes' spread of sizes (tokens²)

    def __init__(self, decay: float = 0.8, extra_prior: float = 0.3) -> None:
        self.decay = decay
        self.extra_prior = extra_prior  # extra_s / step_s before passes of different sizes are timed
        # Decayed sums over timed passes of 1, x, y, x², xy (x: tokens beyond the first,
        # y: seconds): a least-squares line y = step_s + x * extra_s, so costs are learned
        # from batches of different sizes even if no plain step is ever taken.
        self._sums = [0.0] * 5
        self.step_s: float | None = None  # seconds of a one-token forward
        self.extra_s: float | None = None  # seconds each further token adds to a batched forward
        # Per match class (see match_class): decayed counts of verifications that reached
        # draft position i, and of those that accepted the draft there.
        self.tried: dict[int, list[float]] = {}
        self.kept: dict[int, list[float]] = {}
        self._lock = threading.Lock()

    def _tables(self, match: int) -> tuple[list[float], list[float]]:
        """The counts of ``match``'s class, created on first use (callers hold the lock)."""
        c = match_class(match)
        if c not in self.tried:
            self.tried[c], self.kept[c] = [0.0] * MAX_DRAFT, [0.0] * MAX_DRAFT
        return self.tried[c], self.kept[c]

    def rates(self, n: int, match: int = 0) -> list[float]:
        """Estimated acceptance of draft positions 1..n of a draft found by a ``match``-token
        context match, each given the ones before were accepted.

        Position 1's prior is 1/2; every later one shrinks toward the rate of the position
        before it (two pseudo-trials), so untried positions borrow their neighbour's rate.
        """
        c = match_class(match)  # a read: an unseen class is all prior, and nothing is stored
        tried, kept = self.tried.get(c, _UNSEEN), self.kept.get(c, _UNSEEN)
        out, prior = [], 0.5
        for i in range(n):
            j = min(i, MAX_DRAFT - 1)
            rate = (kept[j] + 2.0 * prior) / (tried[j] + 2.0)
            out.append(rate)
            prior = rate
        return out

    @property
    def acceptance(self) -> float:
        """Estimated chance that the first drafted token is accepted."""
        return self.rates(1)[0]

    def length(self, available: int, match: int = 0) -> int:
        """How many of ``available`` drafted tokens (found by a ``match``-token context match) to verify (0: take one plain step)."""
        if available <= 0:
            return 0
        step = self.step_s or 1.0
        extra = self.extra_s if self.extra_s is not None else self.extra_prior * step
        best_k, best_rate = 0, 1.0 / step
        expected, reach = 1.0, 1.0
        for k, p in enumerate(self.rates(available, match), start=1):
            reach *= p
            expected += reach
            rate = expected / (step + k * extra)
            if rate > best_rate:
                best_k, best_rate = k, rate
        return best_k

    def timed_step(self, seconds: float, declined: bool = False, match: int = 0) -> None:
        """A one-token forward took ``seconds``; ``declined``: drafts (of a ``match``-token match) were on offer but not verified."""
        with self._lock:
            self._timed(0, seconds)
            if declined:  # let the estimates drift back to their priors, so drafting is tried again
                tried, kept = self._tables(match)
                tried[:] = [x * self.decay for x in tried]
                kept[:] = [x * self.decay for x in kept]

    def timed_verify(self, n_tokens: int, seconds: float, drafted: int, accepted: int, match: int = 0) -> None:
        """A forward of ``n_tokens`` (the pending token + ``drafted`` drafts of a ``match``-token
        match) took ``seconds``; ``accepted`` drafts were kept."""
        with self._lock:
            self._timed(n_tokens - 1, seconds)
            tried, kept = self._tables(match)
            # Evidence fades at every position, reached or not: a miss far into a draft must
            # not keep later drafts short for good once nothing tries that position again.
            tried[:] = [x * self.decay for x in tried]
            kept[:] = [x * self.decay for x in kept]
            for i in range(min(drafted, accepted + 1, MAX_DRAFT)):  # positions this verification reached
                tried[i] += 1.0
                kept[i] += 1.0 if i < accepted else 0.0

    def _timed(self, x: int, seconds: float) -> None:
        """Add a pass of 1 + x tokens to the cost line and refit it.

        The slope is shrunk toward the prior ratio by the passes' spread of sizes: passes of
        one size cannot tell a step from extras, and as plain steps (x = 0) crowd out old
        batches the ratio relaxes to the prior, so one slow verification (a preempted thread)
        does not stop drafting for good. Extras are capped at a step for the same reason.
        """
        sums = [v * self.decay for v in self._sums]
        for i, v in enumerate((1.0, x, seconds, x * x, x * seconds)):
            sums[i] += v
        self._sums = sums
        n, sx, sy, sxx, sxy = sums
        mx, my = sx / n, sy / n
        spread = max(sxx - sx * mx, 0.0)  # n * variance of the sizes
        prior_step = my / (1.0 + mx * self.extra_prior)
        slope = (sxy - sx * my) / spread if spread > 1e-9 else 0.0
        extra = (spread * slope + self.PRIOR_WEIGHT * self.extra_prior * prior_step) / (spread + self.PRIOR_WEIGHT)
        step = my - extra * mx
        if step <= 0.0:
            step, extra = prior_step, self.extra_prior * prior_step
        self.step_s, self.extra_s = step, min(max(extra, 0.0), step)
