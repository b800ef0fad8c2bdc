"""The cadence engine on a virtual clock: exact emission schedules, never ahead of the decode core."""

import asyncio

import pytest

from sparkls.plugins.api import Timeline
from sparkls.server.cadence import RealClock, in_thread, kept_up, pace
from sparkls.server.testing.clock import VirtualClock


async def decode_core(clock, produced_at, fail_after=None):
    """A fake decode core producing token i ("t0 t1 ...") at produced_at[i] seconds."""
    text = ""
    for i, t in enumerate(produced_at):
        if i == fail_after:
            raise RuntimeError("decode failed")
        await clock.sleep_until(t)
        text += f"t{i} "
        yield text


def schedule(times, produced_at, as_produced=False, **kw):
    clock = VirtualClock()
    tl = Timeline(backend="x", token_times=tuple(times), as_produced=as_produced)

    async def main():
        return [(e.tokens, round(e.t, 9), e.kept_up) async for e in pace(tl, decode_core(clock, produced_at, **kw), clock)]

    return clock.run(main())


def test_fast_decode_is_held_to_the_timeline():
    """Ensure tokens produced early are shown exactly when the timeline says."""
    assert schedule([0.25, 0.5, 0.75], [0.0, 0.0, 0.0]) == [(1, 0.25, True), (2, 0.5, True), (3, 0.75, True)]


def test_slow_decode_is_never_overtaken_and_says_so():
    """Ensure a token is never shown before it exists, and such emissions are not kept up."""
    got = schedule([0.1, 0.2, 0.3, 0.4], [0.05, 0.5, 0.55, 0.6])
    # t1 is late (0.5 > 0.2): shown on arrival; t2 and t3 then follow as they come.
    assert got == [(1, 0.1, True), (2, 0.5, False), (3, 0.55, False), (4, 0.6, False)]


def test_catch_up_after_a_stall_coalesces_due_tokens():
    """Ensure tokens already due and produced when a late one arrives are shown together."""
    clock = VirtualClock()
    tl = Timeline(backend="x", token_times=(0.1, 0.2, 0.3, 0.4))

    async def bursty():
        await clock.sleep_until(0.35)
        for i in range(4):  # all four at once, after a stall
            yield "".join(f"t{k} " for k in range(i + 1))

    async def main():
        return [(e.tokens, round(e.t, 9), e.kept_up) async for e in pace(tl, bursty(), clock)]

    assert clock.run(main()) == [(3, 0.35, False), (4, 0.4, True)]


def test_speculative_bursts_arrive_together():
    """Ensure tokens sharing a due time (one verified draft) form one emission."""
    got = schedule([0.2, 0.2, 0.2, 0.5, 0.5], [0.0] * 5)
    assert got == [(3, 0.2, True), (5, 0.5, True)]


def test_local_timeline_shows_tokens_as_produced():
    """Ensure the local backend's as-produced timeline emits on arrival and always keeps up."""
    got = schedule([9.0, 9.0, 9.0], [0.1, 0.3, 0.7], as_produced=True)
    assert got == [(1, 0.1, True), (2, 0.3, True), (3, 0.7, True)]


def test_stream_past_the_timeline_continues_at_the_steady_rate():
    """Ensure more tokens than the timeline covers are paced at its last interval."""
    got = schedule([0.5, 0.75], [0.0] * 4)
    assert [t for _, t, _ in got] == [0.5, 0.75, 1.0, 1.25]


def test_short_completion_and_decode_errors():
    """Ensure the stream ends with the decode core, and a decode error propagates."""
    assert schedule([0.1, 0.2, 0.3], [0.0]) == [(1, 0.1, True)]
    with pytest.raises(RuntimeError, match="decode failed"):
        schedule([0.1, 0.2, 0.3], [0.0, 0.0, 0.0], fail_after=2)


def test_real_clock_paces_in_wall_time():
    """Ensure the real asyncio clock works the same (a 30 ms timeline)."""
    clock = RealClock()

    async def main():
        tl = Timeline(backend="x", token_times=(0.01, 0.02, 0.03))
        start = clock.now()
        out = [e async for e in pace(tl, decode_core(clock, [start] * 3), clock, start=start)]
        return out, clock.now() - start

    out, took = asyncio.run(main())
    assert kept_up(out) and out[-1].text == "t0 t1 t2 " and 0.03 <= took < 0.5


def test_blocking_decode_core_in_a_thread():
    """Ensure a blocking snapshot iterator is paced, and its errors reach the stream."""

    def core(fail=False):
        yield "a"
        yield "ab"
        if fail:
            raise ValueError("boom")

    async def main(fail):
        tl = Timeline(backend="x", token_times=(0.0, 0.001))
        return [e.text async for e in pace(tl, in_thread(core(fail)), RealClock())]

    assert asyncio.run(main(False))[-1] == "ab"  # "a" may be coalesced: both are due by then
    with pytest.raises(ValueError, match="boom"):
        asyncio.run(main(True))
