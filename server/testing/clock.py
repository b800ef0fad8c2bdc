"""Virtual time for tests: an event loop whose clock jumps to the next timer instead of waiting.

Every ``asyncio.sleep`` (and :meth:`VirtualClock.sleep_until`) returns at once with the clock
moved exactly to its deadline, so a minute of recorded typing replays in milliseconds and a
stream's cadence can be asserted to the millisecond.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Awaitable, TypeVar

from sparkls.server.cadence import RealClock

T = TypeVar("T")


class _JumpSelector(selectors.DefaultSelector):
    """Never blocks: when the loop would wait ``timeout`` seconds, the virtual clock jumps instead."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None):
        if timeout is not None and timeout > 0:
            self._clock.t += timeout
        elif timeout is None and not self.get_map():
            raise RuntimeError("virtual clock: every task is waiting and nothing is scheduled")
        return super().select(0 if timeout is not None else None)


class _VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(_JumpSelector(clock))
        self._clock = clock

    def time(self) -> float:
        return self._clock.t


class VirtualClock(RealClock):
    """Virtual time for tests: run a coroutine with :meth:`run`; every ``asyncio.sleep`` in it
    (and :meth:`sleep_until`) returns at once with the clock moved exactly to its deadline."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def run(self, main: Awaitable[T]) -> T:
        loop = _VirtualLoop(self)
        try:
            return loop.run_until_complete(main)
        finally:
            loop.close()
