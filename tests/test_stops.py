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
