"""Completion streams: decode once, pace at the backend's cadence, serve every request that fits.

A :class:`Stream` runs the decode engine for one cursor in a worker thread and paces its
growing text at the active backend's timeline (server/cadence.py). Requests become
:class:`View` s of a stream. When the user types exactly what the ghost text proposed, the
next request is a new view of the same stream (typeahead: no new decode, the text keeps
growing); any other request for the document stops the old stream, decode work included.
Finished streams stay in a small LRU so typing along a finished suggestion is answered at once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Iterator

from sparkls.decode.engine import CompletionContext, Engine, Scored
from sparkls.plugins.api import Timeline
from sparkls.server import messages
from sparkls.server.cadence import RealClock, in_thread, pace

log = logging.getLogger("sparkls")

MATCH_CHARS = 256  # text before the cursor that must be unchanged for typeahead
SUFFIX_CHARS = 80  # and text after it
KEEP_FINISHED = 32
ORPHAN_SECONDS = 1.0  # a stream nobody watches (its request was cancelled) stops after this


@dataclass(eq=False)
class Stream:
    """One decode for one cursor, paced; ``text`` is what has been shown so far."""

    id: str
    uri: str
    cursor: int
    before: str  # the MATCH_CHARS before the cursor when it started
    after: str  # the SUFFIX_CHARS after it
    timeline: Timeline
    stop: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    tokens: int = 0
    done: bool = False
    kept_up: bool = True
    started: float = field(default_factory=time.monotonic)
    first_shown: float | None = None  # seconds after start
    decoded: int = 0  # snapshots (≈ tokens) the decode core produced
    decode_seconds: float = 0.0  # from start to the last of them: decode time, not pacing time
    logprobs: tuple[float, ...] = ()  # the model's per-token log-probabilities so far, if the engine gives them
    margins: tuple[float, ...] = ()  # and each token's log-prob gap to the best other token
    task: asyncio.Task | None = None
    watchers: int = 0
    failed: bool = False  # ended by an error, not by its engine finishing
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def changed(self) -> None:
        """Wait until the text grows or the stream ends."""
        await self._changed.wait()

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def typed_since(self, before: str, after: str) -> str | None:
        """What was typed since this stream started, if the new cursor only typed along its text.

        ``before`` and ``after`` are the new request's text around its cursor.
        """
        if after[:SUFFIX_CHARS] != self.after:
            return None
        for k in range(0, min(len(self.text), 200) + 1):
            head, typed = before[: len(before) - k], before[len(before) - k :]
            if head.endswith(self.before) and self.text.startswith(typed):
                if k < len(self.text) or not self.done:  # something is left to show
                    return typed
        return None


@dataclass(eq=False)
class View:
    """A request's window on a stream: the stream's text minus what was typed since."""

    stream: Stream
    skip: int  # characters of the stream's text the user already typed
    word: str  # the word typed before this request's cursor (the range starts there)
    stream_id: str
    eol: str = "\n"  # the document's line break (engines work with LF)

    def insert_text(self) -> str:
        rest = self.stream.text[self.skip :]
        if self.eol != "\n":
            rest = rest.replace("\n", self.eol)
        return self.word + rest if rest else ""


class StreamHub:
    """Streams by document; at most one live stream per document."""

    def __init__(self, engine: Callable[[], Engine], pool: Executor) -> None:
        self.engine = engine
        self.pool = pool
        self.live: dict[str, Stream] = {}
        self.finished: OrderedDict[str, Stream] = OrderedDict()
        self._ids = itertools.count(1)

    def next_id(self) -> str:
        return f"s{next(self._ids)}"

    def attach(self, uri: str, before: str, after: str) -> tuple[Stream, str] | None:
        """A live or finished stream of ``uri`` the new cursor typed along, with the typed text."""
        candidates = ([self.live[uri]] if uri in self.live else []) + [
            s for s in reversed(self.finished.values()) if s.uri == uri
        ]
        for s in candidates:
            typed = s.typed_since(before, after)
            if typed is not None:
                return s, typed
        return None

    def start(self, uri: str, ctx: CompletionContext, timeline: Timeline) -> Stream:
        """Stop the document's live stream and start decoding ``ctx``."""
        self.cancel(uri)
        s = Stream(
            self.next_id(), uri, ctx.cursor, ctx.prefix[-MATCH_CHARS:], ctx.suffix[:SUFFIX_CHARS], timeline
        )
        self.live[uri] = s
        s.task = asyncio.ensure_future(self._run(s, ctx))
        return s

    def cancel(self, uri: str) -> None:
        s = self.live.pop(uri, None)
        if s is not None:
            s.stop.set()
            if s.task is not None:
                s.task.cancel()

    def cancel_all(self) -> None:
        for uri in list(self.live):
            self.cancel(uri)

    def reset(self) -> None:
        """Stop every stream and forget finished ones."""
        self.cancel_all()
        self.finished.clear()

    def forget(self, stream_id: str) -> None:
        """Drop a finished stream (its suggestion was dismissed) so it is not offered again."""
        for key, s in list(self.finished.items()):
            if s.id == stream_id:
                del self.finished[key]

    def orphaned(self, s: Stream) -> None:
        """A request watching ``s`` went away; stop ``s`` soon unless another request attaches."""

        def check() -> None:
            if s.watchers == 0 and not s.done and self.live.get(s.uri) is s:
                log.debug("stream %s: nobody is watching, stopping", s.id)
                self.cancel(s.uri)

        asyncio.get_running_loop().call_later(ORPHAN_SECONDS, check)

    async def _run(self, s: Stream, ctx: CompletionContext) -> None:
        engine = self.engine()
        executor = engine.executor or self.pool  # remote I/O has its own threads
        produced = in_thread(_timed(engine.complete(ctx, s.stop.is_set), s), executor, s.stop)
        try:
            async for e in pace(s.timeline, produced, RealClock(), start=asyncio.get_running_loop().time()):
                s.text, s.tokens = e.text, e.tokens
                s.kept_up = s.kept_up and e.kept_up
                if s.first_shown is None:
                    s.first_shown = e.t
                s._bump()
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            s.failed = True
            log.error("stream %s failed: %s: %s", s.id, type(exc).__name__, exc)
            log.debug("stream %s failed", s.id, exc_info=True)
        finally:
            s.stop.set()
            s.done = True
            s._bump()
            if self.live.get(s.uri) is s:
                del self.live[s.uri]
            if s.text and not s.failed:  # a failed stream's partial text is never offered again
                self.finished[s.id] = s
                while len(self.finished) > KEEP_FINISHED:
                    self.finished.popitem(last=False)


def _timed(snapshots: Iterator[str], s: Stream) -> Iterator[str]:
    """Count and time the decode core's snapshots where they are made (in the worker thread)."""
    t0 = time.perf_counter()
    for text in snapshots:
        if isinstance(text, Scored):
            s.logprobs, s.margins = text.logprobs, text.margins
        s.decoded += 1
        s.decode_seconds = time.perf_counter() - t0
        yield text


class StreamFollower:
    """Sends `sparkls/inlineCompletionStream` notifications as a view's text grows (docs/protocol.md)."""

    def __init__(self, server, view: View, request_id, uri: str, version: int, range_) -> None:
        self.server = server
        self.view = view
        self.request_id = request_id
        self.uri = uri
        self.version = version
        self.range = messages.Range.of(range_)
        self.sent = view.insert_text()  # the response carried this much
        self.arrived = time.monotonic()
        self.finished = False
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    def stop(self, cancelled: bool) -> None:
        """End this stream for the client now (a newer request took over)."""
        if self.task is not None and not self.finished:
            self.task.cancel()
            self._send(self.sent, done=True, cancelled=cancelled)

    async def _run(self) -> None:
        stream = self.view.stream
        try:
            # The response to the request is sent when the handler's task completes; yield
            # twice so it goes out before the first notification that extends it.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            while True:
                if not stream.done:
                    await stream.changed()
                text = self.view.insert_text() or self.sent
                if stream.done:
                    self._send(text, done=True)
                    return
                if text != self.sent:
                    self._send(text, done=False)
        finally:
            stream.watchers -= 1

    def _send(self, text: str, done: bool, cancelled: bool = False) -> None:
        if self.finished:
            return
        self.finished = done
        self.sent = text
        stream = self.view.stream
        timeline = stream.timeline
        messages.notify(
            self.server,
            messages.StreamNotification(
                stream_id=self.view.stream_id,
                request_id=self.request_id,
                uri=self.uri,
                version=self.version,
                index=0,
                range=self.range,
                text=text,
                done=done,
                cancelled=cancelled,
                backend=timeline.backend,
                tokens_per_second=timeline.tokens_per_s if timeline.tokens_per_s != float("inf") else None,
                kept_up=stream.kept_up,
                elapsed_ms=round((time.monotonic() - self.arrived) * 1000, 1),
            ),
        )
