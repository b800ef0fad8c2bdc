"""Greedy completion from the n-gram model: token healing, cache-over-global backoff, stop rules."""

from __future__ import annotations

import re
from typing import Callable, Iterator

import numpy as np

from sparkls.decode.engine import CompletionContext, Engine
from sparkls.decode.ngram.ngram import EMPTY
from sparkls.decode.ngram.ngram_model import CodeModel, NgramCounts
from sparkls.decode.stops import StopRules

# The n-gram context reaches back MAX_ORDER tokens; this many characters always hold them.
_HISTORY_CHARS = 4096
_PARTIAL_WORD = re.compile(r"[A-Za-z_\u00c0-\uffff][\w\u00c0-\uffff]*$|\d+$")
MIN_ORDER = 2  # a single token of context predicts noise; say nothing instead


class NgramEngine(Engine):
    """Completes code from counts of what followed the same tokens elsewhere in the workspace."""

    name = "ngram"

    def __init__(self, model: CodeModel | None = None) -> None:
        self.model = model or CodeModel()

    def complete(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> Iterator[str]:
        for visible, _ in self.steps(ctx, cancelled):
            yield visible

    def count_tokens(self, text: str) -> int:
        return len(self.model.lexer.split(text))

    def copy(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> tuple[str, list[tuple[int, int, int]]]:
        """The whole completion and, for each token of it, ``(order, count, total)``: how long a context
        matched and how often what followed it was this token (the evidence behind the copy)."""
        text, evidence = "", []
        for text, evidence in self.steps(ctx, cancelled):
            pass
        return text, evidence

    def steps(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> Iterator[tuple[str, list[tuple[int, int, int]]]]:
        """Each time the visible completion grows: it and the evidence of every token so far."""
        lexer = self.model.lexer
        partial_match = _PARTIAL_WORD.search(ctx.prefix[-64:])
        partial = partial_match.group(0) if partial_match else ""
        head = ctx.prefix[: len(ctx.prefix) - len(partial)]
        history = list(lexer.encode(head[-_HISTORY_CHARS:]))
        rules = StopRules(ctx.prefix, ctx.suffix, open_next_line=ctx.next_line)
        cursor = ctx.cursor
        line_end = cursor + len(ctx.suffix.split("\n", 1)[0])
        evidence: list[tuple[int, int, int]] = []
        with self.model.masked(ctx.path, cursor, line_end) as cache:
            text, shown = "", ""
            for step in range(ctx.max_tokens):
                if cancelled():
                    return
                h = np.asarray(history, np.int32)
                if step == 0 and partial:
                    token = self._heal(h, partial, cache)
                    if token == EMPTY:
                        return
                    piece = lexer.piece(token)[len(partial) :]
                    evidence.append((0, 0, 0))  # healing: the typed word's likeliest completion
                else:
                    token, order, count, total = self._predict(h, cache)
                    if token == EMPTY:
                        break
                    piece = lexer.piece(token)
                    evidence.append((order, count, total))
                history.append(token)
                text += piece
                visible, done = rules.cut(text)
                if visible != shown and visible.strip():
                    shown = visible
                    yield visible, evidence
                if done:
                    return

    def _predict(self, history: np.ndarray, cache: NgramCounts | None) -> tuple[int, int, int, int]:
        """``(token, order, count, total)`` of the next token (``token`` EMPTY when nothing is known)."""
        found = self.model.global_counts.best(history)
        if cache is not None:
            mine = cache.best(history)
            # The document's own habits win when they know at least as much context.
            if mine[1] >= max(found[1], MIN_ORDER):
                return mine
        return found if found[1] >= MIN_ORDER else (EMPTY, 0, 0, 0)

    def _heal(self, history: np.ndarray, partial: str, cache: NgramCounts | None) -> int:
        """The likeliest token that starts with the word typed so far (longest context first)."""
        lexer = self.model.lexer
        tables = [c for c in (cache, self.model.global_counts) if c is not None]
        for order in range(min(len(history), self.model.global_counts.max_order), 0, -1):
            best, best_count = EMPTY, 0
            for counts in tables:
                tokens, freq = counts.candidates(history, order)
                for token, n in zip(tokens.tolist(), freq.tolist()):
                    piece = lexer.piece(token)
                    if n > best_count and piece.startswith(partial):  # an exact word ends the healing
                        best, best_count = token, n
            if best != EMPTY:
                return best
        return EMPTY
