"""Which files never go into a prompt: secrets by name, `.gitignore`d files and the `exclude` setting's globs.

A workspace is untrusted and may hold credentials; the suggestion prompt (which a `remote` engine sends over the
network) and the n-gram index must not see them. Patterns follow gitignore's rules (``*``, ``?``, ``[...]``, ``**``,
a leading or inner ``/`` anchors a pattern to its file's folder, a trailing ``/`` matches folders, ``!`` re-includes,
the last matching line wins); every `.gitignore` from the root down to a file's folder applies, and the ``exclude``
globs apply last, relative to the workspace root.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from sparkls.server import safe_files

# .env, .env.local, prod.env, keys and certificates, credential files of common tools.
_SECRET = re.compile(
    r"^(\.env(\..*)?|.*\.env|\.envrc|\.netrc|_netrc|\.npmrc|\.pypirc|\.pgpass|\.git-credentials|"
    r"id_(rsa|dsa|ecdsa|ed25519)(\.pub)?|credentials(\.\w+)?|secrets?\.(json|ya?ml|toml|ini|txt|env)|"
    r".*\.(pem|key|p12|pfx|jks|keystore|gpg|asc|kdbx|ovpn))$",
    re.I,
)
GITIGNORE_BYTES = 256_000


def is_secret(path: str | Path) -> bool:
    """True for file names that usually hold credentials (.env and friends, keys, certificates)."""
    return bool(_SECRET.match(Path(path).name))


def _glob(p: str) -> str:
    out, i = "", 0
    while i < len(p):
        if p.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif p.startswith("**", i):
            out, i = out + ".*", i + 2
        elif p[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif p[i] == "?":
            out, i = out + "[^/]", i + 1
        elif p[i] == "[" and p.find("]", i + 2) > 0:
            j = p.find("]", i + 2)
            body = p[i + 1 : j]
            body = "^" + body[1:] if body.startswith("!") else body
            out, i = out + "[" + body.replace("\\", "\\\\") + "]", j + 1
        elif p[i] == "\\" and i + 1 < len(p):
            out, i = out + re.escape(p[i + 1]), i + 2
        else:
            out, i = out + re.escape(p[i]), i + 1
    return out


def compile_pattern(line: str) -> tuple[re.Pattern, bool] | None:
    """A gitignore line as ``(regex over a relative path, negated)``; None for blanks and comments."""
    line = line.rstrip("\r\n")
    if not line.strip() or line.startswith("#"):
        return None
    line = line.rstrip(" ")
    negated = line.startswith("!")
    line = line[1:] if negated else line
    folder = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    body = _glob(line.lstrip("/"))
    head = "^" if anchored else "^(?:.*/)?"
    tail = "/.+$" if folder else "(?:/.+)?$"  # a folder pattern matches what is inside it
    return re.compile(head + body + tail), negated


def _rules(lines: list[str]) -> list[tuple[re.Pattern, bool]]:
    return [r for r in map(compile_pattern, lines) if r is not None]


@lru_cache(maxsize=256)
def _gitignore(path: Path, mtime: float, root: Path) -> list[tuple[re.Pattern, bool]]:
    # A .gitignore is a workspace file too: it may be a FIFO, /dev/zero or a symlink out (safe_files).
    data = safe_files.read_bytes(path, GITIGNORE_BYTES, [root])
    if isinstance(data, safe_files.Skip):
        return []
    return _rules(data.decode("utf-8", "replace").split("\n"))


class Exclusions:
    """Decides, for a path under ``root``, whether it may be read into a prompt or the index."""

    def __init__(self, root: Path | None, exclude: list[str] | tuple[str, ...] = ()) -> None:
        self.root = root.resolve() if root else None
        self.exclude = _rules(list(exclude))

    def excluded(self, path: str | Path) -> bool:
        path = Path(path)
        if is_secret(path):
            return True
        if self.root is None:
            return _matches(self.exclude, path.name)
        try:
            rel = path.resolve().relative_to(self.root)
        except (ValueError, OSError):
            return _matches(self.exclude, path.name)  # outside the workspace: only name globs apply
        hit = False
        folder = self.root
        parts = rel.parts
        for depth in range(len(parts)):
            ignore = folder / ".gitignore"
            try:
                rules = _gitignore(ignore, ignore.stat().st_mtime, self.root)
            except OSError:
                rules = []
            sub = "/".join(parts[depth:])
            for rx, negated in rules:
                if rx.match(sub):
                    hit = not negated
            folder = folder / parts[depth]
        for rx, negated in self.exclude:
            if rx.match(rel.as_posix()):
                hit = not negated
        return hit


def _matches(rules: list[tuple[re.Pattern, bool]], rel: str) -> bool:
    hit = False
    for rx, negated in rules:
        if rx.match(rel):
            hit = not negated
    return hit
