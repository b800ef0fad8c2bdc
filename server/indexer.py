"""Scan a workspace folder into the n-gram model, bounded in files, bytes and time."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from sparkls.decode.ngram_model import CodeModel
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
    skipped: int = 0  # binary, undecodable, too large or unreadable
    truncated: bool = False  # a bound was reached before the scan finished
    seconds: float = 0.0


def candidate_files(root: Path) -> Iterator[Path]:
    """Code files under ``root``, skipping hidden and vendored folders, in a stable order."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(folder, name)
            if path.suffix.lower() in CODE_SUFFIXES:
                yield path


def read_text(path: Path, max_bytes: int) -> str | None:
    """The file's text, or None if it is too large, binary or not UTF-8."""
    try:
        if path.stat().st_size > max_bytes:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


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
    for path in candidate_files(root):
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
        text = read_text(path, options.max_file_bytes)
        if text is None:
            report.skipped += 1
            log.debug("index: skipped %s (too large, binary or not UTF-8)", path)
            continue
        report.tokens += model.add_file(key(path), text)
        report.files += 1
        report.bytes += len(text)
        if progress and report.files % 25 == 0:
            progress(report)
    report.seconds = time.monotonic() - started
    return report
