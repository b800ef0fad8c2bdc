"""Stop rules shared by every decode core, applied while the completion grows.

- A cursor after code on its line gets the rest of that line.
- A cursor on a blank line (only indentation before it) gets the indented block that
  starts there: lines stop at the first one indented less than the first line.
- Nothing that already follows the cursor is repeated: the rest of the line after a
  mid-line cursor, or the next existing line after a block.
"""

from __future__ import annotations

from dataclasses import dataclass


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


@dataclass
class StopRules:
    """Judge a growing completion: ``cut(text)`` gives the part to show and whether to stop."""

    prefix: str
    suffix: str
    max_lines: int = 12

    def __post_init__(self) -> None:
        line_prefix = self.prefix[self.prefix.rfind("\n") + 1 :]
        self.block = line_prefix.strip() == ""
        self.base_indent = len(line_prefix)  # a blank line's prefix is all indentation
        first_suffix_line, _, rest = self.suffix.partition("\n")
        self.line_suffix = first_suffix_line.strip()
        following = [ln for ln in rest.split("\n") if ln.strip()]
        self.next_line = following[0].strip() if following else ""
        if self.block and self.line_suffix:
            # The cursor sits in the indentation of an existing line: that line follows.
            self.next_line = self.line_suffix

    def cut(self, text: str) -> tuple[str, bool]:
        """Return ``(visible, done)`` for the completion ``text`` produced so far."""
        if self.block:
            return self._cut_block(text)
        return self._cut_line(text)

    def _cut_line(self, text: str) -> tuple[str, bool]:
        end = text.find("\n")
        done = end >= 0
        if done:
            text = text[:end]
        tail = self.line_suffix
        if tail:
            at = text.find(tail)
            if at >= 0 and text[at:].strip() == tail:
                return text[:at].rstrip() if at and text[:at].strip() else text[:at], True
            if text.rstrip().endswith(tail):
                return text.rstrip()[: -len(tail)], True
        return (text.rstrip() if done else text), done

    def _cut_block(self, text: str) -> tuple[str, bool]:
        lines = text.split("\n")
        if len(lines) == 1:
            return text, False
        first = lines[0]
        if not first.strip():
            # The block starts on the next line: its indent is that line's.
            body = [ln for ln in lines[1:-1] if ln.strip()]
            if not body:
                return text, False
        indent = self.base_indent + _indent(first) if first.strip() else _indent(lines[1])
        kept = [first]
        # Every line but the last is complete; the last decides once it has a character.
        for i, line in enumerate(lines[1:], start=1):
            complete = i < len(lines) - 1
            if not line.strip():
                if complete:
                    kept.append(line)
                continue
            if _indent(line) < indent or (self.next_line and line.strip() == self.next_line):
                return self._finish(kept), True
            if len(kept) >= self.max_lines:
                return self._finish(kept), True
            kept.append(line)
        return "\n".join(kept), False

    @staticmethod
    def _finish(lines: list[str]) -> str:
        while len(lines) > 1 and not lines[-1].strip():
            lines.pop()
        return "\n".join(lines).rstrip(" \t")
