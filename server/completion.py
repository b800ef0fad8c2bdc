"""What a decode engine sees of a document at a cursor, and where a suggestion's range starts."""

from __future__ import annotations

import re

from sparkls.decode.engine import CompletionContext
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
