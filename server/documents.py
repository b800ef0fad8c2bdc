"""Open documents as the client sees them: LSP line breaks, position encodings, incremental edits.

pygls's own store splits lines on form feeds and other Unicode breaks, clamps an insert
past the end of the last line one character short and costs O(document) per edit
(pygls/workspace/text_document.py in github.com/openlawlibrary/pygls; it splits with
``str.splitlines``), so sparkls keeps its own. Only ``\\n``, ``\\r\\n`` and ``\\r``
end a line, as LSP says (specification 3.17, "Text Documents"); line starts are spliced,
not recomputed, on each edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from lsprotocol import types

_EOL = re.compile(r"\r\n|\r|\n")
UTF8, UTF16, UTF32 = types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf16, types.PositionEncodingKind.Utf32


class PositionError(ValueError):
    """A position that lies outside the document (its line does not exist)."""


def _units(ch: str, encoding: str) -> int:
    if encoding == UTF16:
        return 2 if ord(ch) > 0xFFFF else 1
    if encoding == UTF8:
        return len(ch.encode("utf-8", "surrogatepass"))
    return 1


def _line_starts(text: str, start: int = 0, stop: int | None = None) -> list[int]:
    stop = len(text) if stop is None else stop
    return [m.end() for m in _EOL.finditer(text, start, stop)]


@dataclass
class Document:
    """One open text document; offsets are indices into ``text`` (code points)."""

    uri: str
    text: str
    version: int = 0
    language_id: str = ""

    def __post_init__(self) -> None:
        self.starts = np.array([0, *_line_starts(self.text)], np.int64)
        self.has_cr = "\r" in self.text  # may hold a CR line break (then offsets differ in its LF view)

    @property
    def line_count(self) -> int:
        return len(self.starts)

    def line_span(self, line: int) -> tuple[int, int]:
        """``(start, end)`` offsets of a line's text, without its line break."""
        start = int(self.starts[line])
        end = int(self.starts[line + 1]) if line + 1 < len(self.starts) else len(self.text)
        while end > start and self.text[end - 1] in "\r\n":
            end -= 1
        return start, end

    def offset_at(self, position: types.Position, encoding: str = UTF16, clamp_line: bool = False) -> int:
        """Offset of an LSP position. A character past the line's end means the end (LSP says so);
        a line past the end is a :class:`PositionError` unless ``clamp_line``."""
        line = position.line
        if line >= self.line_count or line < 0:
            if not clamp_line:
                raise PositionError(
                    f"line {line} is past the end of {self.uri} ({self.line_count} lines)"
                )
            return len(self.text) if line >= 0 else 0
        start, end = self.line_span(line)
        column = max(0, position.character)
        if encoding == UTF32 or self.text[start:end].isascii():
            return start + min(column, end - start)
        units = 0
        for i in range(start, end):
            if units >= column:
                return i
            units += _units(self.text[i], encoding)
        return end

    def position_at(self, offset: int, encoding: str = UTF16) -> types.Position:
        """The LSP position of an offset."""
        offset = min(max(offset, 0), len(self.text))
        line = int(np.searchsorted(self.starts, offset, "right")) - 1
        start = int(self.starts[line])
        prefix = self.text[start:offset]
        if encoding == UTF32 or prefix.isascii():
            return types.Position(line, len(prefix))
        return types.Position(line, sum(_units(ch, encoding) for ch in prefix))

    def apply(self, change: types.TextDocumentContentChangeEvent, encoding: str = UTF16) -> tuple[int, int, str]:
        """Apply one content change; returns ``(start, end, inserted)`` in old-text offsets."""
        if isinstance(change, types.TextDocumentContentChangePartial):
            start = self.offset_at(change.range.start, encoding, clamp_line=True)
            end = self.offset_at(change.range.end, encoding, clamp_line=True)
            start, end = min(start, end), max(start, end)
        else:
            start, end = 0, len(self.text)
        self.replace(start, end, change.text)
        return start, end, change.text

    def replace(self, start: int, end: int, inserted: str) -> None:
        old = self.text
        self.text = old[:start] + inserted + old[end:]
        self.has_cr = ("\r" in inserted) or (self.has_cr and (start > 0 or end < len(old)))
        # Re-find line starts from one line before the edit (a CR there may now pair with
        # an inserted LF) to the end of the line after it; shift the rest.
        first = max(int(np.searchsorted(self.starts, start, "right")) - 2, 0)
        last = int(np.searchsorted(self.starts, end, "right")) + 1
        lo = int(self.starts[first])
        delta = len(inserted) - (end - start)
        tail = self.starts[last:] + delta
        hi = int(tail[0]) if len(tail) else len(self.text)
        middle = [s for s in _line_starts(self.text, lo, hi) if s < hi or not len(tail)]
        self.starts = np.concatenate((self.starts[: first + 1], np.array(middle, np.int64), tail))


class DocumentStore(dict[str, Document]):
    """Open documents by URI."""
