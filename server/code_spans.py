"""Where a document's strings and comments are, so word-level edits touch code only.

A regular-expression scan per language family (one pass in C, cached per document version by
the caller); not a parser: f-string expressions and nested template literals count as string.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache

_STRINGS = r"\"(?:\\.|[^\"\\\n])*\"?|'(?:\\.|[^'\\\n])*'?"
_PATTERNS = {
    "python": r'[rbuRBUfF]{0,2}(?:"""[\s\S]*?(?:"""|\Z)|\'\'\'[\s\S]*?(?:\'\'\'|\Z))|(?P<c>#[^\r\n]*)|' + _STRINGS,
    "c": r"(?P<c>//[^\r\n]*|/\*[\s\S]*?(?:\*/|\Z))|`[^`]*`?|" + _STRINGS,
    "lua": r"(?P<c>--\[\[[\s\S]*?(?:\]\]|\Z)|--[^\r\n]*)|\[\[[\s\S]*?(?:\]\]|\Z)|" + _STRINGS,
}
_FAMILY = {
    "python": "python", "py": "python",
    "lua": "lua",
}
EXTENSIONS = {".py": "python", ".pyi": "python", ".lua": "lua"}


def family(language_id: str, uri: str = "") -> str:
    """The scanner for a document: its LSP language id, else its file extension; C-like otherwise."""
    if language_id in _FAMILY:
        return _FAMILY[language_id]
    for ext, fam in EXTENSIONS.items():
        if uri.endswith(ext):
            return fam
    return "c"


@lru_cache(maxsize=4)
def _compiled(fam: str) -> re.Pattern:
    return re.compile(_PATTERNS[fam])


@dataclass(frozen=True)
class Spans:
    """Sorted, disjoint ``[start, end)`` spans of strings (kind "s") and comments (kind "c")."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    kinds: str

    def kind_at(self, offset: int) -> str:
        """"code", "string" or "comment" at ``offset``."""
        i = bisect.bisect_right(self.starts, offset) - 1
        if i >= 0 and offset < self.ends[i]:
            return "comment" if self.kinds[i] == "c" else "string"
        return "code"

    def is_code(self, offset: int) -> bool:
        return self.kind_at(offset) == "code"


def scan(text: str, fam: str) -> Spans:
    starts, ends, kinds = [], [], []
    for m in _compiled(fam).finditer(text):
        if m.end() > m.start():
            starts.append(m.start())
            ends.append(m.end())
            kinds.append("c" if m.group("c") else "s")
    return Spans(tuple(starts), tuple(ends), "".join(kinds))
