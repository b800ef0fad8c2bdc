"""Context from other open documents: the windows most similar to the code around the cursor.

As Copilot does (described in Parth Thakkar's "Copilot Internals",
thakkarparth007.github.io/copilot-explorer/posts/copilot-internals): slide a window of lines over each other
document, score it by Jaccard similarity of identifier sets with the lines before the
cursor, and keep the best few, each headed by its file's path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Iterable

from sparkls.decode.engine import Snippet
from sparkls.decode.workspace_context import similar_chunks, windows


def similar_snippets(
    prefix: str, documents: Iterable[tuple[str, str]], limit: int = 2, min_score: float = 0.1
) -> list[Snippet]:
    """The ``limit`` windows of ``documents`` ((path, text) pairs) most like the end of ``prefix``."""
    files = [(path, windows(text)) for path, text in documents]
    return [Snippet(path, chunk) for _, path, chunk in similar_chunks(prefix, files, limit, min_score)]


def comment_prefix(path: str) -> str:
    """The line-comment marker of the file's language (for snippet headers in the prompt)."""
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if ext in {"py", "pyi", "sh", "bash", "rb", "r", "toml", "yaml", "yml", "pl", "jl", "ex", "exs"}:
        return "#"
    if ext in {"lua", "sql", "hs"}:
        return "--"
    return "//"


def render_snippets(path: str, snippets: list[Snippet]) -> str:
    """Snippets as comments above the file, the way code models saw related files in training."""
    mark = comment_prefix(path)
    parts = []
    for s in snippets:
        body = "\n".join(f"{mark} {line}" if line else mark for line in s.text.splitlines())
        parts.append(f"{mark} Compare this snippet from {s.path}:\n{body}\n")
    return "".join(parts)


class LazySnippets(Sequence):
    """Snippets computed on first use: only an engine that puts them in its prompt pays for them."""

    def __init__(self, compute: Callable[[], list[Snippet]]) -> None:
        self._compute = compute
        self._items: list[Snippet] | None = None

    def _get(self) -> list[Snippet]:
        if self._items is None:
            self._items = self._compute()
        return self._items

    def __getitem__(self, i):
        return self._get()[i]

    def __len__(self) -> int:
        return len(self._get())
