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

Where the timeline comes from, and when decoding starts, live here too (one concern: the stream's
timing against the backend): :class:`Pacer` asks the active backend for a request's timeline, and
:func:`adaptive_debounce` lets a slow backend wait for a pause in typing while one whose answer lands
before the next key (a WSE-3-class backend) answers every keystroke; the typing rate is measured per
document (:class:`TypingRate`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import tomllib
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import AsyncIterable, AsyncIterator, Iterator, Protocol

from sparkls.decode.engine import CompletionContext
from sparkls.plugins import AUTO, FALLBACK, Request, host
from sparkls.plugins.api import ModelSpec, SpecError, Timeline, builtin_models, load_model, load_spec
from sparkls.server import safe_files

log = logging.getLogger("sparkls")

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


# When decoding starts, and the timeline a stream is paced at.
CHARS_PER_TOKEN = 3.5  # code under a BPE vocabulary; only sizes the modelled request
PROMPT_CHARS = 8000  # what a served model would be sent as prompt
MAX_DEBOUNCE = 0.4


class TypingRate:
    """Mean gap between keystrokes (edits), as an exponential moving average over recent typing."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.gap: float | None = None

    def keystroke(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.last is not None:
            gap = now - self.last
            if gap < 2.0:  # longer is a pause, not a typing rate
                self.gap = gap if self.gap is None else 0.7 * self.gap + 0.3 * gap
        self.last = now


def adaptive_debounce(ttft: float, gap: float | None) -> float:
    """Seconds to wait before decoding an as-you-type request.

    If the backend's first token lands well before the user's next keystroke, answering
    every keystroke is free: no wait. Otherwise wait a little longer than the typing gap,
    so decoding starts when the user pauses rather than for every key.
    """
    if gap is None:
        return 0.05
    if ttft <= 0.5 * gap:
        return 0.0
    return min(max(1.5 * gap, 0.05), MAX_DEBOUNCE)


@lru_cache(maxsize=16)
def served_model(name: str) -> ModelSpec:
    """A built-in served model by name. TOML files named in settings are read by
    :func:`served_model_file` (off the event loop, through safe_files), never here."""
    if name in builtin_models():
        return load_model(name)
    return load_model("smollm2-135m")


SERVED_MODEL_BYTES = 256_000


def served_model_file(path: str, roots: list[Path]) -> ModelSpec:
    """A served model described by a TOML file inside ``roots`` (blocking; run it in a worker).

    Raises SpecError naming the file and why (outside the workspace, not a regular file, too
    large, not TOML, invalid)."""
    file = Path(path).expanduser()
    if not file.is_absolute() and roots:
        file = roots[0] / file  # relative to the workspace
    text = safe_files.read_text(file, SERVED_MODEL_BYTES, roots)
    if isinstance(text, safe_files.Skip):
        raise SpecError(f"served model file {text}")
    try:
        return load_spec(ModelSpec, tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"served model file {path}: {exc}") from None


class Pacer:
    """The active backend and the timelines it gives for requests."""

    def __init__(self) -> None:
        self.setting = AUTO  # the `backend` setting: a backend's name, or "auto"
        self.remote = False  # a remote engine serves: "local" pacing means its own cadence
        self.model_name = "llama-3.1-8b"
        self.model_spec: ModelSpec | None = None  # read from a TOML file (served_model_file); wins over the name
        self.seed = 0
        self.last_prompt: dict[str, str] = {}  # per document, for the prefix a server would have cached

    @property
    def backend_name(self) -> str:
        """The backend the setting means now ("auto": ``$SPARKLS_BACKEND``, else the highest priority)."""
        name = host().choose(self.setting)
        return "remote" if self.remote and name == FALLBACK else name

    @property
    def backend(self):
        return host().get(self.backend_name)

    def timeline(self, uri: str, ctx: CompletionContext) -> Timeline:
        prompt = ctx.prefix[-PROMPT_CHARS:]
        previous = self.last_prompt.get(uri, "")
        self.last_prompt[uri] = prompt
        shared = len(os.path.commonprefix((previous, prompt))) if previous else 0
        request = Request(
            model=self.model_spec or served_model(self.model_name),
            prompt_tokens=max(1, round(len(prompt) / CHARS_PER_TOKEN)),
            cached_tokens=round(shared / CHARS_PER_TOKEN),
            new_tokens=max(1, ctx.max_tokens),
        )
        self.seed += 1
        return host().timeline(None, request, seed=self.seed, backend=self.backend)

    def measured(self, tokens: int, seconds: float) -> None:
        """Tell the ``local`` backend how fast this machine decoded."""
        if tokens > 1 and seconds > 0:
            local = host().get("local")
            if hasattr(local, "update"):
                local.update(tokens_per_s=tokens / seconds)
