"""Pace a streamed completion at the active backend's timeline, never ahead of the decode core.

The decode core produces text snapshots (each extends the last, one per token) as fast as
this machine allows; the backend's :class:`~sparkls.plugins.api.Timeline` says when each
token would have reached the user on the modelled hardware. :func:`pace` shows token ``i``
at ``start + timeline.due(i)``, or as soon as the decode core has produced it if that is
later, and says which: ``kept_up`` is False whenever the local decode was slower than the
modelled hardware. Tokens of one speculative-decoding burst (equal due times) already
produced are shown together. Time comes from an injectable clock: :class:`RealClock` in the
server, :class:`~sparkls.server.testing.clock.VirtualClock` in tests, where waiting takes no
wall time and schedules are exact.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import AsyncIterable, AsyncIterator, Iterator, Protocol

from sparkls.plugins.api import Timeline

EPS = 1e-9  # float slack when comparing clock readings with due times


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep_until(self, t: float) -> None: ...


class RealClock:
    """The running event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(frozen=True)
class Emission:
    """One update of the ghost text."""

    text: str  # the whole completion shown so far
    tokens: int  # tokens shown so far
    t: float  # when it was shown, seconds since the stream started
    due: float  # when the timeline wanted its last token shown
    kept_up: bool  # the decode core had produced every token in it by its due time


async def pace(
    timeline: Timeline, produced: AsyncIterable[str], clock: Clock, start: float | None = None
) -> AsyncIterator[Emission]:
    """Yield the decode core's snapshots at the timeline's cadence (see the module docstring).

    ``produced`` is drained concurrently, so pacing never slows the decode core down. The
    stream ends when ``produced`` does; an exception from it is re-raised here. With
    ``timeline.as_produced`` (the ``local`` backend) every snapshot is shown on arrival.
    """
    start = clock.now() if start is None else start
    snaps: list[tuple[str, float]] = []  # (text, seconds after start it was produced)
    arrived = asyncio.Event()

    async def drain() -> None:
        try:
            async for text in produced:
                snaps.append((text, clock.now() - start))
                arrived.set()
        finally:
            arrived.set()

    reader = asyncio.ensure_future(drain())
    try:
        shown = 0
        while True:
            while len(snaps) <= shown and not reader.done():
                arrived.clear()
                await arrived.wait()
            if len(snaps) <= shown:
                break
            if timeline.as_produced:
                last = len(snaps) - 1
                yield Emission(snaps[last][0], last + 1, clock.now() - start, snaps[last][1], True)
                shown = last + 1
                continue
            await clock.sleep_until(start + timeline.due(shown))
            now = clock.now() - start
            last = shown
            while last + 1 < len(snaps) and timeline.due(last + 1) <= now + EPS:
                last += 1  # the rest of a burst, already produced and already due
            kept = all(snaps[i][1] <= timeline.due(i) + EPS for i in range(shown, last + 1))
            yield Emission(snaps[last][0], last + 1, now, timeline.due(last), kept)
            shown = last + 1
        if reader.done() and not reader.cancelled() and reader.exception():
            raise reader.exception()
    finally:
        reader.cancel()


async def in_thread(
    snapshots: Iterator[str], executor: Executor | None = None, stop: threading.Event | None = None
) -> AsyncIterator[str]:
    """Run a blocking snapshot iterator (a decode core's ``complete``) in a worker thread and
    yield its values on the event loop as they come. When the reader stops early, ``stop`` is
    set so the worker (and the decode core, if its ``cancelled`` callback reads ``stop``)
    ends within one token instead of running to completion."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    def work() -> None:
        try:
            for text in snapshots:
                if stop is not None and stop.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, text)
        except BaseException as e:  # handed to the event loop, re-raised there
            loop.call_soon_threadsafe(queue.put_nowait, e)
        loop.call_soon_threadsafe(queue.put_nowait, done)

    worker = loop.run_in_executor(executor, work)
    try:
        while (item := await queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
        await worker
    finally:
        if stop is not None:
            stop.set()


def kept_up(emissions: list[Emission]) -> bool:
    """Whether the whole stream kept pace with the modelled hardware."""
    return all(e.kept_up for e in emissions)
