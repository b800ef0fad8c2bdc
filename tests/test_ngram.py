"""The Numba n-gram tables: counts, backoff, exact removal, collisions, incremental documents."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import example, given, settings, strategies as st

from sparkls.decode.ngram import ngram
from sparkls.decode.ngram.ngram_model import CodeModel, NgramCounts


def ids(*xs: int) -> np.ndarray:
    return np.array(xs, np.int32)


def contents(counts: NgramCounts) -> Counter:
    """Every (context key, next token) → count with a positive count."""
    t = counts.tables
    live = t.pair_count > 0
    return Counter(
        {(int(t.ctx_key[c]), int(tok)): int(n) for c, tok, n in zip(t.pair_ctx[live], t.pair_tok[live], t.pair_count[live])}
    )


def test_counts_and_best() -> None:
    """Ensure pair counts, totals and the best next token follow what was added."""
    c = NgramCounts(max_order=3)
    c.add(ids(1, 2, 3, 1, 2, 3, 1, 2, 4))
    toks, n = c.candidates(ids(9, 1, 2), 2)
    assert dict(zip(toks.tolist(), n.tolist())) == {3: 2, 4: 1}
    assert c.best(ids(9, 1, 2)) == (3, 2, 2, 3)  # order 2: [1, 2] seen 3 times, → 3 twice


def test_longest_match_backoff() -> None:
    """Ensure the longest context seen decides, and an unseen long context backs off."""
    c = NgramCounts(max_order=4)
    c.add(ids(5, 1, 2, 7, 6, 1, 2, 8, 6, 1, 2, 8))
    assert c.best(ids(5, 1, 2))[:2] == (7, 3)  # [5,1,2] → 7 beats the majority [1,2] → 8
    assert c.best(ids(9, 9, 1, 2))[:2] == (8, 2)  # [9,1,2] unseen: back off to [1,2]
    assert c.best(ids(42)) == (ngram.EMPTY, 0, 0, 0)


def test_removal_restores_the_previous_best() -> None:
    """Ensure removing counts finds the new best exactly (walks the context's pairs)."""
    c = NgramCounts(max_order=2)
    base = ids(1, 2, 1, 2, 1, 3)
    extra = ids(1, 3, 1, 3, 1, 3)
    c.add(base)
    before = contents(c)
    c.add(extra)
    assert c.best(ids(1))[0] == 3
    c.remove(extra)
    assert c.best(ids(1))[0] == 2
    assert contents(c) == before


def test_colliding_slots_and_growth() -> None:
    """Ensure keys that share a slot both survive, and tables grow without losing counts."""
    t = ngram.new_tables(16, 16)
    a, b = np.uint64(0x11), np.uint64(0x11 + 16)  # same index under mask 15
    sa, sb = ngram._ctx_slot(t, a, True), ngram._ctx_slot(t, b, True)
    assert sa != sb and ngram._find_ctx(t, a) == sa and ngram._find_ctx(t, b) == sb

    c = NgramCounts(max_order=8, size_hint=16)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, 3000).astype(np.int32)
    c.add(tokens[:100])
    small = contents(c)
    c.add(tokens, 100)  # forces several rehashes
    assert c.tables.ctx_key.shape[0] > 16
    fresh = NgramCounts(max_order=8, size_hint=1 << 16)
    fresh.add(tokens)
    assert contents(c) == contents(fresh)
    assert all(contents(c)[k] >= v for k, v in small.items())


LINES = st.lists(
    st.sampled_from(["def f(x):", "    return x + 1", "", "\tpass", "x = é😋", "y=1\r", "if a:\r\n", "  # note", "z"]),
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@example(start=[], edits=[(0.0, 0.0, "\n"), (0.0, 0.0, "\r")])  # an inserted CR pairs with the LF after it
@given(start=LINES, edits=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.sampled_from(["", "x", "\n", "\r", "  ", "foo(bar)", "\n    y = 2\n"])), max_size=8))
def test_incremental_edits_match_a_fresh_count(start, edits) -> None:
    """Ensure editing an open document leaves exactly the counts of its final text."""
    text = "\n".join(start)
    model = CodeModel()
    model.open_document("doc", text)
    for a, b, inserted in edits:
        i, j = sorted((int(a * len(text)), int(b * len(text))))
        model.edit_document("doc", i, j, inserted)
        text = text[:i] + inserted + text[j:]
    doc = model.docs["doc"]
    assert doc.text == text
    assert model.lexer.decode(doc.tokens) == text
    fresh = NgramCounts()
    fresh.add(model.lexer.encode(text))
    assert contents(model.global_counts) == contents(fresh)
    assert contents(doc.cache) == contents(fresh)


def test_masked_hides_the_cursor_line_from_itself() -> None:
    """Ensure a document cannot predict the text after the cursor from its own copy of it."""
    model = CodeModel()
    text = "value = compute(alpha, beta)\n"
    model.open_document("doc", text)
    cursor = text.index("(") + 1
    history = model.lexer.encode(text[:cursor])
    assert model.global_counts.best(history)[0] != ngram.EMPTY
    with model.masked("doc", cursor, text.index("\n")):
        assert model.global_counts.best(history)[0] == ngram.EMPTY
    assert model.global_counts.best(history)[0] != ngram.EMPTY  # restored
