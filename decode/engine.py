"""The contract between the server and a decode core.

The server builds a :class:`CompletionContext` from the document, hands it to the
active :class:`Engine` and streams what the engine yields. An engine yields the
*whole* completion text so far each time it grows (never a delta), already cut by the
:class:`~sparkls.decode.stops.StopRules` it was given, and checks ``cancelled()``
between tokens so stale work stops within one token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from concurrent.futures import Executor
from typing import Callable, Iterator, Sequence


@dataclass(frozen=True)
class Snippet:
    """Text from another document offered as context, headed by its path."""

    path: str
    text: str


@dataclass(frozen=True)
class CompletionContext:
    """Everything a decode core may use to complete at one cursor."""

    prefix: str  # document text before the cursor
    suffix: str  # document text after the cursor
    path: str = ""  # file path (or URI) of the document, for prompt headers
    prefix_start: int = 0  # offset of prefix[0] in the document (the prefix may be a window)
    snippets: Sequence[Snippet] = field(default_factory=tuple)
    max_tokens: int = 64
    window: int | None = None  # prompt tokens of the document before the cursor (None: the engine's own)
    copy: bool = True  # a copy with strong n-gram evidence may answer instead of the model (.copy_choice)
    next_line: bool = True  # at a line's end, the completion may open the next line (StopRules.open_next_line)

    @property
    def cursor(self) -> int:
        """The cursor's offset in the document."""
        return self.prefix_start + len(self.prefix)


class Scored(str):
    """A completion snapshot with the model's log-probability of each token decoded so far (the healed
    prefix included), and each token's margin (log-prob gap to the best other token); engines that know
    them may yield these instead of plain strings."""

    logprobs: tuple[float, ...]
    margins: tuple[float, ...]

    def __new__(cls, text: str, logprobs=(), margins=()) -> "Scored":
        self = super().__new__(cls, text)
        self.logprobs = tuple(logprobs)
        self.margins = tuple(margins)
        return self


class Engine:
    """A decode core: the n-gram model, the neural model, or a remote engine.

    Subclasses implement :meth:`complete`. The other abilities are optional: the server calls
    them on every engine, and these defaults mean "nothing to do here".
    """

    name: str = "engine"
    # Threads this engine's streams run in; None: the server's decode pool (CPU-bound cores).
    # An engine that waits on the network brings its own, so it cannot hold the pool's workers.
    executor: Executor | None = None

    def complete(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> Iterator[str]:
        """Yield the completion text after the cursor as it grows (each value extends the last),
        as ``str`` or :class:`Scored`.

        The first value completes the word being typed, if any: the text starts right at
        the cursor. Stops when the stop rules say so, at ``ctx.max_tokens`` tokens, or as
        soon as ``cancelled()`` returns True.
        """
        raise NotImplementedError

    def warm(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> int:
        """Prepare for a completion at ``ctx`` before it is asked for (the neural core prefills its
        KV cache); stops when ``cancelled()``. Returns the tokens now cached (0: nothing to do)."""
        return 0

    def release(self, uri: str) -> None:
        """Free what the engine keeps for a document that was closed."""

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in this engine's vocabulary (here an estimate: 4 characters a token)."""
        return len(text) // 4

    def describe(self) -> dict[str, object]:
        """Facts about the engine for ``sparkls/status`` (e.g. ``kernelPath``: the neural core's kernels)."""
        return {}
