"""A moved prompt window reuses its cached tokens: keys re-rotated to their new positions, not prefilled again."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_gguf import write_tiny_llama

from sparkls.decode.neural.attention import KEY_TILE
from sparkls.decode.neural.kv_shift import MIN_MATCH, find_shift
from sparkls.decode.neural.llama import LlamaModel


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> LlamaModel:
    return LlamaModel.load(write_tiny_llama(tmp_path_factory.mktemp("shift") / "tiny.gguf", qtype="Q8_0",
                                            context_length=1024))


def counting(session) -> list[int]:
    computed: list[int] = []
    run = session._run
    session._run = lambda tokens, n_logits: (computed.append(len(tokens)), run(tokens, n_logits))[1]
    return computed


def test_find_shift_locates_the_moved_window() -> None:
    """Ensure the tokens after the common prefix are found where they sit in the cache."""
    rng = np.random.default_rng(0)
    header, old, typed = rng.integers(0, 500, 20), rng.integers(0, 500, 200), rng.integers(0, 500, 10)
    cached = np.concatenate([header, old]).astype(np.int32)
    new = np.concatenate([header, old[70:], typed]).astype(np.int32)
    assert find_shift(cached, new, 20) == (70, 130)
    assert find_shift(cached, np.concatenate([header, typed, old]).astype(np.int32), 20) == (0, 0)
    short = np.concatenate([header, old[200 - MIN_MATCH + 1 :], typed]).astype(np.int32)
    assert find_shift(cached, short, 20) == (0, 0), "too short a match is not worth a shift"


def test_shifted_cache_predicts_as_a_fresh_prefill(model) -> None:
    """Ensure that after the window moves, the session computes only the new tokens and its
    logits match a fresh prefill of the same prompt up to bf16 rounding (same top token)."""
    rng = np.random.default_rng(1)
    header, old, typed = rng.integers(3, 260, 24), rng.integers(3, 260, 300), rng.integers(3, 260, 5)
    session = model.new_session(1024)
    session.feed(np.concatenate([header, old]))
    computed = counting(session)
    new = np.concatenate([header, old[90:], typed]).astype(np.int32)
    shifted = session.feed(new).copy()
    assert sum(computed) <= len(typed) + 1, f"recomputed {sum(computed)} tokens"
    fresh_session = model.new_session(1024)
    fresh = fresh_session.feed(new)
    # The first layer's keys depend on token and position only: equal up to bf16 rounding.
    moved, recomputed = _keys(session, len(new)), _keys(fresh_session, len(new))
    assert np.abs(moved - recomputed).max() <= np.abs(recomputed).max() / 64
    # Deeper layers remember the dropped tokens (as llama.cpp's context shift does): close, not equal.
    assert np.corrcoef(shifted, fresh)[0, 1] > 0.99
    assert list(session.tokens) == list(new)
    assert len(list(session.generate(4))) == 4


def _keys(session, n: int) -> np.ndarray:
    """Layer 0's cached keys as float32 (KVH, n, hs), from the tiled bf16 layout of .attention."""
    kc = (session.state.key_cache[0].astype(np.uint32) << 16).view(np.float32)
    g, tiles, half, _ = kc.shape
    return kc.reshape(g, tiles, half, KEY_TILE, 2).transpose(0, 1, 3, 2, 4).reshape(g, -1, 2 * half)[:, :n]


def test_typing_past_the_window_moves_it_without_a_new_prefill(model) -> None:
    """Ensure that when typing takes the cursor past the prompt window's end, the window moves
    down (the header stays) and the session computes only the typed tokens, not the window."""
    from sparkls.decode.engine import CompletionContext, Snippet
    from sparkls.decode.neural.neural_engine import CHARS_PER_TOKEN, NeuralEngine

    engine = NeuralEngine(model, prompt_tokens=128, n_ctx=1024)
    path = "file:///w/moving.py"
    text = "".join(f"def f{i}(a, b):\n    return a + b * {i}\n\n" for i in range(40))
    snippets = (Snippet("other.py", "def g(x):\n    return x\n"),)
    cursor = 128 * CHARS_PER_TOKEN
    list(engine.complete(CompletionContext(text[:cursor], text[cursor:], path=path, snippets=snippets, max_tokens=2),
                         lambda: False))
    start, header, _ = engine._anchors[path]
    moved = cursor + 128 * CHARS_PER_TOKEN // 4  # typed on: past the window's room to type
    computed = counting(engine.sessions.get(path))
    list(engine.complete(CompletionContext(text[:moved], text[moved:], path=path, snippets=(), max_tokens=2),
                         lambda: False))
    new_start, new_header, _ = engine._anchors[path]
    assert new_start > start and new_header == header, "the window moved, its header stayed"
    assert sum(computed) < 120, f"computed {computed}: the moved window was prefilled again"
