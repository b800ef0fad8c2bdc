"""Run a decode engine for one cursor, off the event loop, stoppable between tokens.

One job per document: a newer request for the same document stops the older one, and
so does `$/cancelRequest` — both the asyncio task and, through a flag the engine
checks between tokens, the decode work in its thread.
"""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from sparkls.decode.engine import CompletionContext, Engine
from sparkls.server.documents import Document

PREFIX_CHARS = 64_000  # more than any prompt budget; keeps huge documents cheap
SUFFIX_CHARS = 16_000
_WORD_BEFORE = re.compile(r"[\w\u00c0-\uffff]+$")


def typed_word(prefix: str) -> str:
    """The part of a word typed before the cursor; a suggestion's range starts where it starts."""
    m = _WORD_BEFORE.search(prefix[-256:])
    return m.group(0) if m else ""


def completion_context(doc: Document, offset: int, max_tokens: int, path: str = "") -> CompletionContext:
    """The prefix and suffix windows around ``offset`` that a decode engine sees."""
    lo = max(0, offset - PREFIX_CHARS)
    return CompletionContext(
        prefix=doc.text[lo:offset],
        suffix=doc.text[offset : offset + SUFFIX_CHARS],
        path=path or doc.uri,
        prefix_start=lo,
        max_tokens=max_tokens,
    )


class Completer:
    """Runs completions for documents, at most one live job per document."""

    def __init__(self, engine: Engine, workers: int = 2) -> None:
        self.engine = engine
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sparkls-decode")
        self.jobs: dict[str, tuple[asyncio.Task, threading.Event]] = {}

    def cancel(self, uri: str) -> None:
        """Stop the job running for ``uri``, if any."""
        job = self.jobs.pop(uri, None)
        if job is not None:
            task, flag = job
            flag.set()
            if task is not asyncio.current_task():
                task.cancel()

    async def complete(self, uri: str, ctx: CompletionContext, delay: float = 0.0) -> str:
        """The engine's final completion text after the cursor ("" for none).

        Raises CancelledError when a newer request for ``uri`` or the client cancelled it."""
        self.cancel(uri)
        flag = threading.Event()
        me = asyncio.current_task()
        self.jobs[uri] = (me, flag)
        loop = asyncio.get_running_loop()
        try:
            if delay > 0:  # debounce: a newer request during the pause cancels this one for free
                await asyncio.sleep(delay)
            text = await loop.run_in_executor(self.pool, self._run, ctx, flag)
        except asyncio.CancelledError:
            flag.set()
            raise
        finally:
            if self.jobs.get(uri, (None,))[0] is me:
                del self.jobs[uri]
        return text

    def _run(self, ctx: CompletionContext, flag: threading.Event) -> str:
        text = ""
        for text in self.engine.complete(ctx, flag.is_set):
            if flag.is_set():
                return ""
        return text

    def shutdown(self) -> None:
        for uri in list(self.jobs):
            self.cancel(uri)
        self.pool.shutdown(wait=False, cancel_futures=True)
