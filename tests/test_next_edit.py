"""Next edits read from the edit trajectory (server/next_edit.py), typed keystroke by keystroke."""

from __future__ import annotations

from sparkls.server.code_spans import family, scan
from sparkls.server.edit_history import EditHistory
from sparkls.server.next_edit import NextEdits

from rename_fixture import SRC

URI = "file:///w/mod.py"

# The shared rename fixture, and another function whose parameter has the same name (a different scope).
RENAME_SRC = SRC + "\n\ndef other(count):\n    return count + 1\n"

CALLS_SRC = '''\
def report(rows, out):
    write(rows, out)
    x = write(rows[1:], out)
    write(
        rows, out,
    )
    writer(rows, out)
    other.write(rows, out)
'''

SIMILAR_SRC = '''\
parser.add_argument("--alpha", type=int, default=1)
parser.add_argument("--beta", type=int, default=2)
parser.add_argument("--gamma", type=int, default=3)
total = int(x)
'''


class Typist:
    """Applies keystrokes to a text, feeding each to NextEdits as a didChange would."""

    def __init__(self, text: str) -> None:
        self.text, self.version = text, 1
        self.edits = NextEdits()

    def change(self, start: int, end: int, inserted: str) -> None:
        before = self.text
        self.text = before[:start] + inserted + before[end:]
        self.version += 1
        self.edits.record(URI, before, start, end, inserted, self.version)

    def retype(self, at: int, old: str, new: str) -> int:
        """Backspace over ``old`` (which ends at ``at + len(old)``) and type ``new``; returns the cursor."""
        end = at + len(old)
        for i in range(len(old)):
            self.change(end - i - 1, end - i, "")
        for i, ch in enumerate(new):
            self.change(at + i, at + i, ch)
        return at + len(new)

    def type(self, at: int, new: str) -> int:
        for i, ch in enumerate(new):
            self.change(at + i, at + i, ch)
        return at + len(new)

    def suggest(self, cursor: int):
        return self.edits.suggest(URI, self.text, self.version, cursor, "python")

    def apply_all(self, cursor: int) -> str:
        """Tab-Tab until nothing is left: apply the first suggestion, ask again."""
        for _ in range(100):
            sites = self.suggest(cursor)
            if not sites:
                return self.text
            s = sites[0]
            self.change(s.start, s.end, s.new)
            cursor = s.start + len(s.new)
        raise AssertionError("suggestions never ran out")


def test_history_merges_keystrokes_into_one_hunk():
    h = EditHistory()
    text = "x = count + 1\n"
    for i in range(5):  # backspaces from the end of `count`
        end = 9 - i
        h.record(text, end - 1, end, "", i)
        text = text[: end - 1] + text[end:]
    for i, ch in enumerate("total"):
        h.record(text, 4 + i, 4 + i, ch, 10 + i)
        text = text[: 4 + i] + ch + text[4 + i :]
    assert len(h.hunks) == 1
    hunk = h.latest
    assert (hunk.start, hunk.old, hunk.new, hunk.edits) == (4, "count", "total", 10)
    assert hunk.before(text) == "x = count + 1\n"
    # an edit elsewhere is a new hunk; an edit before an older hunk shifts it
    h.record(text, 0, 0, "  ", 20)
    assert len(h.hunks) == 2 and h.hunks[0].start == 6


def test_rename_local_variable_in_its_function_only_in_code():
    t = Typist(RENAME_SRC)
    at = RENAME_SRC.index("count = 0")
    cursor = t.retype(at, "count", "total")
    sites = t.suggest(cursor)
    assert [t.text[s.start : s.end] for s in sites] == ["count"] * 3
    final = t.apply_all(cursor)
    # the function's other uses renamed; the comment, the string and other()'s parameter kept
    assert final == RENAME_SRC.replace("count = 0", "total = 0").replace(
        "count += item.price", "total += item.price"
    ).replace('"count", count)', '"count", total)').replace("return count\n\n", "return total\n\n")


def test_no_suggestion_midway_or_for_an_existing_name():
    t = Typist(RENAME_SRC)
    at = RENAME_SRC.index("count = 0")
    end = at + 5
    for i in range(3):  # "count" -> "co": still deleting
        t.change(end - i - 1, end - i, "")
        assert t.suggest(end - i - 1) == []
    t2 = Typist(RENAME_SRC)
    t2.retype(at, "count", "items")  # now points at another existing name: not a rename
    assert t2.suggest(at + 5) == []


def test_parameter_rename_stays_in_its_function_and_definition_name_renames_everywhere():
    t = Typist(RENAME_SRC)
    at = RENAME_SRC.index("other(count)") + len("other(")
    cursor = t.retype(at, "count", "n")
    final = t.apply_all(cursor)
    assert final.endswith("def other(n):\n    return n + 1\n")
    assert final.count("count") == RENAME_SRC.count("count") - 2

    src = "def helper(a):\n    return a\n\n\nx = helper(1)\ny = helper(2) + obj.helper\n"
    t = Typist(src)
    cursor = t.retype(src.index("helper"), "helper", "assist")
    assert t.apply_all(cursor) == src.replace("helper(", "assist(")


def test_added_argument_goes_to_the_other_calls():
    t = Typist(CALLS_SRC)
    at = CALLS_SRC.index("write(rows, out)") + len("write(rows, out")
    mid = []
    for i, ch in enumerate(", flush"):
        t.change(at + i, at + i, ch)
        mid.append(bool(t.suggest(at + i + 1)))
    assert mid[:2] == [False, False]  # "," and ", ": no argument yet (", f" already reads as one)
    final = t.apply_all(at + 7)
    assert final == (
        "def report(rows, out):\n"
        "    write(rows, out, flush)\n"
        "    x = write(rows[1:], out, flush)\n"
        "    write(\n        rows, out, flush,\n    )\n"
        "    writer(rows, out)\n"
        "    other.write(rows, out)\n"
    )


def test_change_repeated_on_similar_lines_only():
    t = Typist(SIMILAR_SRC)
    at = SIMILAR_SRC.index("--alpha") + 2
    cursor = t.retype(at, "alpha", "alpha-x")
    assert t.suggest(cursor) == []  # nothing similar to repeat it on
    t = Typist(SIMILAR_SRC)
    at = SIMILAR_SRC.index("default=1")
    cursor = t.type(at, "required=False, ")
    final = t.apply_all(cursor)
    assert final.count("required=False, default=") == 3
    assert final.endswith("total = int(x)\n")


def test_plain_edits_suggest_nothing():
    src = "def f(a, b):\n    x = a + b\n    return x * 2\n\n\ny = f(1, 2)\n"
    for start, old, new in [
        (src.index("2\n\n"), "2", "3"),  # a literal
        (src.index("    return"), "", "    print(x)\n"),  # a new line
        (src.index("a + b"), "a", "b"),  # another existing name
    ]:
        t = Typist(src)
        if old:
            t.retype(start, old, new)
        else:
            t.type(start, new)
        assert t.suggest(start + len(new)) == [], (old, new)


def test_code_spans():
    text = 'x = "a # b"  # c\ns = """\nq\n"""  # d\n'
    spans = scan(text, family("python"))
    assert spans.kind_at(text.index("a #")) == "string"
    assert spans.kind_at(text.index("# c")) == "comment"
    assert spans.kind_at(text.index("q")) == "string"
    assert spans.kind_at(text.index("s =")) == "code"
    js = "let a = 'x'; // y\n/* z */ b"
    spans = scan(js, family("javascript"))
    assert [spans.kind_at(js.index(c)) for c in "xyzb"] == ["string", "comment", "comment", "code"]


def test_whole_line_changes_are_trimmed_to_what_differs():
    """Neovim sends one change per line touched: ``count`` -> ``total`` arrives as the whole line."""
    t = Typist(RENAME_SRC)
    line_start = RENAME_SRC.index("    count = 0")
    line_end = RENAME_SRC.index("\n", line_start) + 1
    t.change(line_start, line_end, "    total = 0\n")
    assert len(t.suggest(line_end)) == 3


def test_replacing_a_selected_word_letter_by_letter():
    """VS Code replaces a selected `count` by the first letter typed, then inserts the others."""
    t = Typist(RENAME_SRC)
    at = RENAME_SRC.index("count = 0")
    t.change(at, at + 5, "t")
    cursor = t.type(at + 1, "otal")
    assert [t.text[s.start : s.end] for s in t.suggest(cursor)] == ["count"] * 3


def test_huge_documents_and_unknown_ones_get_nothing():
    big = RENAME_SRC + "x = 1\n" * 200_000
    t = Typist(big)
    cursor = t.retype(big.index("count = 0"), "count", "total")
    assert t.suggest(cursor) == []
    assert NextEdits().suggest("file:///nowhere.py", "a = 1\n", 1, 0) == []
