"""Cases for bench/quality.py: cursors cut from code SmolLM2 has not seen, and how answers are scored.

Three kinds, all from the packages of one split of bench/unseen.py (seeded, so every machine cuts the same ones):

- ``line``: the cursor right after a token in the middle of a code line; the target is the rest of the line.
- ``next``: the cursor at the end of a block-header line (``...:``); the target is ``"\\n"`` + the next line
  (its indentation included: it is what <Tab> would insert). That line is cut from the document.
- ``block``: the cursor on an indented line emptied down to its indentation; the target is the line's code.

The document the server sees is the file with the target cut out; the file's other lines stay.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

_TOKEN_END = re.compile(r"(?<=[\w)\]}\"'.,=(\[:])(?=[\s\w(\[.,:=)])")
KINDS = ("line", "next", "block")
MIN_LINE = 20  # cases start this far into a file, so every prompt has context above it


@dataclass(frozen=True)
class Case:
    kind: str
    package: str
    root: Path  # the package's unpacked sources: the workspace
    path: Path  # the file the case is cut from
    prefix: str
    suffix: str
    target: str

    @property
    def text(self) -> str:
        return self.prefix + self.suffix

    def to_json(self) -> dict:
        return {"kind": self.kind, "prefix": self.prefix, "target": self.target}


def _inside_word(line: str, at: int) -> bool:
    """A cut between two identifier characters is inside a token, not right after one."""
    return (line[at - 1].isalnum() or line[at - 1] == "_") and (line[at].isalnum() or line[at] == "_")


def _is_code(stripped: str) -> bool:
    return bool(stripped) and not stripped.startswith(("#", '"""', "'''", "@")) and len(stripped) > 8


def cut_file(package: str, root: Path, path: Path, rng: random.Random) -> dict[str, list[Case]]:
    """Every candidate case of each kind in one file (the rest-of-line cut point drawn from ``rng``)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    found: dict[str, list[Case]] = {k: [] for k in KINDS}
    offset = 0
    in_doc = False  # inside a triple-quoted string: its lines are prose
    for i, line in enumerate(lines):
        stripped = line.strip()
        quotes = stripped.count('"""') + stripped.count("'''")
        prose = in_doc or quotes > 0
        if quotes % 2:
            in_doc = not in_doc
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if i >= MIN_LINE and not prose and _is_code(stripped):
            cuts = [
                m.start() for m in _TOKEN_END.finditer(line)
                if len(line) // 3 < m.start() < len(line) - 2 and not _inside_word(line, m.start())
            ]
            if cuts and len(stripped) > 12:
                c = rng.choice(cuts)
                found["line"].append(Case("line", package, root, path, text[: offset + c], text[offset + len(line):],
                                          line[c:].rstrip()))
            if stripped.endswith(":") and nxt.strip() and not nxt.strip().startswith(("#", '"""', "'''")):
                end = offset + len(line)
                after = end + 1 + len(nxt)  # the body line is cut, its line break stays
                found["next"].append(Case("next", package, root, path, text[:end], text[after:], "\n" + nxt.rstrip()))
            indent = len(line) - len(line.lstrip(" "))
            if indent and not stripped.startswith((")", "]", "}")):
                start = offset + indent
                found["block"].append(Case("block", package, root, path, text[:start], text[offset + len(line):],
                                           stripped))
        offset += len(line) + 1
    return found


def make_cases(packages, n: int, seed: int, kinds=KINDS) -> list[Case]:
    """``n`` cases of each kind from ``packages`` (bench/unseen.py), the same for a given seed."""
    from unseen import sources, workspace

    rng = random.Random(seed)
    pool: dict[str, list[Case]] = {k: [] for k in KINDS}
    for pkg in packages:
        root = workspace(pkg)
        for path in sources(pkg):
            if path.stat().st_size < 1500:
                continue
            for kind, cases in cut_file(pkg.name, root, path, rng).items():
                pool[kind].extend(cases)
    chosen: list[Case] = []
    for kind in kinds:
        cases = pool[kind]
        rng.shuffle(cases)
        chosen.extend(cases[:n])
    return chosen


# --- scoring ----------------------------------------------------------------------------------


def answer_line(kind: str, answer: str) -> str:
    """The part of an answer compared with the target: the first line it completes.

    ``next``: the answer must open a new line; what is compared is that line break plus the line
    (indentation included), so a suggestion whose first line is blank or that stays on the
    cursor's line is wrong. Other kinds: the first line of the answer.
    """
    if kind == "next":
        if not answer.startswith("\n"):
            return answer.split("\n", 1)[0].rstrip()
        return "\n" + answer[1:].split("\n", 1)[0].rstrip()
    return answer.split("\n", 1)[0].rstrip()


def _norm(kind: str, s: str) -> str:
    return s.rstrip() if kind == "next" else s.strip()


def exact(kind: str, answer: str, target: str) -> bool:
    return _norm(kind, answer_line(kind, answer)) == _norm(kind, target)


def edit_similarity(a: str, b: str) -> float:
    """1 - Levenshtein distance / the longer length (CodeXGLUE's edit similarity)."""
    if not a and not b:
        return 1.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1 - prev[-1] / max(len(a), len(b))


def similarity(kind: str, answer: str, target: str) -> float:
    return edit_similarity(_norm(kind, answer_line(kind, answer)), _norm(kind, target))


def is_empty(kind: str, answer: str) -> bool:
    return not answer_line(kind, answer).strip()
