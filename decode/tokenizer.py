"""The small interface every decode model tokenizes through.

The n-gram core counts code-lexer tokens (:class:`sparkls.decode.ngram.lexer.CodeLexer`); the neural
core (SmolLM2) implements the same interface with its BPE (:class:`sparkls.decode.neural.bpe.BpeTokenizer`).
Both are lossless: ``decode(encode(text)) == text``.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class Tokenizer(Protocol):
    """What the decode core needs from a tokenizer."""

    name: str

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` as an int32 array; lossless."""

    def decode(self, ids: Sequence[int]) -> str:
        """The text of a run of token ids."""

    def piece(self, token_id: int) -> str:
        """The text of one token (used for stop rules and token healing)."""
