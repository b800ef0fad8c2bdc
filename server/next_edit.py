"""Next edits from the edit trajectory: the change the user just made, repeated where it belongs.

From the latest hunk of a document's edit history (server/edit_history.py) one *pattern* is read:

- **rename**: one identifier became another (word level, in code, not in strings or comments) →
  the same rename at its other occurrences in scope (the enclosing function when the name is local
  to it, else the document); attribute names (`x.count`) and bare names are kept apart.
- **call**: an argument was added at the end (or start) of one call's argument list → the same
  argument added to the other calls of that function (not those that already pass it).
- **repeat**: a change inside a line, with the tokens around it → the same change on the other
  lines that looked like the edited line did (same surrounding text, most identifiers in common).

A pattern, once read, stays active while the user keeps applying it (accepting a suggested edit is
an edit like any other), and is replaced by the next edit that reads as a pattern or cleared by
one that does not. Sites are computed from the current text on each request, nearest after the
cursor first; each is one small edit (range + new text) in the current version.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from sparkls.server.code_spans import Spans, family, scan
from sparkls.server.edit_history import EditHistory, Hunk

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")
_WORDS = re.compile(r"[A-Za-z_]\w*")
_FUNC_HEADER = re.compile(r"[ \t]*(?:async[ \t]+)?(?:def|function|func|fn|local[ \t]+function)\b")
_DEFINES = re.compile(r"\b(?:def|class|function|func|fn|struct|enum|interface|type)[ \t]+\Z")
_CALLEE = re.compile(r"([A-Za-z_][\w.]*)[ \t]*\Z")
_OTHER_KEYWORDS = {"end", "then", "local", "nil", "function", "var", "let", "const", "func", "fn", "null", "this", "new"}
MAX_SITES = 50
MAX_CHARS = 1_000_000  # larger documents get no next edits (each request scans the text)
MIN_SIMILARITY = 0.5  # identifier Jaccard (strings left out) between the edited line and a line a repeat applies to
REPEAT_LINES = 40  # a repeat applies to lines at most this far from the edited one


@dataclass(frozen=True)
class Site:
    """One suggested edit: replace ``text[start:end]`` with ``new``."""

    start: int
    end: int
    new: str


@dataclass(frozen=True)
class Pattern:
    kind: str  # "rename" | "call" | "repeat"
    old: str  # rename: the old name; call: the callee; repeat: the text around and including the change
    new: str  # rename: the new name; call: the argument; repeat: the same with the change made
    attr: bool = False  # rename: the name followed a dot; call: calls with any receiver (read from a definition)
    where: str = "end"  # call: "end" or "start" of the argument list
    scope: tuple[int, int] | None = None  # rename: (first, last) line of a function, else the document; repeat: the edited line
    similar_to: str = ""  # repeat: the edited line as it was
    lead: int = 0  # repeat: characters of context before the change in ``old``/``new``
    kind_at: str = "code"  # repeat: what the changed text was (code, string, comment)


PENDING = Pattern("pending", "", "")  # an edit under way that will read as a pattern once complete


def _is_word(ch: str) -> bool:
    return bool(ch) and (ch.isalnum() or ch == "_")


def _is_name(s: str) -> bool:
    return bool(_IDENT.match(s)) and not keyword.iskeyword(s) and s not in _OTHER_KEYWORDS


def _line_bounds(text: str, offset: int) -> tuple[int, int]:
    start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    m = re.compile(r"[\r\n]").search(text, offset)
    return start, (m.start() if m else len(text))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


_STRING = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'")


def _words(s: str) -> set[str]:
    return set(_WORDS.findall(_STRING.sub(" ", s)))


def _head(line: str) -> str:
    """What a line calls first (`parser.add_argument`), the text before its first parenthesis."""
    stripped = line.strip()
    return stripped.split("(", 1)[0] if "(" in stripped else ""


def _alike(a: str, b: str) -> bool:
    """Lines that look alike: they call the same thing first, or share most of their identifiers."""
    head = _head(a)
    if len(head) >= 3 and head == _head(b):
        return True
    wa, wb = _words(a), _words(b)
    return bool(wa | wb) and len(wa & wb) / len(wa | wb) >= MIN_SIMILARITY


class NextEdits:
    """Edit histories and active patterns of the open documents; suggests next edits."""

    def __init__(self) -> None:
        self.histories: dict[str, EditHistory] = {}
        self.active: dict[str, tuple[Hunk, Pattern] | None] = {}
        self._spans: dict[str, tuple[int, Spans]] = {}
        self.offered: dict[str, tuple] = {}  # uri -> (version, site, id) of the first edit last offered

    def record(self, uri: str, before: str, start: int, end: int, inserted: str, version: int) -> None:
        self.histories.setdefault(uri, EditHistory()).record(before, start, end, inserted, version)

    def forget(self, uri: str) -> None:
        self.histories.pop(uri, None)
        self.active.pop(uri, None)
        self._spans.pop(uri, None)
        self.offered.pop(uri, None)

    def spans(self, uri: str, text: str, version: int, language_id: str) -> Spans:
        cached = self._spans.get(uri)
        if cached is None or cached[0] != version:
            cached = self._spans[uri] = (version, scan(text, family(language_id, uri)))
        return cached[1]

    def pattern(self, uri: str, text: str, version: int, language_id: str = "") -> Pattern | None:
        """The pattern the document's latest hunk continues or starts (None: nothing to repeat)."""
        history = self.histories.get(uri)
        hunk = history.latest if history else None
        if hunk is None:
            return None
        known = self.active.get(uri)
        if known is not None and known[0] is hunk and known[0].new == hunk.new:
            return known[1]
        before = hunk.before(text)
        fam = family(language_id, uri)
        spans_before = scan(before, fam)
        previous = known[1] if known else None
        if previous is not None and _applies(previous, before, text, hunk, spans_before):
            found = previous  # one of its own suggestions applied: the same pattern goes on
        else:
            found = read_pattern(before, text, hunk, spans_before, previous)
        self.active[uri] = (hunk, found) if found else None
        return found

    def suggest(self, uri: str, text: str, version: int, cursor: int, language_id: str = "") -> list[Site]:
        """The next edits for the document as it is now, nearest after ``cursor`` first."""
        if len(text) > MAX_CHARS:
            return []
        pat = self.pattern(uri, text, version, language_id)
        if pat is None:
            return []
        spans = self.spans(uri, text, version, language_id)
        hunk = self.histories[uri].latest
        sites = [s for s in find_sites(pat, text, spans) if not (s.start < hunk.end and s.end > hunk.start)]
        sites.sort(key=lambda s: (s.start < cursor, s.start))
        return sites[:MAX_SITES]


# --- reading a pattern from a hunk ------------------------------------------------------------


def _applies(pat: Pattern, before: str, after: str, hunk: Hunk, spans: Spans) -> bool:
    """Whether the hunk made ``before`` into ``after`` by applying one of ``pat``'s sites."""
    lo, hi = hunk.start, hunk.start + len(hunk.old)
    for site in find_sites(pat, before, spans):
        if site.start <= hi and site.end >= lo and before[: site.start] + site.new + before[site.end :] == after:
            return True
    return False


def read_pattern(before: str, after: str, hunk: Hunk, spans: Spans, previous: Pattern | None = None) -> Pattern | None:
    """What the hunk did, as a pattern to repeat, or None. ``spans`` are of ``before``."""
    old, new = _trimmed(hunk.old, hunk.new)  # a client may send a whole line for a one-word change
    if old == new or "\n" in old or "\n" in new or "\r" in old + new:
        return None
    lo = hunk.start + _common_prefix(hunk.old, hunk.new)
    hi_b, hi_a = lo + len(old), lo + len(new)
    # Word level: an edit that starts (ends) with a word character takes the whole word on that side.
    if _is_word(old[:1]) or _is_word(new[:1]):
        while lo > 0 and _is_word(before[lo - 1]):
            lo -= 1
    if _is_word(old[-1:]) or _is_word(new[-1:]):
        while hi_a < len(after) and _is_word(after[hi_a]):
            hi_a += 1
            hi_b += 1
    old, new = before[lo:hi_b], after[lo:hi_a]
    if old == new:
        return None
    if _is_name(old) and (new == "" or old.startswith(new)):
        return None  # deleting on the way to typing something else: nothing to suggest yet
    if _is_name(old) and _is_name(new) and spans.is_code(lo):
        # One name for another: a rename, or one use pointed at an existing name (nothing follows from that).
        return _rename(before, lo, old, new, spans, previous)
    found = _call(before, lo, hi_b, old, new, spans)
    if found is not None:
        return found if found is not PENDING else None
    return _repeat(before, lo, hi_b, old, new, spans)


def _common_prefix(a: str, b: str) -> int:
    p = 0
    while p < min(len(a), len(b)) and a[p] == b[p]:
        p += 1
    return p


def _trimmed(a: str, b: str) -> tuple[str, str]:
    """``a`` and ``b`` without their common start and end."""
    p = _common_prefix(a, b)
    q = 0
    while q < min(len(a), len(b)) - p and a[-1 - q] == b[-1 - q]:
        q += 1
    return a[p : len(a) - q], b[p : len(b) - q]


def _rename(before: str, at: int, old: str, new: str, spans: Spans, previous: Pattern | None) -> Pattern | None:
    attr = at > 0 and before[at - 1] == "."
    line_start, _ = _line_bounds(before, at)
    head = before[line_start:at]
    scope = None
    if not _DEFINES.search(head):  # a definition's name: every use in the document
        scope = _local_scope(before, at, old, spans, attr)
    if previous is not None and previous.kind == "rename" and (previous.old, previous.new, previous.attr) == (old, new, attr):
        return previous  # applying the active rename at another site: same scope
    pat = Pattern("rename", old, new, attr=attr, scope=scope)
    others = [s for s in _occurrences(before, old, spans, attr, scope) if s != at]
    if not others:
        return None
    # A name that already exists (anywhere: shadowing is no rename): pointing one use elsewhere, not a rename.
    if _occurrences(before, new, spans, attr, None):
        return None
    return pat


def _occurrences(text: str, name: str, spans: Spans, attr: bool, scope: tuple[int, int] | None) -> list[int]:
    lo, hi = 0, len(text)
    if scope is not None:
        lo, hi = _offsets_of_lines(text, scope)
    found = []
    for m in re.finditer(r"(?<![\w])" + re.escape(name) + r"(?![\w])", text[lo:hi]):
        at = lo + m.start()
        dotted = at > 0 and text[at - 1] == "."
        if dotted == attr and spans.is_code(at) and not _is_keyword_argument(text, m.end() + lo, attr):
            found.append(at)
    return found


def _is_keyword_argument(text: str, end: int, attr: bool) -> bool:
    """``name=`` inside a call's parentheses names the callee's parameter, not this variable."""
    if attr:
        return False
    rest = text[end : end + 3].lstrip(" ")
    if not rest.startswith("=") or rest.startswith("=="):
        return False
    line_start, _ = _line_bounds(text, end)
    head = text[line_start:end]
    return head.count("(") > head.count(")")


def _offsets_of_lines(text: str, lines: tuple[int, int]) -> tuple[int, int]:
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    first, last = lines
    lo = starts[first]
    hi = starts[last + 1] if last + 1 < len(starts) else len(text)
    return lo, hi


def _local_scope(text: str, at: int, name: str, spans: Spans, attr: bool) -> tuple[int, int] | None:
    """Lines of the innermost function around ``at`` when ``name`` is defined in it (a parameter or
    an assignment); None (the document) otherwise. Blocks are read from indentation."""
    if attr:
        return None
    lines = re.split(r"\r\n|\r|\n", text)
    row = text.count("\n", 0, at) if "\r" not in text else len(re.findall(r"\r\n|\r|\n", text[:at]))
    edit_indent = _indent(lines[row])
    header = None
    for r in range(row, -1, -1):
        line = lines[r]
        if not line.strip():
            continue
        if _FUNC_HEADER.match(line) and (r == row or _indent(line) < edit_indent):
            header = r
            break
    if header is None:
        return None
    h_indent = _indent(lines[header])
    last = header
    for r in range(header + 1, len(lines)):
        if lines[r].strip() and _indent(lines[r]) <= h_indent and not lines[r].lstrip().startswith((")", "]", "}")):
            break
        if lines[r].strip():
            last = r
    block = "\n".join(lines[header : last + 1])
    defined = re.search(
        r"(?:\(|,)\s*\*{0,2}" + re.escape(name) + r"\s*[:=,)]"  # a parameter
        r"|^[ \t]*" + re.escape(name) + r"\s*(?::[^=\n]*)?=(?!=)"  # an assignment
        r"|\bfor\s+(?:\w+\s*,\s*)*" + re.escape(name) + r"\b|\bas\s+" + re.escape(name) + r"\b"
        r"|\b(?:local|let|const|var)\s+" + re.escape(name) + r"\b",
        block,
        re.M,
    )
    return (header, last) if defined else None


def _matching_close(text: str, open_at: int, spans: Spans, limit: int | None = None) -> int | None:
    """Offset of the bracket closing the one at ``open_at`` (code only), or None."""
    depth = 0
    stop = len(text) if limit is None else min(len(text), limit)
    for i in range(open_at, stop):
        ch = text[i]
        if ch in "([{" and spans.is_code(i):
            depth += 1
        elif ch in ")]}" and spans.is_code(i):
            depth -= 1
            if depth == 0:
                return i
    return None


def _enclosing_open(text: str, at: int, line_start: int, spans: Spans) -> int | None:
    depth = 0
    for i in range(at - 1, line_start - 1, -1):
        ch = text[i]
        if ch in ")]}" and spans.is_code(i):
            depth += 1
        elif ch in "([{" and spans.is_code(i):
            if depth == 0:
                return i if ch == "(" else None
            depth -= 1
    return None


def _complete_argument(arg: str) -> bool:
    if not arg or arg[-1] in ",=.([{+-*/%<>&|^!~:@" or arg.count("(") != arg.count(")"):
        return False
    return arg.count("[") == arg.count("]") and arg.count("{") == arg.count("}") and arg.count('"') % 2 == 0 and arg.count("'") % 2 == 0


def _call(before: str, lo: int, hi: int, old: str, new: str, spans: Spans) -> Pattern | None:
    if old or not spans.is_code(lo):
        return None
    opened = _enclosing_open(before, lo, max(0, lo - 2000), spans)  # calls may span lines
    if opened is None:
        return None
    line_start, _ = _line_bounds(before, opened)
    m = _CALLEE.search(before, line_start, opened)
    if m is None or keyword.iskeyword(m.group(1)):
        return None
    callee = m.group(1)
    close = _matching_close(before, opened, spans)
    if close is None:
        return None
    inside = before[opened + 1 : close]
    at_end = not before[hi:close].strip() and inside.strip()
    if not inside.strip() and opened < lo and hi <= close:  # the first argument of an empty call
        where, arg = "end", new.strip()
    elif at_end and new.lstrip().startswith(","):
        where, arg = "end", new.strip().lstrip(",").strip()
    elif at_end and before[opened + 1 : lo].rstrip().endswith(","):  # after a trailing comma
        where, arg = "end", new.strip().rstrip(",").strip()
    elif lo == opened + 1 and new.rstrip().endswith(",") and inside.strip():
        where, arg = "start", new.strip().rstrip(",").strip()
    else:
        return None
    if not _complete_argument(arg):
        return PENDING  # an argument being typed: wait for it
    head = before[line_start:opened]
    definition = re.match(r"[ \t]*(?:async[ \t]+)?def[ \t]+", head)
    if definition:
        if "=" in arg or arg.startswith("*"):
            return None  # a parameter with a default: the calls need not change
        return Pattern("call", callee.rsplit(".", 1)[-1], arg, attr=True, where=where)  # calls with any receiver
    return Pattern("call", callee, arg, where=where)


def _repeat(before: str, lo: int, hi: int, old: str, new: str, spans: Spans) -> Pattern | None:
    line_start, line_end = _line_bounds(before, lo)
    left_tokens = _TOKEN.findall(before[line_start:lo])[-2:]
    right_tokens = _TOKEN.findall(before[hi:line_end])[:2]
    left, right = "".join(left_tokens), "".join(right_tokens)
    if not left.strip() or not right.strip():
        return None  # a change at either end of a line has too little around it to find its like
    if len((left + right).strip()) < 3 and len(old.strip()) < 3:
        return None
    return Pattern(
        "repeat", left + old + right, left + new + right, similar_to=before[line_start:line_end],
        lead=len(left), kind_at=spans.kind_at(lo), scope=(before.count("\n", 0, lo),) * 2,
    )


# --- where a pattern applies -----------------------------------------------------------------


def find_sites(pat: Pattern, text: str, spans: Spans) -> list[Site]:
    if pat.kind == "rename":
        return [Site(at, at + len(pat.old), pat.new) for at in _occurrences(text, pat.old, spans, pat.attr, pat.scope)]
    if pat.kind == "call":
        return _call_sites(pat, text, spans)
    return _repeat_sites(pat, text, spans)


def _call_sites(pat: Pattern, text: str, spans: Spans) -> list[Site]:
    sites = []
    callee = re.escape(pat.old)
    for m in re.finditer((r"(?<![\w])" if pat.attr else r"(?<![\w.])") + callee + r"[ \t]*\(", text):
        if not spans.is_code(m.start()):
            continue
        line_start, _ = _line_bounds(text, m.start())
        if re.match(r"[ \t]*(?:async[ \t]+)?(?:def|class)\b|[ \t]*(?:local[ \t]+)?function\b", text[line_start : m.start()] or text[line_start:]):
            continue  # the definition (or a class's bases), not a call
        opened = m.end() - 1
        close = _matching_close(text, opened, spans, opened + 4000)
        if close is None:
            continue
        inside = text[opened + 1 : close]
        if re.search(r"(?<![\w.])" + re.escape(pat.new) + r"(?![\w])", inside):
            continue  # already passes it
        if not inside.strip():
            sites.append(Site(opened + 1, close, pat.new))
        elif pat.where == "end":
            tail = inside.rstrip()
            at = opened + 1 + len(tail)
            if tail.endswith(","):  # a trailing comma: keep the style
                sites.append(Site(at, at, " " + pat.new + ","))
            else:
                sites.append(Site(at, at, ", " + pat.new))
        else:
            sites.append(Site(opened + 1, opened + 1, pat.new + ", "))
    return sites


def _repeat_sites(pat: Pattern, text: str, spans: Spans) -> list[Site]:
    row = pat.scope[0] if pat.scope else 0
    lo, hi = _offsets_of_lines(text, (max(0, row - REPEAT_LINES), row + REPEAT_LINES))
    sites = []
    start = lo
    while len(sites) < MAX_SITES:
        at = text.find(pat.old, start, hi)
        if at < 0:
            break
        start = at + 1
        change = at + pat.lead
        if spans.kind_at(change) != pat.kind_at:
            continue
        line_start, line_end = _line_bounds(text, at)
        if pat.new in text[line_start:line_end]:
            continue  # done here already
        if not _alike(pat.similar_to, text[line_start:line_end]):
            continue
        s, e, new = smallest_edit(pat.old, pat.new)
        sites.append(Site(at + s, at + e, new))
    return sites


def smallest_edit(old: str, new: str) -> tuple[int, int, str]:
    """The smallest replacement making ``old`` into ``new`` (their common ends dropped): ``(start, end, inserted)``."""
    p = _common_prefix(old, new)
    q = 0
    while q < min(len(old), len(new)) - p and old[-1 - q] == new[-1 - q]:
        q += 1
    return p, len(old) - q, new[p : len(new) - q]
