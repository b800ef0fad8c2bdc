"""Choosing between the model's completion and a copy of what the document or workspace already has.

On code the model has never seen, file-specific names and literals are where it fails and where the n-gram
core, which has counted this document and workspace, copies the right text: each is right on cases where the
other is wrong. The copy wins when its evidence is strong: every token of it followed a context of at least
``MIN_ORDER`` tokens, and the product of how often each did so (count / total of its context) is at least
``MIN_PROB``. Those two numbers were fitted on 96 cases of the TUNE packages of bench/unseen.py
(bench/calibrate_copy.py: exact matches 24 -> 29, all of it on rest-of-line cases)
and checked on the TEST packages (docs/quality.md).

It does not apply on a blank line (a cursor in nothing but indentation: a block's next line). No block case of
those 96 had a strong copy, and where block cases did (TUNE, 20 of them with llama.cpp beside: 2 copies, both worse
than the model's line, edit similarity 36.4 -> 33.4 %; TEST, 30 cases: -3.3 exact / -3.6 edit similarity), the copy
was a line from elsewhere (a docstring's first line, another branch's statement): with no code before the cursor
on its line, the n-gram contexts that matched are the lines above, which many places share.
There the copy only answers when the model has nothing to show.

A copy that opens the next line after a block header must fit under it (:func:`.stops.fits_after`): deeper than
the header, by no more than the file's indentation step. A line copied from elsewhere keeps that place's
indentation (TUNE: one copied with 20 spaces under an 8-space header, edit similarity 0.79 -> 0.39 against the
model's line); such a copy is never offered, not even when the model has nothing.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

from sparkls.decode.engine import CompletionContext, Engine
from sparkls.decode.stops import fits_after

MIN_ORDER = 6
MIN_PROB = 0.5


def strong(evidence: list[tuple[int, int, int]], min_order: int = MIN_ORDER, min_prob: float = MIN_PROB) -> bool:
    """Whether a copy's per-token ``(order, count, total)`` evidence makes it the better answer."""
    steps = [(o, c, t) for o, c, t in evidence if t]  # a healed first token carries no evidence
    if not steps or min(o for o, _, _ in steps) < min_order:
        return False
    return math.exp(sum(math.log(c / t) for _, c, t in steps)) >= min_prob


def on_blank_line(prefix: str) -> bool:
    """Whether the cursor's line holds nothing but blanks before the cursor (where a strong copy does not apply)."""
    return not prefix[prefix.rfind("\n") + 1 :].strip()


class CopyChoice(Engine):
    """The neural engine, with the n-gram core's copy answering instead where its evidence is strong.

    Everything else (name, warming, sessions, token counts) is the neural engine's.
    """

    def __init__(self, neural: Engine, ngram) -> None:
        self.neural = neural
        self.ngram = ngram

    @property
    def name(self) -> str:
        return self.neural.name

    def warm(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> int:
        return self.neural.warm(ctx, cancelled)

    def release(self, uri: str) -> None:
        self.neural.release(uri)

    def count_tokens(self, text: str) -> int:
        return self.neural.count_tokens(text)

    def describe(self) -> dict[str, object]:
        return self.neural.describe()

    def complete(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> Iterator[str]:
        copy = ""
        if ctx.copy:
            copy, evidence = self.ngram.copy(ctx, cancelled)
            if not fits_after(ctx.prefix, copy, ctx.suffix):
                copy = ""  # a next line indented where the header's body cannot be
            if copy.strip() and strong(evidence) and not on_blank_line(ctx.prefix):
                yield copy
                return
        said = False
        for said in self.neural.complete(ctx, cancelled):
            yield said
        if not said and copy.strip() and not cancelled():
            # The model had nothing to show (its line was the one already below, or it ended the
            # statement): the copy, however weak, is better than silence.
            yield copy
