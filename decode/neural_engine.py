"""Completion from the transformer (SmolLM2 by default): prompt, token healing, drafts, stop rules.

SmolLM2's vocabulary has no fill-in-the-middle tokens, so the prompt is the code before the
cursor (with similar snippets of other open documents as comments above it) and the
suffix is used only to stop and to avoid repeating what follows the cursor.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator, Sequence

import numpy as np

from sparkls.decode.engine import CompletionContext
from sparkls.decode.llama import LlamaModel, SessionPool
from sparkls.decode.ngram_model import NgramCounts
from sparkls.decode.snippets import render_snippets
from sparkls.decode.stops import StopRules

CHARS_PER_TOKEN = 3  # conservative for code, to size the prompt window in characters


class NeuralEngine:
    """Greedy decoding with one KV-cache session per document, kept across keystrokes."""

    name = "neural"

    def __init__(
        self,
        model: LlamaModel,
        prompt_tokens: int = 1024,
        n_ctx: int = 2048,
        max_sessions: int = 4,
        speculative: bool = True,
        draft_tokens: int = 4,
    ) -> None:
        self.model = model
        self.tokenizer = model.tokenizer
        self.prompt_tokens = prompt_tokens
        self.sessions = SessionPool(model, max_sessions=max_sessions, n_ctx=n_ctx)
        self.n_ctx = n_ctx
        self.speculative = speculative
        self.draft_tokens = draft_tokens
        # Per document: where the prompt window starts and the snippet header above it. Both
        # stay put while the user types, so each keystroke finds its prompt in the KV cache.
        self._anchors: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    def prompt(self, ctx: CompletionContext) -> str:
        """The text the model continues: snippet header + the prefix from a stable window start."""
        budget = self.prompt_tokens * CHARS_PER_TOKEN
        with self._lock:
            start, header = self._anchors.get(ctx.path, (-1, ""))
            if start < ctx.prefix_start or start > ctx.cursor or ctx.cursor - start > budget:
                # Re-anchor at a line start, leaving room to type before the next move.
                rel = max(0, len(ctx.prefix) - budget // 2)
                if rel:
                    rel = ctx.prefix.find("\n", rel) + 1 or rel
                start = ctx.prefix_start + rel
                header = render_snippets(ctx.path, list(ctx.snippets))
                self._anchors[ctx.path] = (start, header)
        return header + ctx.prefix[start - ctx.prefix_start :]

    def complete(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> Iterator[str]:
        tok = self.tokenizer
        prompt = self.prompt(ctx)
        ids, healed, allowed = self._heal(prompt)
        room = self.n_ctx - ctx.max_tokens - self.draft_tokens - 2
        ids = ids[-room:]
        if cancelled() or len(ids) == 0:
            return
        session = self.sessions.get(ctx.path)
        session.feed(ids)
        rules = StopRules(ctx.prefix, ctx.suffix)
        draft = self._drafter(ids) if self.speculative else None
        out: list[int] = []
        shown = ""
        for token in session.generate(ctx.max_tokens, draft=draft, cancelled=cancelled, first_allowed=allowed):
            if tok.is_special(token):
                break
            out.append(token)
            raw = tok.decode_bytes(out)
            if len(raw) < len(healed):
                if not healed.startswith(raw):
                    return  # it wandered off what is already typed
                continue
            if not raw.startswith(healed):
                return
            # A character may span tokens: decode everything so far; a trailing partial
            # character is simply not shown yet.
            visible, done = rules.cut(raw[len(healed) :].decode("utf-8", "ignore"))
            if visible != shown and visible.strip():
                shown = visible
                yield visible
            if done:
                return

    def _heal(self, prompt: str) -> tuple[np.ndarray, bytes, np.ndarray | None]:
        """Token healing: ``(prompt ids, text to re-type, allowed first tokens)``.

        The prompt's last token may be half a word, or indentation that in training text was
        split differently ("\n   " + " return", not "\n    " + "return"). So the prompt stops
        before it and the model re-types it, its first token chosen among those that start
        with that text or are a start of it.
        """
        tok = self.tokenizer
        ids = tok.encode(prompt)
        if len(ids) < 2:
            return ids, b"", None
        healed = tok.token_bytes(int(ids[-1]))
        keep = len(prompt.encode("utf-8")) - len(healed)
        head = prompt.encode("utf-8")[:keep].decode("utf-8", "ignore")
        exact = [self._exact(healed[:i]) for i in range(1, len(healed))]
        allowed = np.concatenate((tok.ids_with_prefix(healed), np.array([i for i in exact if i >= 0], np.int32)))
        return tok.encode(head), healed, allowed

    def _exact(self, piece: bytes) -> int:
        """The id of the token whose bytes are exactly ``piece``, or -1."""
        for i in self.tokenizer.ids_with_prefix(piece)[:1]:
            if self.tokenizer.token_bytes(int(i)) == piece:
                return int(i)
        return -1

    def _drafter(self, prompt_ids: np.ndarray) -> Callable[[np.ndarray], Sequence[int]]:
        """Draft tokens from an n-gram model of the prompt's own BPE tokens (longest match)."""
        counts = NgramCounts(max_order=8, size_hint=max(1 << 10, 2 * len(prompt_ids)))
        counts.add(np.asarray(prompt_ids, np.int32))
        k = self.draft_tokens

        def draft(history: np.ndarray) -> list[int]:
            h = list(history[-16:])
            proposed: list[int] = []
            for _ in range(k):
                token, order, _, _ = counts.best(np.asarray(h, np.int32))
                if order < 3:  # a short match drafts noise that only costs verification
                    break
                proposed.append(int(token))
                h.append(token)
            return proposed

        return draft
