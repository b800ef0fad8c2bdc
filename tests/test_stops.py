"""Stop rules: rest of line, indented block, and no repeating what follows the cursor."""

from __future__ import annotations

from sparkls.decode.stops import StopRules


def test_mid_line_stops_at_end_of_line() -> None:
    """Ensure a cursor after code gets the rest of its line only."""
    rules = StopRules("x = foo(", "")
    assert rules.cut("a, b)") == ("a, b)", False)
    assert rules.cut("a, b)\n    y = 2") == ("a, b)", True)


def test_suffix_on_the_line_is_not_repeated() -> None:
    """Ensure text already after the cursor (an auto-closed paren) is not suggested again."""
    rules = StopRules("x = foo(", ")\n")
    assert rules.cut("a, b") == ("a, b", False)
    assert rules.cut("a, b)") == ("a, b", True)


def test_block_stops_at_dedent() -> None:
    """Ensure a cursor on a blank indented line gets the block, ending before a dedent."""
    rules = StopRules("def f(x):\n    ", "")
    text = "y = x + 1\n    return y\n\ndef g():"
    assert rules.cut(text) == ("y = x + 1\n    return y", True)
    assert rules.cut("y = x + 1\n    ret") == ("y = x + 1\n    ret", False)


def test_block_does_not_repeat_the_next_line() -> None:
    """Ensure a block stops before a line equal to the one already below the cursor."""
    rules = StopRules("def f(x):\n    ", "\n    return y\n")
    assert rules.cut("y = x + 1\n    return y\n") == ("y = x + 1", True)


def test_block_line_cap() -> None:
    """Ensure a block stops after max_lines lines."""
    rules = StopRules("    ", "", max_lines=2)
    assert rules.cut("a\n    b\n    c\n    d") == ("a\n    b", True)


def test_closing_bracket_nothing_waits_for_ends_the_line() -> None:
    """Ensure a completion stops before a closing bracket that no open bracket needs."""
    rules = StopRules("    callback: Optional[Callable[[Sequence[", "\n    ) -> None:\n", path="a.py")
    assert rules.cut("types.Symbol]]]] = None,") == ("types.Symbol]]]] = None,", False)
    assert rules.cut("types.Symbol]]]]] = None,") == ("types.Symbol]]]]", True)


def test_bracket_closed_after_the_cursor_is_not_closed_again() -> None:
    """Ensure the bracket the rest of the line closes (an auto-closed paren) is not closed by
    the completion too, while brackets the completion opens itself may close."""
    rules = StopRules("x = foo(", ")\n")
    assert rules.cut("a, b) + 1") == ("a, b", True)
    assert rules.cut("g(a)\n") == ("g(a)", True)
    nested = StopRules("x = foo(bar(", ")\n")
    assert nested.cut("x), y\n") == ("x), y", True)
    assert nested.cut("x)) + 1") == ("x)", True)
    quoted = StopRules('x = d["', '"]\n')
    assert quoted.cut('key"] + 1') == ("key", True)


def test_brackets_in_strings_and_comments_do_not_count() -> None:
    """Ensure brackets inside strings and comments, before or after the cursor, are skipped."""
    rules = StopRules('# see (1\nlog("a(b', "\n", path="a.py")
    assert rules.cut('c)") # x)\n') == ('c)") # x)', True)
    assert rules.cut('c") + 1)') == ('c") + 1', True)


def test_block_stops_at_a_closing_bracket_nothing_waits_for() -> None:
    """Ensure a block ends before a closing bracket that closes nothing open."""
    rules = StopRules("def f(x):\n    ", "", path="a.py")
    assert rules.cut("y = g(x)\n    return y)\n") == ("y = g(x)\n    return y", True)


def test_line_ending_in_an_open_bracket_goes_on_until_it_closes() -> None:
    """Ensure an end-of-line completion that opens a bracket and breaks the line continues to
    the line that closes it, instead of offering a lone "(". """
    rules = StopRules("    raise ValueError", "\n\n    return x\n", path="a.py")
    assert rules.cut('(\n        "no"') == ("(", False)  # shown once it closes
    assert rules.cut('(\n        "no"\n    )\n    return') == ('(\n        "no"\n    )', True)
    assert rules.cut('(\n        "no"\n    ))') == ('(\n        "no"\n    )', True)
    assert rules.cut("(\nx = 1\n") == ("(", True)  # a line outside the statement: never closed
    assert rules.cut("(\n" + "        a,\n" * 12 + "    )\n") == ("(", True)  # past max_lines
    mid_line = StopRules("    x = f", "  # note\n", path="a.py")
    assert mid_line.cut("(\n        a") == ("(", True)  # text after the cursor: one line only


def test_line_end_opens_the_next_line() -> None:
    """Ensure a cursor at the end of a header line gets the line break and the body, ending at a
    blank line or a dedent, and is shown as it grows once its first line has text."""
    rules = StopRules("def f(x):", "\n\ndef g():\n    pass\n", path="a.py")
    assert rules.cut("\n   ") == ("", False)
    assert rules.cut("\n    y = x") == ("\n    y = x", False)
    assert rules.cut("\n    y = x + 1\n    return y\n\ndef h():") == ("\n    y = x + 1\n    return y", True)
    assert rules.cut("\n    y = x + 1\n    return y\nz = 2\n") == ("\n    y = x + 1\n    return y", True)


def test_line_end_after_a_statement_gets_the_next_statements() -> None:
    """Ensure the lines after a statement stop at a blank line, and that text staying on the
    cursor's line is still the rest of that line."""
    rules = StopRules("    x = 1", "\n", path="a.py")
    assert rules.cut("\n    y = 2\n    z = 3\n\n    w") == ("\n    y = 2\n    z = 3", True)
    assert rules.cut("  # one\n    y = 2") == ("  # one", True)


def test_line_end_never_repeats_the_line_below() -> None:
    """Ensure the line already below the cursor is not suggested (nor shown while it could
    still turn out to be that line), and later lines stop before it."""
    rules = StopRules("    x = 1", "\n    return x\n", path="a.py")
    assert rules.cut("\n    return") == ("", False)
    assert rules.cut("\n    return x\n") == ("", True)
    assert rules.cut("\n    y = 2\n    return x\n") == ("\n    y = 2", True)


def test_header_body_must_be_indented() -> None:
    """Ensure a header's next line that is not indented deeper (a syntax error in Python) and a
    blank first line are never shown; the switch turns the next line off entirely."""
    rules = StopRules("    if x:", "\n", path="a.py")
    assert rules.cut("\n    y = 1\n") == ("", True)
    assert rules.cut("\n\n        y = 1\n") == ("", True)
    assert StopRules("    if x:", "\n", open_next_line=False).cut("\n        y = 1\n") == ("", True)


def test_indent_unit_and_header_body_indent() -> None:
    """Ensure the file's indentation step is its commonest increase (tabs if it indents with tabs),
    and a header's body indentation is the header's plus that step, only at a header's end."""
    from sparkls.decode.stops import fits_after, header_body_indent, indent_unit

    two = "def f(x):\n  if x:\n    return f(\n            x)\n  return 1\n"
    assert indent_unit(two) == "  "
    assert indent_unit("x = 1\n") == "    "
    assert indent_unit("def f():\n\tif x:\n\t\treturn 1\n") == "\t"
    assert header_body_indent(two + "  for y in x:") == "    "
    assert header_body_indent(two + "  y = 1") is None
    assert header_body_indent("    x = a[1:", "]\n") is None, "a colon in the middle of a line"
    assert fits_after("    if x:", "\n        y = 1") and not fits_after("    if x:", "\n            y = 1")
    assert not fits_after("    if x:", "\n    y = 1") and fits_after("    x = 1", "\n            y = 1")


def test_a_header_split_over_lines_is_indented_under_its_first_line() -> None:
    """Ensure a header whose last line is a continuation (``for ... in (a,\\n      b):``) takes its
    body's indentation from the line where it began: that body is shown, and is where the body of
    a withheld answer or a copy is expected; deeper is not."""
    from sparkls.decode.stops import fits_after, header_body_indent

    prefix = "def f(xs):\n    for a, b in zip(xs,\n                    xs[1:]):"
    rules = StopRules(prefix, "\n    return xs\n", path="a.py")
    assert rules.cut("\n        y = a\n    z = 1\n") == ("\n        y = a", True)
    assert rules.cut("\n    y = a\n") == ("", True)
    assert header_body_indent(prefix) == "        "
    assert fits_after(prefix, "\n        y = a") and not fits_after(prefix, "\n                        y = a")
    assert header_body_indent('    s = ")"\n    if s:') == "        ", "a bracket in a string"
    docstring = '    def f(self):\n        """Why it\'d (not) be.\n        """\n\n    def close(self) -> None:'
    assert header_body_indent(docstring) == "        ", "brackets balanced on the header's own line"


def test_a_line_caught_in_a_loop_ends_after_the_piece_once() -> None:
    """Ensure a small model's loop on the cursor's line is cut after its first time, and data that repeats is not."""
    from sparkls.decode.stops import runaway

    rules = StopRules("    r = request(method", "\n")
    assert rules.cut('="POST, binary, nocksubs, nocksubs, nocksubs') == ('="POST, binary, nocksubs, nocksubs, nocksubs', False)
    assert rules.cut('="POST, binary, nocksubs, nocksubs, nocksubs, nocksubs,') == ('="POST, binary, nocksubs', True)
    assert StopRules("    self.", "\n").cut("_complete_complete_complete_complete") == ("_complete", True)
    # Three times is not yet a loop; digits and punctuation repeat in real data.
    assert runaway("Tuple[Any, Any, Any]") == -1
    assert runaway("[0, 0, 0, 0, 0, 0, 0]") == -1
    assert runaway('"=" * 8 + "--------------------"') == -1
    # The text after the cursor still is not repeated.
    assert StopRules("    x = f(", ")\n").cut("bar, bar, bar, bar, bar") == ("bar,", True)
