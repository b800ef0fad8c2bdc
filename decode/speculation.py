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

Everything is a decaying average, so the length follows the machine and the text: long
drafts for code being repeated, none when the drafter keeps guessing wrong or batches
cost too much. While drafts on offer are declined, the estimates relax back toward their
priors, so drafting is tried again: one slow verification (a page fault, a preempted
thread) must not switch speculation off for good.
"""

from __future__ import annotations

import threading

MAX_DRAFT = 16  # positions whose acceptance is tracked; longer drafts reuse the last one's


class DraftBudget:
    """Costs of forward passes and the drafter's acceptance per position, shared by a model's sessions."""

    def __init__(self, decay: float = 0.8, extra_prior: float = 0.3) -> None:
        self.decay = decay
        self.step_s: float | None = None  # seconds of a one-token forward
        self.extra_s: float | None = None  # seconds each further token adds to a batched forward
        self.extra_prior = extra_prior  # extra_s / step_s until a verification is timed
        self.tried = [0.0] * MAX_DRAFT  # decayed count of verifications that reached draft position i
        self.kept = [0.0] * MAX_DRAFT  # ... and accepted the draft there
        self._lock = threading.Lock()

    def rates(self, n: int) -> list[float]:
        """Estimated acceptance of draft positions 1..n, each given the ones before were accepted.

        Position 1's prior is 1/2; every later one shrinks toward the rate of the position
        before it (two pseudo-trials), so untried positions borrow their neighbour's rate.
        """
        out, prior = [], 0.5
        for i in range(n):
            j = min(i, MAX_DRAFT - 1)
            rate = (self.kept[j] + 2.0 * prior) / (self.tried[j] + 2.0)
            out.append(rate)
            prior = rate
        return out

    @property
    def acceptance(self) -> float:
        """Estimated chance that the first drafted token is accepted."""
        return self.rates(1)[0]

    def length(self, available: int) -> int:
        """How many of ``available`` drafted tokens to verify (0: take one plain step)."""
        if available <= 0:
            return 0
        step = self.step_s or 1.0
        extra = self.extra_s if self.extra_s is not None else self.extra_prior * step
        best_k, best_rate = 0, 1.0 / step
        expected, reach = 1.0, 1.0
        for k, p in enumerate(self.rates(available), start=1):
            reach *= p
            expected += reach
            rate = expected / (step + k * extra)
            if rate > best_rate:
                best_k, best_rate = k, rate
        return best_k

    def timed_step(self, seconds: float, declined: bool = False) -> None:
        """A one-token forward took ``seconds``; ``declined``: drafts were on offer but not verified."""
        with self._lock:
            self.step_s = self._mix(self.step_s, seconds)
            if declined:  # let the estimates drift back to their priors, so drafting is tried again
                self.tried = [x * self.decay for x in self.tried]
                self.kept = [x * self.decay for x in self.kept]
                if self.extra_s is not None:
                    self.extra_s = self._mix(self.extra_s, self.extra_prior * self.step_s)

    def timed_verify(self, n_tokens: int, seconds: float, drafted: int, accepted: int) -> None:
        """A forward of ``n_tokens`` (the pending token + ``drafted`` drafts) took ``seconds``; ``accepted`` drafts were kept."""
        with self._lock:
            if self.step_s is not None and n_tokens > 1:
                extra = min(max(seconds - self.step_s, 0.0) / (n_tokens - 1), self.step_s)  # a preempted pass is not the kernel's cost
                self.extra_s = self._mix(self.extra_prior * self.step_s if self.extra_s is None else self.extra_s, extra)
            for i in range(min(drafted, accepted + 1, MAX_DRAFT)):  # positions this verification reached
                self.tried[i] = self.tried[i] * self.decay + 1.0
                self.kept[i] = self.kept[i] * self.decay + (1.0 if i < accepted else 0.0)

    def _mix(self, old: float | None, new: float) -> float:
        return new if old is None else self.decay * old + (1 - self.decay) * new
