"""Every repository path the README and docs/*.md cite exists, so a move or rename cannot leave them stale.

Checked: backticked paths that start with a top-level folder (`server/server.py`, `decode/neural/llama.py`,
`docs/protocol.md`, `bench/quality.py --split test`: the first word; a glob must match something), and
relative Markdown links.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository, whatever the working directory
TOP = ("server", "decode", "backends", "plugins", "editors", "tests", "bench", "docs", "examples", ".ci")
_TICKED = re.compile(r"`(?:\./)?((?:%s)/[^`\s]*)" % "|".join(re.escape(t) for t in TOP))
_LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s#]+)")


def cited(text: str) -> list[str]:
    """Repository paths cited in Markdown ``text``, relative to the repository root (pytest ids and
    ``:LINE:COL`` suffixes dropped)."""
    paths = [re.split(r"::|:\d", m.group(1))[0] for m in _TICKED.finditer(text)]
    return [p.rstrip(".,;:") for p in paths]


def missing(doc: Path) -> list[str]:
    """Paths ``doc`` cites that are not in the repository."""
    text = doc.read_text(encoding="utf-8")
    gone = [p for p in cited(text) if not ((ROOT / p).exists() or ("*" in p and any(ROOT.glob(p))))]
    gone += [p for p in (m.group(1) for m in _LINK.finditer(text)) if not (doc.parent / p).exists()]
    return gone


def docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_cited_paths_exist():
    stale = {str(d.relative_to(ROOT)): m for d in docs() if (m := missing(d))}
    assert not stale, f"docs cite paths that do not exist: {stale}"


def test_a_stale_path_is_caught(tmp_path):
    # The check must be able to fail: a doc citing a removed module and a dead link is reported.
    doc = tmp_path / "x.md"
    doc.write_text("See `decode/llama.py`, `server/server.py` and [notes](../gone/notes.md).\n")
    assert missing(doc) == ["decode/llama.py", "../gone/notes.md"]


def test_scans_what_it_should():
    assert len(docs()) >= 2
    assert cited("`bench/quality.py --split test` `tests/test_int8.py::test_x` `sparkls/status`") == [
        "bench/quality.py",
        "tests/test_int8.py",
    ]
