"""What a decode engine sees of a document at a cursor, and where a suggestion's range starts."""

from __future__ import annotations

import re

from typing import Iterable
from urllib.parse import unquote, urlparse

from sparkls.decode.engine import CompletionContext
from sparkls.decode.snippets import LazySnippets, similar_snippets
from sparkls.server.documents import Document

PREFIX_CHARS = 64_000  # more than any prompt budget; keeps huge documents cheap
SUFFIX_CHARS = 16_000
OTHER_DOC_CHARS = 100_000  # of each other open document, searched for snippets
_WORD_BEFORE = re.compile(r"[\w\u00c0-\uffff]+$")


def typed_word(prefix: str) -> str:
    """The part of a word typed before the cursor; a suggestion's range starts where it starts."""
    m = _WORD_BEFORE.search(prefix[-256:])
    return m.group(0) if m else ""


def completion_context(
    doc: Document, offset: int, max_tokens: int, others: Iterable[Document] = ()
) -> CompletionContext:
    """The prefix and suffix windows around ``offset`` that a decode engine sees, with snippets
    of the ``others`` open documents most like the code before the cursor."""
    lo = max(0, offset - PREFIX_CHARS)
    prefix = doc.text[lo:offset]
    sources = [(_name(d.uri), d.text[:OTHER_DOC_CHARS]) for d in others if d.uri != doc.uri]
    return CompletionContext(
        prefix=prefix,
        suffix=doc.text[offset : offset + SUFFIX_CHARS],
        path=doc.uri,
        snippets=LazySnippets(lambda: similar_snippets(prefix, sources)),
        prefix_start=lo,
        max_tokens=max_tokens,
    )


def _name(uri: str) -> str:
    """A short, readable name for a document in a prompt header."""
    return unquote(urlparse(uri).path).rsplit("/", 1)[-1] or uri
