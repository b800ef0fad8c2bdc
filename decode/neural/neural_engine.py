"""Completion from the transformer (SmolLM2 by default): prompt, token healing, drafts, stop rules.

SmolLM2's vocabulary has no fill-in-the-middle tokens, so the prompt is the code before the
cursor (with similar snippets of other open documents as comments above it) and the
suffix is used only to stop and to avoid repeating what follows the cursor.

At the end of a block header (``...:``), a body the stop rules withhold (its first line not indented under
the header, or the line already below) is not the last word: the model is asked once more with the body's
first indentation typed for it (the header's plus the file's step), which is where the body must start.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Callable, Iterator

import numpy as np

from sparkls.decode.engine import CompletionContext, Engine, Scored
from sparkls.decode.neural.llama import LlamaModel, SessionPool
from sparkls.decode.snippets import render_snippets
from sparkls.decode.neural.speculation import MAX_DRAFT, Draft, match_draft
from sparkls.decode.stops import StopRules, header_body_indent

CHARS_PER_TOKEN = 3  # conservative for code, to size the prompt window in characters
FIRST_ROOM = 0.125  # a document's first window: nearly all of it context (room to type is cheap to make later)
MOVE_ROOM = 0.25  # a moved window leaves this much of itself for typing before it must move again
LOCK_POLL_S = 0.02  # how often a request waiting for its document's session checks for cancellation


class NeuralEngine(Engine):
    """Greedy decoding with one KV-cache session per document, kept across keystrokes."""

    name = "neural"

    def __init__(
        self,
        model: LlamaModel,
        prompt_tokens: int = 1024,
        n_ctx: int = 8192,
        max_sessions: int = 4,
        speculative: bool = True,
        draft_tokens: int = MAX_DRAFT,
    ) -> None:
        self.model = model
        self.tokenizer = model.tokenizer
        self.prompt_tokens = prompt_tokens
        n_ctx = min(n_ctx, getattr(getattr(model, "config", None), "max_ctx", n_ctx))  # pages touched only as they fill
        self.sessions = SessionPool(model, max_sessions=max_sessions, n_ctx=n_ctx)
        self.n_ctx = n_ctx
        self.speculative = speculative
        self.draft_tokens = draft_tokens
        # Per document: where the prompt window starts, the snippet header above it and whether
        # that header is provisional (set by warm()). Both stay put while the user types, so
        # each keystroke finds its prompt in the KV cache.
        self._anchors: dict[str, tuple[int, str, bool]] = {}
        self._lock = threading.Lock()

    def prompt(self, ctx: CompletionContext, room: float = MOVE_ROOM, warming: bool = False) -> str:
        """The text the model continues: snippet header + the prefix from a stable window start.

        When the window must move, it starts so that ``room`` (a fraction of the window) is
        left for typing after the cursor before it has to move again. A window set while
        ``warming`` is provisional: the first completion re-picks the snippets for its own
        cursor and drops the window if it would see less code than a fresh one (the cache is
        reused only where both agree), so warming never costs a completion context.
        """
        budget = self._window(ctx) * CHARS_PER_TOKEN
        with self._lock:
            start, header, provisional = self._anchors.get(ctx.path, (-1, "", False))
            first = start < 0 or (provisional and not warming)  # a warmed window is not a completion's yet
            fresh = self._window_start(ctx, min(room, FIRST_ROOM) if first else room)
            jumped = start < ctx.prefix_start or start > ctx.cursor or ctx.cursor - start > 2 * budget
            if jumped or ctx.cursor - start > budget or (provisional and not warming and start > fresh):
                # Re-anchor (at a line start, leaving room to type before the next move); a
                # warmed window that gives the cursor less context than a fresh one is dropped.
                # Typing past the window's end keeps the header: the session then moves its cached
                # tokens down instead of computing them again (Session.feed, .kv_shift).
                if jumped or provisional:
                    header = self._header(ctx)
                start = fresh
            elif provisional and not warming:
                header = self._header(ctx)
            self._anchors[ctx.path] = (start, header, warming)
        return header + ctx.prefix[start - ctx.prefix_start :]

    def _header(self, ctx: CompletionContext) -> str:
        return render_snippets(ctx.path, list(ctx.snippets))

    def _window_start(self, ctx: CompletionContext, room: float) -> int:
        """Where a new prompt window starts: a line start, ``room`` of the window left after the cursor."""
        rel = max(0, len(ctx.prefix) - int(self._window(ctx) * CHARS_PER_TOKEN * (1 - room)))
        if rel:
            rel = ctx.prefix.find("\n", rel) + 1 or rel
        return ctx.prefix_start + rel

    def _window(self, ctx: CompletionContext) -> int:
        return ctx.window or self.prompt_tokens

    def prompt_ids(self, ctx: CompletionContext, room: float = MOVE_ROOM, warming: bool = False) -> tuple[np.ndarray, bytes]:
        """Token ids of :meth:`prompt` after token healing, within the session's room, and the text to re-type."""
        ids, healed = self._heal(self.prompt(ctx, room, warming))
        return ids[-(self.n_ctx - ctx.max_tokens - self.draft_tokens - 2) :], healed

    def complete(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> Iterator[str]:
        said = False
        for said in self._complete(ctx, cancelled):
            yield said
        body = header_body_indent(ctx.prefix, ctx.suffix) if ctx.next_line and not said else None
        if body is not None and not cancelled():
            yield from self._complete_body(ctx, body, cancelled)

    def _complete_body(self, ctx: CompletionContext, body: str, cancelled: Callable[[], bool]) -> Iterator[str]:
        """After a header whose body the stop rules withheld: the model's block with its first line's
        indentation ``body`` forced (typed into the prompt), shown as ``"\\n" + body + block``. The
        session keeps the header's prompt, so only the typed line break and indentation are new."""
        forced = dataclasses.replace(ctx, prefix=ctx.prefix + "\n" + body)
        below = next((ln.strip() for ln in ctx.suffix.split("\n")[1:] if ln.strip()), "")
        last, held = "", ""
        for text in self._complete(forced, cancelled):
            first = text.split("\n", 1)[0]
            if first[:1] in (" ", "\t"):
                # Healing let the indentation grow deeper than forced: its first line, at the forced depth.
                text = first = first.lstrip(" \t")
            if below and below.startswith(first.strip()):
                # Not shown while it may still be the line already below (never repeated).
                if "\n" in text and first.strip() == below:
                    return
                held = text
                continue
            held = ""
            if text != last and text.strip():
                last = text
                yield Scored("\n" + body + text, getattr(text, "logprobs", ()), getattr(text, "margins", ()))
        if held.strip() and held.split("\n", 1)[0].strip() != below and not cancelled():
            yield Scored("\n" + body + held, getattr(held, "logprobs", ()), getattr(held, "margins", ()))

    def _complete(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> Iterator[str]:
        ids, healed = self.prompt_ids(ctx)
        if cancelled() or len(ids) == 0:
            return
        session = self.sessions.get(ctx.path)
        while not session.lock.acquire(timeout=LOCK_POLL_S):  # a superseded request is finishing its chunk
            if cancelled():
                return
        try:
            yield from self._complete_in(session, ctx, ids, healed, cancelled)
        finally:
            session.lock.release()

    def warm(self, ctx: CompletionContext, cancelled: Callable[[], bool]) -> int:
        """Prefill the document's session with the prompt a completion at ``ctx`` would use.

        With the cursor at a document's end, the window covers as much of the document as it
        can (an eighth of it left for typing), so a later completion anywhere in it computes
        only its last tokens: the whole of a file up to ~2.7k characters, else its last part.
        Skipped when a request holds the session; stops between chunks when ``cancelled()``.
        Returns the tokens the session holds afterwards.
        """
        ids, _ = self.prompt_ids(ctx, room=0.125, warming=True)
        session = self.sessions.get(ctx.path)
        if len(ids) == 0 or cancelled() or not session.lock.acquire(blocking=False):
            return 0
        try:
            session.feed(ids, cancelled)
            return session.n_cached
        finally:
            session.lock.release()

    def release(self, uri: str) -> None:
        """Drop the document's session now: its KV cache takes 46 KB per cached token (46 MB for
        a 1k-token prompt), and left in the pool it would stay until other documents evicted it."""
        self.sessions.drop(uri)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def describe(self) -> dict[str, object]:
        return {"kernelPath": self.model.kernel_path}

    def _complete_in(self, session, ctx: CompletionContext, ids: np.ndarray, healed: bytes, cancelled: Callable[[], bool]) -> Iterator[str]:
        """:meth:`complete` once the document's session is ours."""
        tok = self.tokenizer
        if session.feed(ids, cancelled) is None:
            return
        rules = StopRules(ctx.prefix, ctx.suffix, path=ctx.path, open_next_line=ctx.next_line)
        # Drafts: the prompt's and the output's own tokens, looked up by longest context match.
        draft = (lambda history: match_draft(history, self.draft_tokens)) if self.speculative else None
        out: list[int] = []
        logprobs: list[float] = []
        margins: list[float] = []
        shown = ""
        for token in self._generate(session, healed, ctx.max_tokens, draft, cancelled):
            if tok.is_special(token):
                break
            out.append(token)
            logprobs.append(getattr(session, "last_logprob", None) or 0.0)
            margins.append(getattr(session, "last_margin", None) or 0.0)
            raw = tok.decode_bytes(out)
            if len(raw) <= len(healed):
                continue  # still re-typing what is already typed
            # A character may span tokens: decode everything so far; a trailing partial
            # character is simply not shown yet.
            visible, done = rules.cut(raw[len(healed) :].decode("utf-8", "ignore"))
            if not done:
                # Trailing blanks wait for what follows them: the rules drop them where a line
                # or block ends, and every snapshot must extend the one before.
                visible = visible.rstrip()
            if visible != shown and visible.strip():
                shown = visible
                yield Scored(visible, logprobs, margins)
            if done:
                return

    def _generate(
        self,
        session,
        healed: bytes,
        max_new: int,
        draft: Callable[[np.ndarray], Draft] | None,
        cancelled: Callable[[], bool],
    ) -> Iterator[int]:
        """Greedy tokens after the cached prompt, the first of them re-typing ``healed``.

        Healing may take several tokens ("\n   " then " return" for "\n    "): as long as the
        tokens so far are only a start of ``healed``, the next one is constrained too, so
        the model can never wander off the text already typed.
        """
        rest = healed
        n = 0
        while rest and n < max_new and not cancelled():
            pick = session.generate(1, first_allowed=self._allowed(rest))
            token = next(pick)  # from the logits already computed: no forward pass
            pick.close()
            n += 1
            yield token
            session.step(token)  # the next token is decided after this one
            piece = self.tokenizer.token_bytes(token)
            rest = rest[len(piece) :] if len(piece) < len(rest) else b""
        if n < max_new and not cancelled():
            yield from session.generate(max_new - n, draft=draft, cancelled=cancelled)

    def _heal(self, prompt: str) -> tuple[np.ndarray, bytes]:
        """Token healing: ``(prompt ids, text to re-type)``.

        The prompt's last token may be half a word, or indentation that in training text was
        split differently ("\n   " + " return", not "\n    " + "return"). So the prompt stops
        before it and the model re-types it (see :meth:`_generate`).
        """
        tok = self.tokenizer
        ids = tok.encode(prompt)
        if len(ids) < 2:
            return ids, b""
        healed = tok.token_bytes(int(ids[-1]))
        keep = len(prompt.encode("utf-8")) - len(healed)
        head = prompt.encode("utf-8")[:keep].decode("utf-8", "ignore")
        return tok.encode(head), healed

    def _allowed(self, rest: bytes) -> np.ndarray:
        """Tokens that may come next while ``rest`` is still to be re-typed.

        Those that start with all of it, and those that are exactly a start of it ending
        before whitespace: the BPE pre-tokenizer gives the last blank of an indentation to
        the word after it ("\n   " + " return"), but never splits a word or a run of
        punctuation, so a split there ("p" + "rotocol") is text the model never saw and
        leads it astray.
        """
        exact = [self._exact(rest[:i]) for i in range(1, len(rest)) if rest[i : i + 1] in b" \t\r\n"]
        starts = self.tokenizer.ids_with_prefix(rest)
        return np.concatenate((starts, np.array([i for i in exact if i >= 0], np.int32)))

    def _exact(self, piece: bytes) -> int:
        """The id of the token whose bytes are exactly ``piece``, or -1."""
        for i in self.tokenizer.ids_with_prefix(piece)[:1]:
            if self.tokenizer.token_bytes(int(i)) == piece:
                return int(i)
        return -1
