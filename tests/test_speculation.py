"""The draft-length policy: verify as many drafts as pay for themselves, given measured costs."""

from __future__ import annotations

from sparkls.decode.neural.speculation import DraftBudget


def budget_after(step_s: float, extra_s: float, accepted_of: list[tuple[int, int]]) -> DraftBudget:
    b = DraftBudget()
    b.timed_step(step_s)
    for accepted, drafted in accepted_of:
        b.timed_verify(drafted + 1, step_s + drafted * extra_s, drafted, accepted)
    return b


def test_cheap_batches_and_good_drafts_verify_long_drafts() -> None:
    """Ensure that when extra tokens are cheap and drafts are always accepted, all drafts are verified."""
    b = budget_after(0.010, 0.001, [(8, 8)] * 10)
    assert b.acceptance > 0.8
    assert b.length(8) == 8


def test_bad_drafts_are_not_verified() -> None:
    """Ensure that when every draft is rejected and extra tokens cost half a step, none are verified."""
    b = budget_after(0.010, 0.005, [(0, 4)] * 10)
    assert b.acceptance < 0.2
    assert b.length(8) == 0


def test_expensive_batches_shorten_drafts() -> None:
    """Ensure that the same acceptance gives shorter drafts when each extra token costs more."""
    history = [(3, 8), (2, 8), (5, 8), (1, 8)] * 3
    cheap = budget_after(0.010, 0.0005, history).length(8)
    dear = budget_after(0.010, 0.004, history).length(8)
    assert 1 <= dear < cheap


def test_drafting_resumes_after_plain_steps() -> None:
    """Ensure that after drafts were given up, plain steps relax the estimate until drafting is tried again."""
    b = budget_after(0.010, 0.002, [(0, 4)] * 10)
    assert b.length(4) == 0
    for _ in range(5):
        b.timed_step(0.010)  # no drafts on offer: no evidence either way
    assert b.length(4) == 0
    for _ in range(30):
        b.timed_step(0.010, declined=True)
    assert b.length(4) >= 1


def test_never_more_than_available() -> None:
    """Ensure that the length never exceeds the drafts on offer, and 0 on offer gives 0."""
    b = budget_after(0.010, 0.0001, [(8, 8)] * 10)
    assert b.length(3) == 3
    assert b.length(0) == 0


def test_one_slow_verification_does_not_stop_drafting() -> None:
    """Ensure that a first verification as slow as a plain step (extra token costing a whole
    step, e.g. page faults) does not switch drafting off for good while drafts are accepted."""
    b = DraftBudget()
    b.timed_step(0.010)
    b.timed_verify(2, 0.030, 1, 1)  # one draft, accepted, but the pass took three steps
    declined = 0
    while b.length(8) == 0 and declined < 50:
        b.timed_step(0.010, declined=True)
        declined += 1
    assert declined < 50, "drafting never resumed"
    b.timed_verify(9, 0.010 + 8 * 0.001, 8, 8)  # the kernel's real cost: cheap extra tokens
    assert b.length(8) >= 2


def test_runs_of_accepted_drafts_earn_long_verifications() -> None:
    """Ensure that when drafts are either right to the end or wrong from their first token
    (copied code), the budget verifies them whole although half of them miss at once."""
    b = budget_after(0.010, 0.001, [(8, 8), (0, 8)] * 8)
    assert 0.3 < b.acceptance < 0.7
    assert b.rates(8)[-1] > 0.9, "positions after the first should look reliable"
    assert b.length(8) == 8


def test_a_usual_stopping_point_bounds_the_length() -> None:
    """Ensure that drafts that keep failing at their fourth token are cut to about three."""
    b = budget_after(0.010, 0.002, [(3, 8)] * 20)
    assert 3 <= b.length(8) <= 4


def test_acceptance_is_learned_per_match_length() -> None:
    """Ensure that drafts found by long context matches and by short ones are trusted
    separately: copied code accepted to the end does not make 2-token guesses look good."""
    b = DraftBudget()
    b.timed_step(0.010)
    for _ in range(8):
        b.timed_verify(9, 0.010 + 8 * 0.002, 8, 8, match=32)
        b.timed_verify(9, 0.010 + 8 * 0.002, 8, 0, match=2)
    assert b.length(8, match=32) == 8
    assert b.length(8, match=2) == 0
    assert b.length(8, match=12) >= 1, "a match length not seen yet is tried"


def test_costs_are_learned_without_plain_steps() -> None:
    """Ensure that when every pass verifies drafts (no plain step is ever timed), a step's
    and an extra token's costs are still told apart from passes of different sizes."""
    b = DraftBudget()
    for _ in range(10):
        b.timed_verify(3, 0.010 + 2 * 0.010, 2, 1)  # extra tokens as dear as a whole step
        b.timed_verify(9, 0.010 + 8 * 0.010, 8, 1)
    assert abs(b.step_s - 0.010) < 0.002 and abs(b.extra_s - 0.010) < 0.002, (b.step_s, b.extra_s)
    assert b.length(8) == 0, "drafts accepted 1 in 8 at this cost do not pay"


def test_a_late_miss_fades_when_that_position_is_no_longer_tried() -> None:
    """Ensure that after a miss at the last draft position shortened the drafts, the evidence
    of that miss fades while shorter drafts keep being accepted, so full length returns."""
    b = budget_after(0.010, 0.004, [(8, 8)] * 6 + [(7, 8), (7, 8)])
    assert b.length(8) < 8
    for _ in range(20):
        n = b.length(8)
        b.timed_verify(n + 1, 0.010 + n * 0.004, n, n)
    assert b.length(8) == 8
