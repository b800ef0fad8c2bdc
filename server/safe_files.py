"""Reading files a workspace names without trusting it: the one place sparkls opens such files.

A repository may hold a symlink ``x.py -> /dev/zero`` (its ``st_size`` is 0, its reads never
end), a FIFO named ``*.py`` (a read blocks until someone writes), a symlink to a secret outside
the workspace, or a huge or binary file. :func:`read_text` reads a file only if

- its real path (symlinks resolved) lies inside one of the allowed ``roots``;
- it is a regular file, checked on the opened descriptor (opened ``O_NONBLOCK``, so opening a
  FIFO cannot block, and ``O_NOFOLLOW``, so the checked path is the opened one);
- it holds at most ``max_bytes`` (counted while reading, not trusted from ``stat``);
- it is UTF-8 text without NUL bytes.

Anything else is a :class:`Skip` with a reason for the log. Calls block for at most one bounded
read of a regular file, but a slow file system can still stall them: run them in a worker
thread (:func:`read_text_async` does, with a time limit), never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

log = logging.getLogger("sparkls")

BINARY_SNIFF = 8192  # a NUL byte in this many leading bytes means binary
READ_SECONDS = 5.0  # read_text_async gives up (and logs) after this long


@dataclass(frozen=True)
class Skip:
    """Why a file was not read."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def inside(path: str | os.PathLike, roots: Iterable[str | os.PathLike]) -> str | None:
    """The real path of ``path`` if it lies inside one of ``roots`` (their real paths), else None."""
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return real
    return None


def read_bytes(path: str | os.PathLike, max_bytes: int, roots: Iterable[str | os.PathLike]) -> bytes | Skip:
    """The bytes of a regular file inside ``roots``, at most ``max_bytes`` of them, or why not."""
    shown = str(path)
    real = inside(path, roots)
    if real is None:
        return Skip(shown, "outside the workspace (or a symlink leading out of it)")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        return Skip(shown, f"cannot open ({exc.strerror or exc})")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return Skip(shown, "not a regular file (a device, FIFO, socket or directory)")
        if st.st_size > max_bytes:
            return Skip(shown, f"too large ({st.st_size} bytes, limit {max_bytes})")
        chunks, total = [], 0
        while total <= max_bytes:  # st_size may lie (procfs, a file growing meanwhile)
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            return Skip(shown, f"too large (over {max_bytes} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        return Skip(shown, f"cannot read ({exc.strerror or exc})")
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike, max_bytes: int, roots: Iterable[str | os.PathLike]) -> str | Skip:
    """The UTF-8 text of a regular file inside ``roots`` (see the module docstring), or why not."""
    data = read_bytes(path, max_bytes, roots)
    if isinstance(data, Skip):
        return data
    if b"\0" in data[:BINARY_SNIFF]:
        return Skip(str(path), "binary")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return Skip(str(path), "not UTF-8")


async def read_text_async(
    path: str | os.PathLike, max_bytes: int, roots: Iterable[str | os.PathLike], executor: Executor,
    timeout: float = READ_SECONDS,
) -> str | Skip:
    """:func:`read_text` in ``executor``, given up after ``timeout`` seconds (the thread may stay
    blocked on a stalled file system; the server exits without waiting for it)."""
    loop = asyncio.get_running_loop()
    roots = list(roots)
    try:
        return await asyncio.wait_for(loop.run_in_executor(executor, read_text, path, max_bytes, roots), timeout)
    except asyncio.TimeoutError:
        return Skip(str(path), f"read took over {timeout:g}s")


def text_or_none(result: str | Skip, what: str = "read") -> str | None:
    """The text, or None after logging why the file was skipped."""
    if isinstance(result, Skip):
        log.info("%s skipped %s", what, result)
        return None
    return result

