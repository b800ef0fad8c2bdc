"""Each document's recent edits, in order, as hunks: what a region held before and holds now.

Editors send one `didChange` per keystroke. Keystrokes that touch the region of the latest hunk
(typing on, deleting back into it, replacing part of it) grow that hunk, so renaming `count` to
`total` by five backspaces and five letters is one hunk: ``old="count", new="total"``. An edit
elsewhere starts a new hunk. Offsets are in the document's current text; later edits before a
hunk shift it, and an edit that overlaps an older hunk drops that one (it no longer says what
changed there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

KEEP = 16  # hunks per document


@dataclass
class Hunk:
    """The region ``[start, start + len(new))`` of the current text held ``old`` before."""

    start: int
    old: str
    new: str
    version: int
    time: float = field(default_factory=time.monotonic)
    edits: int = 1  # didChange edits merged into it

    @property
    def end(self) -> int:
        return self.start + len(self.new)

    def before(self, text: str) -> str:
        """The document as it was before this hunk (``text`` is the current one; valid for the latest hunk)."""
        return text[: self.start] + self.old + text[self.end :]


class EditHistory:
    """The hunks of one document, oldest first."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self.hunks: list[Hunk] = []

    @property
    def latest(self) -> Hunk | None:
        return self.hunks[-1] if self.hunks else None

    def record(self, before: str, start: int, end: int, inserted: str, version: int) -> Hunk | None:
        """One edit: ``before[start:end]`` became ``inserted``; returns the hunk that now holds it."""
        removed = before[start:end]
        delta = len(inserted) - len(removed)
        if not removed and not inserted:
            return self.latest
        last = self.latest
        if last is not None and start <= last.end and end >= last.start:
            # Touches the latest hunk: merge. Text outside the hunk that the edit removed was original.
            lo, hi = min(start, last.start), max(end, last.end)
            old = before[lo : last.start] + last.old + before[last.end : hi]
            new = before[lo:start] + inserted + before[end:hi]
            self._shift(self.hunks[:-1], start, end, delta)
            merged = Hunk(lo, old, new, version, last.time, last.edits + 1)
            self.hunks.append(merged)
            return merged
        self._shift(self.hunks, start, end, delta)
        hunk = Hunk(start, removed, inserted, version)
        self.hunks.append(hunk)
        del self.hunks[: -self.keep]
        return hunk

    def _shift(self, hunks: list[Hunk], start: int, end: int, delta: int) -> None:
        """Keep ``hunks`` (replacing all of ``self.hunks``) that the edit does not overlap, shifted past it."""
        kept = []
        for h in hunks:
            if end <= h.start:
                h.start += delta  # the edit is before the hunk
                kept.append(h)
            elif start >= h.end:
                kept.append(h)  # the edit is after it
            # else the edit overlaps an older hunk, which no longer says what changed there
        self.hunks = kept
