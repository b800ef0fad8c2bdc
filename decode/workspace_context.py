"""What the workspace knows about the code at the cursor: definitions of imported names, similar chunks.

Pure text functions (no file access; the server's :mod:`sparkls.server.workspace` reads the files):

- :func:`imports` reads the document's ``from m import a, b`` / ``import m as x`` lines (a regex over lines, so a
  half-typed document still parses) into the module and the names it uses from it;
- :func:`definitions` reads a Python module's top-level functions and classes with :mod:`ast` (parsing runs no
  code): the whole of a small one, else its signature and the first line of its docstring;
- :func:`similar_chunks` scores 20-line windows of other files by Jaccard similarity of identifier sets with the
  lines before the cursor (as Copilot's similar-files snippets do).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass

_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)?|[^\n#]+)", re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w.]+)(?:[ \t]+as[ \t]+(\w+))?[ \t]*$", re.M)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
SMALL_DEF_LINES = 8  # a function or class this short goes in whole
WINDOW_LINES = 20
STEP_LINES = 10


@dataclass(frozen=True)
class Import:
    module: str  # dotted, with leading dots for a relative import
    names: tuple[str, ...]  # names used from it (the imported names, or `alias.name` attributes)


def imports(text: str) -> list[Import]:
    """The document's imports, in order: ``from m import a, b as c`` gives (m, (a, b)); ``import m.n as x``
    gives (m.n, the attributes ``x.attr`` the document uses)."""
    found = []
    for m in _FROM.finditer(text):
        body = m.group(2).strip().strip("()")
        names = tuple(part.split(" as ")[0].strip() for part in body.replace("\n", " ").split(","))
        names = tuple(n for n in names if n.isidentifier())
        if names:
            found.append(Import(m.group(1), names))
    for m in _IMPORT.finditer(text):
        alias = m.group(2) or m.group(1)
        used = dict.fromkeys(re.findall(rf"\b{re.escape(alias)}\.(\w+)", text))
        if used:
            found.append(Import(m.group(1), tuple(used)))
    return found


def definitions(source: str) -> dict[str, str]:
    """Top-level functions and classes of a Python module by name: the whole source of a small one, else its
    signature line(s) and the first line of its docstring, indented as in the file. {} if it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    lines = source.split("\n")
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = _summary(node, lines)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.end_lineno - node.lineno < 3:
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    out[target.id] = "\n".join(lines[node.lineno - 1 : node.end_lineno])
    return out


def _summary(node, lines: list[str]) -> str:
    first = min([d.lineno for d in node.decorator_list] + [node.lineno])
    if node.end_lineno - first + 1 <= SMALL_DEF_LINES:
        return "\n".join(lines[first - 1 : node.end_lineno])
    body_start = node.body[0].lineno
    head = lines[first - 1 : body_start - 1] or [lines[node.lineno - 1]]
    doc = ast.get_docstring(node, clean=True)
    indent = re.match(r"[ \t]*", lines[body_start - 1]).group(0) or "    "
    parts = list(head)
    if doc:
        parts.append(f'{indent}"""{doc.strip().splitlines()[0]}"""')
    if isinstance(node, ast.ClassDef):  # the constructor's signature says how to build one
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == "__init__":
                parts.extend(lines[item.lineno - 1 : item.body[0].lineno - 1] or [lines[item.lineno - 1]])
    parts.append(f"{indent}...")
    return "\n".join(parts)


def words(text: str) -> set[str]:
    return set(_WORD.findall(text))


def windows(text: str) -> list[tuple[str, set[str]]]:
    """20-line windows every 10 lines, with their identifier sets (computed once per file version)."""
    lines = text.split("\n")
    out = []
    for start in range(0, max(1, len(lines) - WINDOW_LINES + STEP_LINES), STEP_LINES):
        chunk = "\n".join(lines[start : start + WINDOW_LINES]).strip("\n")
        if chunk.strip():
            out.append((chunk, words(chunk)))
    return out


def similar_chunks(
    prefix: str, files: Iterable[tuple[str, list[tuple[str, set[str]]]]], limit: int = 4, min_score: float = 0.08
) -> list[tuple[float, str, str]]:
    """``(score, path, chunk)`` of the best window of each file, best files first, at most ``limit``."""
    query = words("\n".join(prefix.split("\n")[-WINDOW_LINES:]))
    if not query:
        return []
    scored = []
    for path, wins in files:
        best = (0.0, "")
        for chunk, ws in wins:
            if ws:
                score = len(query & ws) / len(query | ws)
                if score > best[0]:
                    best = (score, chunk)
        if best[0] >= min_score:
            scored.append((best[0], path, best[1]))
    scored.sort(key=lambda s: -s[0])
    return scored[:limit]


def wanted_names(prefix: str, imported: list[Import]) -> list[tuple[str, str]]:
    """``(module, name)`` pairs of imported names, those used nearest the cursor first."""
    body = prefix
    pairs = [(imp.module, name) for imp in imported for name in imp.names]

    def last_use(pair: tuple[str, str]) -> int:
        return max((m.start() for m in re.finditer(rf"\b{re.escape(pair[1])}\b", body)), default=-1)

    return sorted(pairs, key=lambda p: -last_use(p))
