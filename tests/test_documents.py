"""The document store: LSP line breaks, the three position encodings, incremental edits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from lsprotocol import types

from sparkls.server.documents import UTF8, UTF16, UTF32, Document, PositionError

P = types.Position


def test_only_lsp_line_breaks_split_lines() -> None:
    """Ensure \\n, \\r\\n and \\r end lines, and a form feed or U+2028 does not (pygls's bug)."""
    doc = Document("u", "a\fb\u2028c\nd\r\ne\rf")
    assert doc.line_count == 4
    assert [doc.text[slice(*doc.line_span(i))] for i in range(4)] == ["a\fb\u2028c", "d", "e", "f"]


@pytest.mark.parametrize(
    ("encoding", "column"), [(UTF16, 3), (UTF8, 6), (UTF32, 2)]  # after "😋é": 2+1, 4+2, 1+1 units
)
def test_positions_in_each_encoding(encoding: str, column: int) -> None:
    """Ensure columns count UTF-16 code units, UTF-8 bytes or code points as negotiated."""
    doc = Document("u", "x\n😋é = 1\n")
    offset = doc.offset_at(P(1, column), encoding)
    assert doc.text[offset:] == " = 1\n"
    assert doc.position_at(offset, encoding) == P(1, column)


def test_positions_past_the_end() -> None:
    """Ensure a column past a line's end means its end (as LSP says) and a missing line is an error."""
    doc = Document("u", "abc\ndef")
    assert doc.offset_at(P(0, 99)) == 3
    assert doc.offset_at(P(1, 99)) == 7
    with pytest.raises(PositionError, match="past the end"):
        doc.offset_at(P(5, 0))
    assert doc.offset_at(P(5, 0), clamp_line=True) == 7


def test_insert_at_end_of_last_line() -> None:
    """Ensure an insert past the end of a last line without a newline appends (pygls clamps it short)."""
    doc = Document("u", "abc")
    change = types.TextDocumentContentChangePartial(range=types.Range(P(0, 5), P(0, 5)), text="X")
    assert doc.apply(change) == (3, 3, "X")
    assert doc.text == "abcX"


TEXT = st.lists(st.sampled_from(list("ab é😋\t") + ["\n", "\r", "\r\n"]), max_size=30).map("".join)


@settings(max_examples=150, deadline=None)
@given(text=TEXT, edits=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60), TEXT), max_size=6))
def test_spliced_line_starts_match_a_fresh_document(text, edits) -> None:
    """Ensure line starts kept up to date edit by edit equal those of the final text."""
    doc = Document("u", text)
    for a, b, inserted in edits:
        a, b = sorted((min(a, len(doc.text)), min(b, len(doc.text))))
        doc.replace(a, b, inserted)
        text = text[:a] + inserted + text[b:]
    assert doc.text == text
    assert doc.starts.tolist() == Document("u", text).starts.tolist()


@settings(max_examples=100, deadline=None)
@given(text=TEXT, encoding=st.sampled_from([UTF8, UTF16, UTF32]))
def test_offset_position_round_trip(text, encoding) -> None:
    """Ensure every offset maps to a position and back, in every encoding."""
    doc = Document("u", text)
    for offset in range(len(text) + 1):
        if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
            continue  # inside a CRLF is not a position
        assert doc.offset_at(doc.position_at(offset, encoding), encoding) == offset
