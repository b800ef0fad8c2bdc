"""``remote``: a decode engine whose tokens come from a model served elsewhere.

A model too big for this machine runs on an existing OpenAI-compatible engine
(:mod:`.remote_client` streams one request and measures it). :class:`RemoteEngine` is a decode
:class:`~sparkls.decode.engine.Engine` over it: the prompt is the tail of the prefix within the
budget, the stop rules apply as text arrives, and the stream is closed as soon as they say stop
or ``cancelled()`` is true. A failure ends the stream with :class:`RemoteError`, so the server
can log it and let the local decode core take over.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from sparkls.decode.engine import CompletionContext, Engine
from sparkls.decode.remote.remote_client import Measurement, RemoteConfig, RemoteError, stream_completion
from sparkls.decode.stops import StopRules

__all__ = ["Measurement", "RemoteConfig", "RemoteEngine", "RemoteError", "prompt_of", "remote_engine",
           "stop_sequences"]


def prompt_of(ctx: CompletionContext, budget: int) -> str:
    """The tail of the prefix within ``budget`` characters, starting at a line start when cut."""
    prefix = ctx.prefix
    if len(prefix) <= budget:
        return prefix
    tail = prefix[-budget:]
    nl = tail.find("\n")
    return tail[nl + 1 :] if 0 <= nl < len(tail) - 1 else tail


def stop_sequences(rules: StopRules) -> list[str]:
    """Stop strings for the engine, so it stops generating where the stop rules will cut anyway.

    Line mode: the end of the line. Block mode: a run of blank lines (the rules also end a
    block at a dedent, which no fixed string can express; the stream is closed there).
    """
    return ["\n\n\n"] if rules.block else ["\n"]


class RemoteEngine(Engine):
    """A decode engine whose tokens come from an OpenAI-compatible server.

    ``last`` holds the :class:`Measurement` of the latest request (also passed to
    ``on_measure`` when a request ends, successfully or not). ``count_tokens`` estimates
    prompt tokens when the engine does not report usage (default: characters / 4).
    """

    name = "remote"

    def __init__(
        self,
        config: RemoteConfig | dict,
        on_measure: Callable[[Measurement], None] | None = None,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        self.config = RemoteConfig.from_settings(config)
        self.on_measure = on_measure
        self.count_tokens = count_tokens or (lambda s: max(1, len(s) // 4))
        self.last: Measurement | None = None

    def complete(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> Iterator[str]:
        """Yield the completion so far as remote tokens arrive, cut by the stop rules.

        Raises :class:`RemoteError` on any failure (after the text already yielded)."""
        cfg = self.config
        prompt = prompt_of(ctx, cfg.prompt_chars)
        rules = StopRules(ctx.prefix, ctx.suffix)
        m = Measurement(cfg.endpoint, cfg.model, prompt_tokens_estimate=self.count_tokens(prompt))
        self.last = m
        chunks = stream_completion(cfg, prompt, ctx.max_tokens, stop_sequences(rules), cancelled, m)
        text, shown, visible = "", "", ""
        try:
            for chunk in chunks:
                if cancelled():
                    m.cancelled = True
                    return
                text += chunk.text
                visible, done = rules.cut(text)
                # Trailing whitespace waits for the next token: the stop rules may trim it when the
                # line or block ends, and each snapshot must extend the one before.
                grown = visible if done else visible.rstrip()
                if grown != shown and grown.strip() and grown.startswith(shown):
                    shown = grown
                    yield grown
                if done:
                    return
            if m.cancelled or cancelled():
                m.cancelled = True
                return
            if visible != shown and visible.strip() and visible.startswith(shown):
                yield visible  # the stream ended (length, stop sequence): keep its trailing text
        finally:
            chunks.close()
            if self.on_measure is not None:
                self.on_measure(m)


def remote_engine(settings: dict | RemoteConfig, **kw: Any) -> RemoteEngine:
    """Build the engine from the server's ``remote`` settings; raises RemoteError (``config``)."""
    return RemoteEngine(settings, **kw)
