"""What a decode engine sees of a document at a cursor, and where a suggestion's range starts."""

from __future__ import annotations

import re

from typing import Iterable
from urllib.parse import unquote, urlparse

from sparkls.decode.engine import CompletionContext
from sparkls.decode.snippets import LazySnippets, similar_snippets
from sparkls.server.documents import Document
from sparkls.server.line_breaks import lf
from sparkls.server.options import ContextOptions
from sparkls.server.workspace import WorkspaceContext, uri_path

PREFIX_CHARS = 64_000  # more than any prompt budget; keeps huge documents cheap
SUFFIX_CHARS = 16_000
CHARS_PER_TOKEN = 3  # to turn the workspace context's token budget into characters (as the neural engine does)
OTHER_DOC_CHARS = 100_000  # of each other open document, searched for snippets
_WORD_BEFORE = re.compile(r"[\w\u00c0-\uffff]+$")


def typed_word(prefix: str) -> str:
    """The part of a word typed before the cursor; a suggestion's range starts where it starts."""
    m = _WORD_BEFORE.search(prefix[-256:])
    return m.group(0) if m else ""


def completion_context(
    doc: Document,
    offset: int,
    max_tokens: int,
    others: Iterable[Document] = (),
    options: ContextOptions | None = None,
    workspace: WorkspaceContext | None = None,
) -> CompletionContext:
    """The prefix and suffix windows around ``offset`` that a decode engine sees, with snippets
    of the ``others`` open documents (and, given a ``workspace``, of its files and the definitions
    of the names the document imports) most like the code before the cursor. Snippets are computed
    only if an engine asks for them, in its worker thread."""
    options = options or ContextOptions()
    lo = max(0, offset - PREFIX_CHARS)
    # Engines, stop rules and the n-gram model see LF line breaks only (a CRLF document must
    # complete as its LF twin); the suggestion is written back with the document's own
    # (line_break), and the cursor is an offset into the document's LF view.
    prefix = lf(doc.text[lo:offset])
    cursor = offset - doc.text.count("\r\n", 0, offset) if doc.has_cr else offset
    allowed = [d for d in others if d.uri != doc.uri and not (workspace and workspace.exclusions.excluded(_path_or_uri(d.uri)))]
    if workspace is not None and options.workspace:
        texts = {d.uri: lf(d.text[:OTHER_DOC_CHARS]) for d in allowed}
        budget = options.workspace_tokens * CHARS_PER_TOKEN
        snippets = LazySnippets(lambda: workspace.snippets(doc.uri, prefix, texts, budget))
    else:
        sources = [(_name(d.uri), lf(d.text[:OTHER_DOC_CHARS])) for d in allowed]
        snippets = LazySnippets(lambda: similar_snippets(prefix, sources))
    return CompletionContext(
        prefix=prefix,
        suffix=lf(doc.text[offset : offset + SUFFIX_CHARS]),
        path=doc.uri,
        snippets=snippets,
        prefix_start=cursor - len(prefix),
        max_tokens=max_tokens,
        next_line=options.next_line,
        copy=options.copy,
        window=options.window,
    )


def _path_or_uri(uri: str):
    return uri_path(uri) or uri


def _name(uri: str) -> str:
    """A short, readable name for a document in a prompt header."""
    return unquote(urlparse(uri).path).rsplit("/", 1)[-1] or uri
