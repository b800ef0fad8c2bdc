"""Stop rules shared by every decode core, applied while the completion grows.

- A cursor after code on its line gets the rest of that line.
- A cursor at the end of a non-blank line (nothing after it on its line) gets the rest of the
  line or, when the completion starts with a line break, that break and the lines after it
  (a block's body after a header, the next statements after a statement): ending at a blank
  line, a line indented less than the first, the line that already follows, or max_lines.
- A cursor on a blank line (only indentation before it) gets the indented block that
  starts there: lines stop at the first one indented less than the first line.
- Nothing that already follows the cursor is repeated: the rest of the line after a
  mid-line cursor, or the next existing line after a block.
- Brackets stay balanced (as Continue's bracket matching does): a completion ends before a
  closing bracket that no bracket open at the cursor is waiting for, or whose bracket the
  text after the cursor on its line closes already.
- A line caught in a loop (a piece with a letter in it written four times running, as a small model
  does: ``nocksubs, nocksubs, nocksubs, nocksubs``) ends after the piece's first time.
- At the end of a line, a completion whose first line ends inside a bracket it opened
  ("raise ValueError(" and a line break) goes on to the line that closes that bracket,
  instead of offering a lone "(" (shown once closed; if it never closes, the first line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPENS = "([{"
_CLOSES = {")": "(", "]": "[", "}": "{"}

# Skipped: strings and comments (a quoted string ends at its quote or, unterminated, at the
# end of its line). Kept: brackets and line breaks.
_QUOTED = r""""(?:\\.|[^"\\\n])*(?:"|(?=\n)|\Z)|'(?:\\.|[^'\\\n])*(?:'|(?=\n)|\Z)"""
_HASH = r'''"""[\s\S]*?(?:"""|\Z)|\'\'\'[\s\S]*?(?:\'\'\'|\Z)|#[^\n]*'''
_SLASH = r"""/\*[\s\S]*?(?:\*/|\Z)|//[^\n]*|`(?:\\[\s\S]|[^`\\])*(?:`|\Z)"""
_RUST_QUOTED = r""""(?:\\.|[^"\\])*(?:"|\Z)|'(?:\\[^'\n]{1,10}|[^'\\\n])'"""  # 'a is a lifetime
_KEPT = r"[()\[\]{}\n]"
# A piece of 4-40 characters, then the same piece at least three more times (lazy: the shortest piece first).
_LOOP = re.compile(r"(.{4,40}?)\1{3,}")
_HASH_EXTS = {"py", "pyi", "pyw", "sh", "bash", "zsh", "rb", "r", "toml", "yaml", "yml", "pl", "jl", "ex", "exs", "nim", "cmake"}


def _lexer(path: str) -> re.Pattern:
    name = path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if not ext:  # language unknown: "//" may be Python's floor division, "#" C's #include
        skipped = _QUOTED
    elif ext in _HASH_EXTS:
        skipped = f"{_HASH}|{_QUOTED}"
    elif ext == "rs":
        skipped = f"{_SLASH}|{_RUST_QUOTED}"
    else:
        skipped = f"{_SLASH}|{_QUOTED}"
    return re.compile(f"{skipped}|{_KEPT}")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


class Brackets:
    """The brackets open at the cursor, and where a completion may not close one."""

    def __init__(self, prefix: str, line_suffix: str, path: str = "") -> None:
        self.lexer = _lexer(path)
        stack: list[str] = []
        head = len(prefix)
        for m in self.lexer.finditer(prefix):
            tok = m.group()
            if tok in _CLOSES:
                if _CLOSES[tok] in stack:  # otherwise a stray closer: ignored
                    while stack.pop() != _CLOSES[tok]:
                        pass
            elif tok in _OPENS:
                stack.append(tok)
            elif tok != "\n" and m.end() == len(prefix):
                head = m.start()  # the cursor may be inside this string or comment
        self.stack = stack
        self.head = prefix[head:]  # re-read with each completion, which may continue it
        # How many of the open brackets the rest of the cursor's line closes.
        depth = low = len(stack)
        for m in self.lexer.finditer(self.head + line_suffix):
            tok = m.group()
            if tok in _CLOSES and depth:
                depth -= 1
                low = min(low, depth)
            elif tok in _OPENS:
                depth += 1
        self.reserved = len(stack) - low

    def check(self, text: str) -> tuple[int, list[tuple[int, int]], int]:
        """``(bad, breaks, still_open)`` for a completion: the index of the first closing bracket
        it may not write (-1 if none); for each line break before it, its index and how many
        brackets the completion opened are still open there; and how many are open at the
        end (at ``bad`` if any)."""
        stack = list(self.stack)
        low = len(stack)
        breaks: list[tuple[int, int]] = []
        skip = len(self.head)
        for m in self.lexer.finditer(self.head + text):
            tok, at = m.group(), m.start() - skip
            if at < 0:
                continue
            if tok == "\n":
                breaks.append((at, len(stack) - low))
            elif tok in _OPENS:
                stack.append(tok)
            elif tok in _CLOSES:
                if not stack or stack[-1] != _CLOSES[tok] or len(stack) <= self.reserved:
                    return at, breaks, len(stack) - low
                stack.pop()
                low = min(low, len(stack))
        return -1, breaks, len(stack) - low


@dataclass
class StopRules:
    """Judge a growing completion: ``cut(text)`` gives the part to show and whether to stop."""

    prefix: str
    suffix: str
    max_lines: int = 12
    path: str = ""  # the document's path: its language's comments and strings hide brackets
    open_next_line: bool = True  # at a line's end, a completion may go on to the next lines

    def __post_init__(self) -> None:
        line_prefix = self.prefix[self.prefix.rfind("\n") + 1 :]
        self.block = line_prefix.strip() == ""
        self.base_indent = len(line_prefix)  # a blank line's prefix is all indentation
        self.line_indent = _indent(line_prefix)
        first_suffix_line, _, rest = self.suffix.partition("\n")
        self.line_suffix = first_suffix_line.strip()
        following = [ln for ln in rest.split("\n") if ln.strip()]
        self.next_line = following[0].strip() if following else ""
        if self.block and self.line_suffix:
            # The cursor sits in the indentation of an existing line: that line follows.
            self.next_line = self.line_suffix
        self.brackets = Brackets(self.prefix, first_suffix_line, self.path)
        # At the end of a line with code: a completion that opens with a line break is the next lines.
        self.line_end = self.open_next_line and not self.block and not self.line_suffix and bool(line_prefix.strip())
        self.header = line_prefix.rstrip().endswith(":")
        # A header split over lines: its body is indented under the line where it began.
        self.header_indent = _indent(statement_line(self.prefix)) if self.header and self.line_end else self.line_indent

    def cut(self, text: str) -> tuple[str, bool]:
        """Return ``(visible, done)`` for the completion ``text`` produced so far."""
        first = text.split("\n", 1)[0]
        loop = runaway(first)
        if loop >= 0:
            # The model is looping on the cursor's line: what it wrote before the loop and the piece once.
            visible, _ = self.cut(first[:loop].rstrip() + "\n")
            return visible, True
        bad, breaks, still_open = self.brackets.check(text)
        if self.block:
            if bad < 0:
                return self._cut_block(text)
            visible, _ = self._cut_block(text[:bad])
            return self._finish(visible.split("\n")), True
        end = text.find("\n")
        if self.line_end and end >= 0 and not text[:end].strip():
            return self._cut_next(text, end, bad)
        if end >= 0 and (bad < 0 or bad > end) and not self.line_suffix and breaks[:1] and breaks[0][0] == end:
            if breaks[0][1] > 0:
                return self._cut_statement(text, bad, breaks, still_open)
        if bad >= 0 and (end < 0 or bad < end):
            # The line ends there, unless it repeats the text after the cursor even sooner.
            before = self._before_tail(text if end < 0 else text[:end])
            if before is not None and len(before) <= bad:
                return before, True
            line = text[:bad]
            # The model ran into the closer the text after the cursor has ('def")' before '")'):
            # what it wrote just before that closer is there too.
            for k in range(min(len(line), len(self.line_suffix)), 0, -1):
                if self.line_suffix.startswith(line[-k:] + text[bad]):
                    line = line[:-k]
                    break
            text = line + "\n"
        return self._cut_line(text)

    def _cut_line(self, text: str) -> tuple[str, bool]:
        end = text.find("\n")
        done = end >= 0
        if done:
            text = text[:end]
        before = self._before_tail(text)
        if before is not None:
            return before, True
        return (text.rstrip() if done else text), done

    def _before_tail(self, line: str) -> str | None:
        """``line`` without its end when that end is the text already after the cursor."""
        tail = self.line_suffix
        if tail and tail[0] not in _CLOSES:  # closing brackets: the bracket count decides (cut())
            at = line.find(tail)
            if at >= 0 and line[at:].strip() == tail:
                return line[:at].rstrip() if at and line[:at].strip() else line[:at]
            if line.rstrip().endswith(tail):
                return line.rstrip()[: -len(tail)]
        return None

    def _cut_statement(self, text: str, bad: int, breaks: list[tuple[int, int]], still_open: int) -> tuple[str, bool]:
        """The cursor's line ends inside a bracket the completion opened: the lines down to the
        one where it closes again follow, once it has closed. A statement that does not close
        (it leaves the cursor's indentation, has a blank line, runs past max_lines or out of
        tokens) is not shown beyond its first line: a small model's unfinished call is more
        often a runaway list than a useful start."""
        first = text[: breaks[0][0]]
        closed = next((at for at, n in breaks[1:] if n == 0 and (bad < 0 or at < bad)), -1)
        if closed < 0 and bad >= 0 and still_open == 0:
            closed = bad  # closed, then a bracket nothing waits for: the statement ends there
        lines = text[: closed if closed >= 0 else (bad if bad >= 0 else len(text))].split("\n")
        for i, line in enumerate(lines[1:], start=1):
            complete = i < len(lines) - 1 or closed >= 0
            if (not line.strip() and complete) or (line.strip() and _indent(line) < self.line_indent):
                return first.rstrip(), True  # it left the statement before closing it
            if i > self.max_lines:
                return first.rstrip(), True
        if closed >= 0:
            return self._finish(lines), True
        return first, bad >= 0

    def _cut_next(self, text: str, brk: int, bad: int) -> tuple[str, bool]:
        """The completion at a line's end opens a new line (``text[brk]``): show the break and the
        lines after it, cut by the block rules. After a header (``...:``) the first line must be
        indented deeper than the header (than the line where it began, if split over lines), else
        nothing is shown."""
        body = text[brk + 1 : bad if bad >= 0 else len(text)]
        lines = body.split("\n")
        first = lines[0]
        growing = len(lines) == 1 and bad < 0
        if not first.strip():
            return "", not growing  # a blank line first: the statement is done, not a suggestion
        indent = _indent(first)
        if self.header and indent <= self.header_indent:
            return "", True  # a header's body is indented deeper
        if growing:
            # Not shown while it may still turn out to be the line that already follows.
            return ("", False) if self.next_line.startswith(first.strip()) else ("\n" + first, False)
        if first.strip() == self.next_line:
            return "", True
        kept = [first]
        for i, line in enumerate(lines[1:], start=1):
            complete = i < len(lines) - 1 or bad >= 0
            if not line.strip():
                if complete:
                    return "\n" + self._finish(kept), True  # a blank line ends the paragraph
                continue
            if _indent(line) < indent or line.strip() == self.next_line or len(kept) >= self.max_lines:
                return "\n" + self._finish(kept), True
            if complete or bad >= 0:
                kept.append(line)
            else:
                return "\n" + "\n".join(kept + [line]), False
        return "\n" + self._finish(kept), bad >= 0

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


def runaway(line: str) -> int:
    """Where a line caught in a loop should end: after the first of four or more repeats of a piece
    with a letter in it (``a, no export, no export, no export, no export`` ends after the first
    ``no export,``); -1 if it is not looping. Repeats of digits or punctuation (``0, 0, 0, 0``,
    ``"=" * 4``, ``----``) are data, not a loop."""
    for m in _LOOP.finditer(line):
        if any(c.isalpha() for c in m.group(1)):
            return m.start() + len(m.group(1))
    return -1


def indent_unit(text: str, default: str = "    ") -> str:
    """The indentation step the code in ``text`` uses: a tab if its indented lines start with tabs,
    else the most common increase in spaces from one code line to a deeper next one."""
    steps: dict[int, int] = {}
    tabs = spaces = 0
    last = None
    for line in text.split("\n"):
        if not line.strip():
            continue
        lead = line[: _indent(line)]
        tabs += lead.startswith("\t")
        spaces += lead.startswith(" ")
        if last is not None and len(lead) > last:
            steps[len(lead) - last] = steps.get(len(lead) - last, 0) + 1
        last = len(lead)
    if tabs > spaces:
        return "\t"
    if not steps:
        return default
    # The commonest step; ties go to the smaller (a continuation line's deep step is rarer).
    return " " * max(steps, key=lambda k: (steps[k], -k))


def statement_line(prefix: str) -> str:
    """The line where the statement that the prefix's last line ends began: that line itself, or,
    when it closes brackets opened on lines above (a header split over lines), the line that
    opened them (up to 20 lines up; Python's strings and comments are skipped)."""
    lines = prefix[-4000:].split("\n")
    lexer = _lexer("a.py")
    for k in range(1, min(len(lines), 20) + 1):
        depth = low = 0
        for m in lexer.finditer("\n".join(lines[-k:])):
            tok = m.group()
            if tok in _OPENS:
                depth += 1
            elif tok in _CLOSES:
                depth -= 1
                low = min(low, depth)
        if low >= 0:  # no bracket closed here was opened above
            return lines[-k]
    return lines[-1]


def header_body_indent(prefix: str, suffix: str = "") -> str | None:
    """At the end of a block header (``...:`` with the cursor after it and nothing after the cursor on
    its line), the indentation its body's first line takes: the header's own plus one step of the
    file's (:func:`indent_unit`); else None."""
    line = prefix[prefix.rfind("\n") + 1 :]
    if not line.strip() or not line.rstrip().endswith(":") or suffix.split("\n", 1)[0].strip():
        return None
    start = statement_line(prefix)
    lead = start[: _indent(start)]
    unit = indent_unit(prefix[-4000:])
    return lead + ("\t" if lead.startswith("\t") and unit != "\t" else unit)


def fits_after(prefix: str, text: str, suffix: str = "") -> bool:
    """Whether a completion ``text`` that opens the next line (``"\\n" + line``) may follow ``prefix``
    where its indentation is concerned: after a block header its first line must be deeper than the
    header and no deeper than the header plus one step (:func:`header_body_indent`). Anything else
    (not a next line, not after a header) fits."""
    body = header_body_indent(prefix, suffix)
    if body is None or not text.startswith("\n"):
        return True
    first = next((ln for ln in text[1:].split("\n") if ln.strip()), "")
    return _indent(statement_line(prefix)) < _indent(first) <= len(body)
