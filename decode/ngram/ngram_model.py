"""The n-gram model of a workspace: global counts over every file plus a cache per open document.

Open documents replace their files' on-disk text in the global counts and also keep a
small table of their own (the cache model, which has the final say when it knows at
least as long a context). Edits re-lex only the lines they touch and recount only the
n-grams whose targets moved, so a keystroke costs O(line), not O(document).
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from sparkls.decode.ngram import ngram
from sparkls.decode.ngram.lexer import CodeLexer

MAX_ORDER = 8
ADD_BATCH = 1024  # targets counted per table reservation
_NEWLINE = re.compile(r"\r\n|\r|\n")


class NgramCounts:
    """A growable n-gram table. Not thread-safe: :class:`CodeModel` serialises access."""

    def __init__(self, max_order: int = MAX_ORDER, size_hint: int = 1 << 12) -> None:
        self.max_order = max_order
        self.tables = ngram.new_tables(size_hint, size_hint * 2)

    def add(self, tokens: np.ndarray, start: int = 0, stop: int | None = None) -> None:
        """Count the n-grams whose target lies in ``tokens[start:stop]``."""
        stop = len(tokens) if stop is None else min(stop, len(tokens))
        # In batches: each reserves room for the worst case (every n-gram new) of its own targets only, so the
        # tables grow with what is really new (~5 contexts a token in code, not max_order): half the memory.
        for lo in range(start, stop, ADD_BATCH):
            hi = min(lo + ADD_BATCH, stop)
            self.tables = ngram.reserve(self.tables, (hi - lo) * self.max_order)
            ngram.add_span(self.tables, tokens, lo, hi, self.max_order, 1)

    def remove(self, tokens: np.ndarray, start: int = 0, stop: int | None = None) -> None:
        """Uncount what :meth:`add` counted for the same span of the same tokens."""
        stop = len(tokens) if stop is None else min(stop, len(tokens))
        if stop > start:
            ngram.add_span(self.tables, tokens, start, stop, self.max_order, -1)

    def best(self, history: np.ndarray) -> tuple[int, int, int, int]:
        """``(token, order, count, total)`` after ``history`` by longest match."""
        return ngram.longest_match(self.tables, history, len(history), self.max_order)

    def candidates(self, history: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
        """Every token seen after the last ``order`` tokens of ``history`` and its count."""
        return ngram.next_tokens(self.tables, history, len(history), order)

    @property
    def contexts(self) -> int:
        return int(self.tables.meta[0])


@dataclass
class _Doc:
    text: str
    tokens: np.ndarray  # (N,) int32 lexer ids
    starts: np.ndarray  # (N,) int64 offset of each token in ``text``
    cache: NgramCounts = field(default_factory=lambda: NgramCounts(size_hint=1 << 10))


class CodeModel:
    """Counts for a workspace's files and open documents, safe to use from several threads."""

    def __init__(self, max_order: int = MAX_ORDER, max_document_chars: int = 2_000_000) -> None:
        self.lexer = CodeLexer()
        self.global_counts = NgramCounts(max_order, 1 << 16)
        self.max_document_chars = max_document_chars
        self.files: dict[str, np.ndarray] = {}  # workspace files on disk, by key
        self.docs: dict[str, _Doc] = {}  # open documents, by key
        self.lock = threading.RLock()

    # --- workspace files -------------------------------------------------------------

    def add_file(self, key: str, text: str) -> int:
        """Count a workspace file (unless it is open); returns its token count."""
        tokens = self.lexer.encode(text)
        with self.lock:
            if key in self.docs:
                return len(tokens)
            self._drop_file(key)
            self.files[key] = tokens
            self.global_counts.add(tokens)
        return len(tokens)

    def _drop_file(self, key: str) -> None:
        old = self.files.pop(key, None)
        if old is not None:
            self.global_counts.remove(old)

    # --- open documents --------------------------------------------------------------

    def open_document(self, key: str, text: str) -> None:
        """Count an open document in place of its file's text on disk."""
        with self.lock:
            self.close_document(key, restore_file=False)
            self._drop_file(key)
            if len(text) > self.max_document_chars:
                return  # too large to count; completions use a window around the cursor
            doc = self._lex(text)
            self.docs[key] = doc
            self.global_counts.add(doc.tokens)
            doc.cache.add(doc.tokens)

    def close_document(self, key: str, restore_file: bool = True, disk_text: str | None = None) -> None:
        with self.lock:
            doc = self.docs.pop(key, None)
            if doc is not None:
                self.global_counts.remove(doc.tokens)
            if restore_file and disk_text is not None:
                self.add_file(key, disk_text)

    def edit_document(self, key: str, start: int, end: int, inserted: str) -> None:
        """Apply ``text[start:end] = inserted`` (code point offsets) to an open document's counts."""
        with self.lock:
            doc = self.docs.get(key)
            if doc is None:
                return
            new_text = doc.text[:start] + inserted + doc.text[end:]
            if len(new_text) > self.max_document_chars:
                self.close_document(key, restore_file=False)
                return
            # Token boundaries always fall right before a line break, so re-lex whole lines.
            lo = _line_break_before(doc.text, start)
            # Strictly after the edit: an inserted "\r" would pair with a "\n" right at ``end``.
            hi_old = _line_break_after(doc.text, end + 1) if end < len(doc.text) else end
            hi_new = hi_old + len(inserted) - (end - start)
            i0 = int(np.searchsorted(doc.starts, lo, "left"))
            i1 = int(np.searchsorted(doc.starts, hi_old, "left"))
            middle = self.lexer.encode(new_text[lo:hi_new])
            middle_starts = lo + _offsets(self.lexer, new_text[lo:hi_new])
            tokens = np.concatenate((doc.tokens[:i0], middle, doc.tokens[i1:]))
            starts = np.concatenate((doc.starts[:i0], middle_starts, doc.starts[i1:] + (hi_new - hi_old)))
            # Targets from i0 to max_order tokens past the edit see a different context.
            reach = self.global_counts.max_order
            for counts in (self.global_counts, doc.cache):
                counts.remove(doc.tokens, i0, i1 + reach)
                counts.add(tokens, i0, i0 + len(middle) + reach)
            doc.text, doc.tokens, doc.starts = new_text, tokens, starts

    def _lex(self, text: str) -> _Doc:
        return _Doc(text, self.lexer.encode(text), _offsets(self.lexer, text))

    # --- queries ---------------------------------------------------------------------

    @contextmanager
    def masked(self, key: str, cursor: int, line_end: int) -> Iterator[NgramCounts | None]:
        """Hold the lock with the n-grams at the cursor's own line uncounted; yields the doc's cache.

        Without this the document would predict itself: the longest context before the
        cursor is always the one right here, followed by the text after the cursor.
        """
        with self.lock:
            doc = self.docs.get(key)
            if doc is None:
                yield None
                return
            i0 = max(0, int(np.searchsorted(doc.starts, cursor, "right")) - 1)
            i1 = int(np.searchsorted(doc.starts, line_end, "right"))
            for counts in (self.global_counts, doc.cache):
                counts.remove(doc.tokens, i0, i1)
            try:
                yield doc.cache
            finally:
                for counts in (self.global_counts, doc.cache):
                    counts.add(doc.tokens, i0, i1)


def _offsets(lexer: CodeLexer, text: str) -> np.ndarray:
    lengths = np.fromiter((len(p) for p in lexer.split(text)), np.int64)
    return np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(lengths) else lengths


def _line_break_before(text: str, pos: int) -> int:
    """Offset of the line break that ends the line before ``pos`` (a token boundary), or 0."""
    i = max(text.rfind("\n", 0, pos), text.rfind("\r", 0, pos))
    if i <= 0:
        return 0
    return i - 1 if text[i] == "\n" and text[i - 1] == "\r" else i


def _line_break_after(text: str, pos: int) -> int:
    """Offset of the first line break at or after ``pos`` (a token boundary), or the end."""
    m = _NEWLINE.search(text, pos)
    if m and m.start() == pos and pos > 0 and text[pos] == "\n" and text[pos - 1] == "\r":
        m = _NEWLINE.search(text, pos + 1)  # inside a CRLF: its token began before pos
    return m.start() if m else len(text)
