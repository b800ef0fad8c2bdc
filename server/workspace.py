"""The workspace as prompt context: definitions of the names a document imports, and chunks of other files
most like the code before the cursor, within a character budget (see :mod:`sparkls.decode.workspace_context`).

Files are listed once in a while (bounded), read through :func:`read_file` (one place to harden), parsed once
per version (size and mtime), and never read when :class:`~sparkls.server.exclusions.Exclusions` says no. The
text of an open document replaces its file's.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from urllib.parse import unquote, urlparse

from sparkls.decode.engine import Snippet
from sparkls.decode import workspace_context as wc
from sparkls.server.exclusions import Exclusions
from sparkls.server.indexer import candidate_files, read_text

LIST_EVERY_S = 10.0  # how stale the file list may be
MAX_FILES = 2000  # files listed (imports resolve among them)
CHUNK_FILES = 100  # files searched for similar chunks, nearest the document first (parsed once per version)
MAX_FILE_BYTES = 512_000
PARSED_FILES = 512  # parsed versions kept
DEFINITION_SHARE = 0.6  # of the budget, at most this much for definitions; similar chunks get the rest


def read_file(path: Path, root: Path | None) -> str | None:
    """A workspace file's text, or None (outside ``root`` once symlinks are resolved, not a regular file, too
    large, binary, not UTF-8, unreadable: safe_files decides)."""
    return read_text(path, MAX_FILE_BYTES, root)


def uri_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


class WorkspaceContext:
    """Prompt context from the files under ``root`` (thread-safe: completions run in worker threads)."""

    def __init__(self, root: Path | None, exclusions: Exclusions) -> None:
        self.root = root
        self.exclusions = exclusions
        self._files: list[Path] = []
        self._modules: dict[str, Path] = {}
        self._listed = -LIST_EVERY_S
        self._parsed: OrderedDict[Path, tuple[tuple[int, float], dict, list]] = OrderedDict()
        self._lock = threading.Lock()

    def files(self) -> list[Path]:
        """Python and other code files of the workspace that may go into a prompt (refreshed every 10 s)."""
        with self._lock:
            if self.root is None or time.monotonic() - self._listed < LIST_EVERY_S:
                return self._files
            files = []
            for path in candidate_files(self.root):
                if len(files) >= MAX_FILES:
                    break
                if not self.exclusions.excluded(path):
                    files.append(path)
            self._files, self._listed = files, time.monotonic()
            self._modules = _module_names(self.root, [f for f in files if f.suffix == ".py"])
            return files

    def _parse(self, path: Path) -> tuple[dict[str, str], list]:
        """``(definitions, windows)`` of a file's current version."""
        try:
            st = path.stat()
        except OSError:
            return {}, []
        stamp = (st.st_size, st.st_mtime)
        with self._lock:
            got = self._parsed.get(path)
            if got is not None and got[0] == stamp:
                self._parsed.move_to_end(path)
                return got[1], got[2]
        text = read_file(path, self.root)
        parsed = ((wc.definitions(text) if path.suffix == ".py" else {}), wc.windows(text)) if text else ({}, [])
        with self._lock:
            self._parsed[path] = (stamp, *parsed)
            while len(self._parsed) > PARSED_FILES:
                self._parsed.popitem(last=False)
        return parsed

    def resolve(self, module: str, doc: Path | None) -> Path | None:
        """The workspace file of a (possibly relative) dotted module name."""
        if module.startswith("."):
            if doc is None:
                return None
            dots = len(module) - len(module.lstrip("."))
            base = doc.parent
            for _ in range(dots - 1):
                base = base.parent
            rest = module.lstrip(".").split(".") if module.lstrip(".") else []
            for candidate in (base.joinpath(*rest).with_suffix(".py") if rest else None, base.joinpath(*rest, "__init__.py")):
                if candidate is not None and candidate in self._modules.values():
                    return candidate
            return None
        return self._modules.get(module)

    def snippets(self, doc_uri: str, prefix: str, others: dict[str, str], budget: int) -> list[Snippet]:
        """Context for a completion in ``doc_uri``: similar chunks of other files (open documents' texts in
        ``others``, by URI, replace their files'), then definitions of imported names, in ``budget`` characters."""
        if budget <= 0:
            return []
        doc = uri_path(doc_uri)
        files = self.files()
        defs, used = self._definitions(doc, prefix, int(budget * DEFINITION_SHARE))
        chunks = self._chunks(doc, prefix, files, others, budget - used)
        return chunks + defs

    def _definitions(self, doc: Path | None, prefix: str, budget: int) -> tuple[list[Snippet], int]:
        by_file: dict[Path, list[str]] = {}
        used, seen = 0, set()
        for module, name in wc.wanted_names(prefix, wc.imports(prefix)):
            path = self.resolve(module, doc)
            if path is None or path == doc or (path, name) in seen:
                continue
            seen.add((path, name))
            found = self._parse(path)[0].get(name)
            if found is None:
                continue
            if used + len(found) + 1 > budget:
                continue  # a smaller one further down may still fit
            by_file.setdefault(path, []).append(found)
            used += len(found) + 1
        return [Snippet(self._rel(p), "\n\n".join(reversed(d))) for p, d in by_file.items()], used

    def _chunks(self, doc: Path | None, prefix: str, files: list[Path], others: dict[str, str], budget: int) -> list[Snippet]:
        if budget <= 0:
            return []
        sources: list[tuple[str, list]] = []
        opened = {uri_path(u): t for u, t in others.items()}
        for uri, text in others.items():
            path = uri_path(uri)
            if path != doc and not self.exclusions.excluded(path or uri):
                sources.append((self._rel(path) if path else uri, wc.windows(text)))
        nearest = sorted(files, key=lambda p: _distance(p, doc))
        for path in nearest[:CHUNK_FILES]:
            if path != doc and path not in opened:
                sources.append((self._rel(path), self._parse(path)[1]))
        out: list[Snippet] = []
        for _, path, chunk in wc.similar_chunks(prefix, sources):
            if len(chunk) + len(path) + 40 > budget:
                continue
            out.append(Snippet(path, chunk))
            budget -= len(chunk) + len(path) + 40
        return list(reversed(out))  # the most similar nearest the code

    def _rel(self, path: Path) -> str:
        if self.root is not None:
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return path.name


def _distance(path: Path, doc: Path | None) -> int:
    """How far apart two files are in the folder tree (files next to the document first)."""
    if doc is None:
        return len(path.parts)
    common = 0
    for a, b in zip(path.parent.parts, doc.parent.parts):
        if a != b:
            break
        common += 1
    return (len(path.parent.parts) - common) + (len(doc.parent.parts) - common)


def _module_names(root: Path, files: list[Path]) -> dict[str, Path]:
    """Dotted module names of the workspace's Python files: every dotted suffix of each path (so a `src/`
    layout or a package below the root resolves too); the shortest path wins a clash."""
    names: dict[str, Path] = {}
    for path in sorted(files, key=lambda p: len(p.parts)):
        try:
            parts = list(path.relative_to(root).with_suffix("").parts)
        except ValueError:
            continue
        if parts and parts[-1] == "__init__":
            parts = parts[:-1]
        for i in range(len(parts)):
            names.setdefault(".".join(parts[i:]), path)
    return names
