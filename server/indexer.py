"""Scan a workspace folder into the n-gram model, bounded in files, bytes and time."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from sparkls.decode.ngram.ngram_model import CodeModel
from sparkls.server import safe_files
from sparkls.server.line_breaks import lf
from sparkls.server.options import IndexOptions

log = logging.getLogger(__name__)

SKIP_DIRS = {
    ".git", ".hg", ".svn", "node_modules", ".venv", "venv", "env", "__pycache__", ".mypy_cache",
    ".pytest_cache", ".tox", "build", "dist", "target", ".idea", ".vscode", "site-packages",
}
CODE_SUFFIXES = {
    ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".go", ".rs", ".c", ".h", ".cc", ".cpp",
    ".hpp", ".cxx", ".java", ".kt", ".scala", ".cs", ".rb", ".php", ".swift", ".lua", ".sh", ".bash",
    ".zsh", ".sql", ".r", ".jl", ".hs", ".ml", ".ex", ".exs", ".erl", ".clj", ".dart", ".vue", ".svelte",
    ".html", ".css", ".scss", ".toml", ".yaml", ".yml", ".json", ".md", ".rst", ".txt", ".vim", ".el",
}


@dataclass
class IndexReport:
    files: int = 0
    tokens: int = 0
    bytes: int = 0
    skipped: int = 0  # binary, undecodable, too large, unreadable, not regular or outside the root
    truncated: bool = False  # a bound was reached before the scan finished
    seconds: float = 0.0


def candidate_files(root: Path, deadline: float = float("inf")) -> Iterator[Path]:
    """Code files under ``root``, skipping hidden and vendored folders, in a stable order.

    Symlinked folders are not entered (os.walk's default); symlinked files are yielded and
    :mod:`~sparkls.server.safe_files` decides whether they may be read. Stops at ``deadline``
    (time.monotonic) even inside a folder of millions of other files."""
    for folder, dirs, files in os.walk(root):
        if time.monotonic() > deadline:
            return
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(folder, name)
            if path.suffix.lower() in CODE_SUFFIXES:
                yield path


def read_text(path: Path, max_bytes: int, root: Path | None = None) -> str | None:
    """The file's text, or None if it is outside ``root`` (default: its own folder), not a
    regular file, too large, binary or not UTF-8 (see safe_files; the reason is logged)."""
    result = safe_files.read_text(path, max_bytes, [root or Path(path).parent])
    if isinstance(result, safe_files.Skip):
        _log_skip(result)
        return None
    return result


def _log_skip(skip: safe_files.Skip) -> None:
    # Hostile shapes (devices, FIFOs, symlinks out) are worth a line; binaries and big files are routine.
    routine = skip.reason.startswith(("binary", "not UTF-8", "too large"))
    log.log(logging.DEBUG if routine else logging.INFO, "index: skipped %s", skip)


def index_workspace(
    model: CodeModel,
    root: Path,
    options: IndexOptions,
    progress: Callable[[IndexReport], None] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    key: Callable[[Path], str] = str,
    skip: Callable[[Path], bool] = lambda path: False,
) -> IndexReport:
    """Count the files under ``root`` into ``model`` (but those ``skip`` says not to read, such as
    secrets and gitignored files); calls ``progress`` every few files."""
    report = IndexReport()
    started = time.monotonic()
    for path in candidate_files(root, started + options.max_seconds):
        if cancelled():
            report.truncated = True
            break
        if (
            report.files >= options.max_files
            or report.bytes >= options.max_total_bytes
            or time.monotonic() - started > options.max_seconds
        ):
            report.truncated = True
            break
        if skip(path):
            continue
        text = read_text(path, options.max_file_bytes, root)
        if text is None:
            report.skipped += 1
            continue
        report.tokens += model.add_file(key(path), lf(text))  # as open documents are counted
        report.files += 1
        report.bytes += len(text)
        if progress and report.files % 25 == 0:
            progress(report)
    report.seconds = time.monotonic() - started
    report.truncated = report.truncated or report.seconds > options.max_seconds
    return report
