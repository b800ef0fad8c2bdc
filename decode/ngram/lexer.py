"""The n-gram core's code lexer: lossless, with a vocabulary that grows as it reads.

It implements :class:`sparkls.decode.tokenizer.Tokenizer`.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

# Newline plus the next line's indentation is one token, so indentation-aware stop
# rules see a dedent as a single step; runs of spaces, words, numbers and single
# punctuation characters are the rest. Every character belongs to exactly one match.
_LEX = re.compile(r"\r?\n[ \t]*|[ \t]+|[A-Za-z_\u00c0-\uffff][\w\u00c0-\uffff]*|\d+(?:\.\d+)?|[\s\S]", re.UNICODE)


class CodeLexer:
    """A lossless code lexer with a growing vocabulary (token text <-> id).

    One instance is shared by every table that counts its ids, so an id means the
    same text everywhere.
    """

    name = "code-lexer"

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._pieces: list[str] = []

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def split(self, text: str) -> list[str]:
        """The lexer tokens of ``text`` as strings."""
        return _LEX.findall(text)

    def encode(self, text: str) -> np.ndarray:
        ids = self._ids
        out = np.empty(0, np.int32)
        pieces = _LEX.findall(text)
        if pieces:
            out = np.fromiter((ids.get(p) if p in ids else self._add(p) for p in pieces), np.int32, len(pieces))
        return out

    def decode(self, ids: Sequence[int]) -> str:
        pieces = self._pieces
        return "".join(pieces[i] for i in ids)

    def piece(self, token_id: int) -> str:
        return self._pieces[token_id]

    def _add(self, piece: str) -> int:
        token_id = len(self._pieces)
        self._ids[piece] = token_id
        self._pieces.append(piece)
        return token_id
