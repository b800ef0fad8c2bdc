"""How many drafted tokens to verify: the length that maximizes tokens per second.

Verifying k drafts costs one forward pass of k+1 tokens: about ``step + k * extra``
seconds, where ``extra`` (the cost of one more token in the batch) depends on the CPU,
the kernels and whatever else the machine is doing. Drafts are accepted left to right
until the first miss, so with a per-token acceptance rate p a verification yields
``1 + p + p**2 + ... + p**k`` tokens on average. Both are measured as generation runs
(decaying averages), so the length follows the machine and the text: long drafts for
code being repeated, none when the drafter keeps guessing wrong or batches cost too much.
While drafts on offer are declined, both estimates relax back toward their priors, so
drafting is tried again: one slow verification (a page fault, a preempted thread) must
not switch speculation off for good.
"""

from __future__ import annotations

import threading


class DraftBudget:
    """Costs of forward passes and the drafter's acceptance rate, shared by a model's sessions."""

    def __init__(self, decay: float = 0.8, extra_prior: float = 0.3) -> None:
        self.decay = decay
        self.step_s: float | None = None  # seconds of a one-token forward
        self.extra_s: float | None = None  # seconds each further token adds to a batched forward
        self.extra_prior = extra_prior  # extra_s / step_s until a verification is timed
        self.hits = 0.0  # decayed count of accepted drafts
        self.misses = 0.0  # decayed count of rejected drafts (at most one per verification)
        self._lock = threading.Lock()

    @property
    def acceptance(self) -> float:
        """Estimated chance that the next drafted token is accepted (prior 1/2)."""
        return (self.hits + 1.0) / (self.hits + self.misses + 2.0)

    def length(self, available: int) -> int:
        """How many of ``available`` drafted tokens to verify (0: take one plain step)."""
        if available <= 0:
            return 0
        step = self.step_s or 1.0
        extra = self.extra_s if self.extra_s is not None else self.extra_prior * step
        p = self.acceptance
        best_k, best_rate = 0, 1.0 / step
        expected, gain = 1.0, 1.0
        for k in range(1, available + 1):
            gain *= p
            expected += gain
            rate = expected / (step + k * extra)
            if rate > best_rate:
                best_k, best_rate = k, rate
        return best_k

    def timed_step(self, seconds: float, declined: bool = False) -> None:
        """A one-token forward took ``seconds``; ``declined``: drafts were on offer but not verified."""
        with self._lock:
            self.step_s = self._mix(self.step_s, seconds)
            if declined:  # let the estimates drift back to their priors, so drafting is tried again
                self.hits *= self.decay
                self.misses *= self.decay
                if self.extra_s is not None:
                    self.extra_s = self._mix(self.extra_s, self.extra_prior * self.step_s)

    def timed_verify(self, n_tokens: int, seconds: float, drafted: int, accepted: int) -> None:
        with self._lock:
            if self.step_s is not None and n_tokens > 1:
                extra = min(max(seconds - self.step_s, 0.0) / (n_tokens - 1), self.step_s)  # a preempted pass is not the kernel's cost
                self.extra_s = self._mix(self.extra_prior * self.step_s if self.extra_s is None else self.extra_s, extra)
            self.hits = self.hits * self.decay + accepted
            self.misses = self.misses * self.decay + (1 if accepted < drafted else 0)

    def _mix(self, old: float | None, new: float) -> float:
        return new if old is None else self.decay * old + (1 - self.decay) * new
