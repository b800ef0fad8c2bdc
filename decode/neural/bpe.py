"""Byte-level BPE tokenizer of a GGUF model (SmolLM2 / GPT-2 style), built offline.

The vocabulary and merges come from ``tokenizer.ggml.tokens`` / ``.merges``; the
``tokenizers`` pipeline is BPE + ``Digits(individual_digits=True)`` +
``ByteLevel(add_prefix_space=False)``, which reproduced llama.cpp's ``smollm``
pre-tokenizer (src/llama-vocab.cpp in github.com/ggml-org/llama.cpp) token for token on
61,893 tokens of code when this was written; that comparison is not kept here, and
tests/test_bpe.py checks round trips and known tokens of the real vocabulary.

Control tokens (``<|endoftext|>``, ``<file_sep>``…) are never produced by
:meth:`BpeTokenizer.encode`: text that spells them is tokenized as ordinary text,
so user code cannot inject them. Decoding goes through the byte table, so a
multi-byte character split across tokens comes out whole once all its tokens are
decoded together (see :meth:`BpeTokenizer.decode_stream`).
"""

from __future__ import annotations

import bisect
from array import array
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

CONTROL = 3  # llama.cpp token type of control tokens (USER_DEFINED is 4)


@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character -> byte value (inverse of ``bytes_to_unicode``)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def _rust_tokenizer(tokens: Sequence[str], merges: Sequence[str]):
    """The ``tokenizers`` BPE pipeline over this vocabulary (see the module docstring)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {tok: i for i, tok in enumerate(tokens)}
    pairs = [tuple(m.split(" ", 1)) for m in merges]
    try:
        tok = Tokenizer(models.BPE(vocab=vocab, merges=pairs, ignore_merges=False))
    except Exception as exc:  # noqa: BLE001 - tokenizers raises plain Exception, e.g. for a merge of unknown tokens
        raise ValueError(f"bad BPE vocabulary or merges ({exc})") from exc
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    return tok


class BpeTokenizer:
    """Implements :class:`sparkls.decode.tokenizer.Tokenizer` for a GGUF vocabulary.

    Parameters
    ----------
    tokens : list of str, length V
        byte-level token strings, index = token id
    merges : list of str
        ``"left right"`` merge rules, in priority order
    token_types : list of int, optional
        llama.cpp token types; type 3 (control) and 4 (user-defined) are decoded as UTF-8 text
    bos_id, eos_id : int
    name : str
    """

    def __init__(
        self,
        tokens: Sequence[str],
        merges: Sequence[str],
        token_types: Sequence[int] | None = None,
        bos_id: int = -1,
        eos_id: int = -1,
        name: str = "bpe",
    ) -> None:
        self.name = name
        self.bos_id = int(bos_id)
        self.eos_id = int(eos_id)
        self.vocab_size = len(tokens)
        types = list(token_types) if token_types is not None else [1] * len(tokens)
        self._special = np.array([t in (CONTROL, 4) for t in types], bool)
        self._tok = _rust_tokenizer(tokens, merges)
        # Token bytes as one blob plus offsets (token i is blob[off[i]:off[i + 1]]), not 49k
        # bytes objects: small long-lived objects made among the temporaries of the build
        # kept partly used allocator arenas resident (measured: 5 MB after loading SmolLM2).
        table = byte_decoder()
        pieces = []
        for tok, special in zip(tokens, self._special):
            if special or any(c not in table for c in tok):
                pieces.append(tok.encode("utf-8"))
            else:
                pieces.append(bytes(table[c] for c in tok))
        self._offsets = array("q", [0])
        total = 0
        for b in pieces:
            total += len(b)
            self._offsets.append(total)
        self._blob = b"".join(pieces)
        # Ids of ordinary tokens sorted by their bytes, for prefix queries (token healing).
        order = sorted((i for i, b in enumerate(pieces) if b and not self._special[i]), key=pieces.__getitem__)
        del pieces
        self._sorted_ids = np.array(order, np.int32)

    @classmethod
    def from_metadata(cls, meta: dict, name: str | None = None) -> BpeTokenizer:
        """Build from GGUF metadata (as in :attr:`sparkls.decode.neural.loader.LoadedModel.metadata`)."""
        model = meta.get("tokenizer.ggml.model")
        if model != "gpt2":
            raise ValueError(f"tokenizer model {model!r} is not byte-level BPE ('gpt2')")
        return cls(
            meta["tokenizer.ggml.tokens"],
            meta.get("tokenizer.ggml.merges", []),
            meta.get("tokenizer.ggml.token_type"),
            int(meta.get("tokenizer.ggml.bos_token_id", -1)),
            int(meta.get("tokenizer.ggml.eos_token_id", -1)),
            name or f"{meta.get('general.name', 'gguf')} bpe",
        )

    @classmethod
    def from_gguf(cls, path: str | Path) -> BpeTokenizer:
        """Read only the tokenizer of a GGUF file."""
        from .gguf_header import read_header

        return cls.from_metadata(read_header(path)[0])

    # --- Tokenizer protocol -------------------------------------------------------------

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text``, int32, shape (n,); lossless."""
        return np.array(self._tok.encode(text, add_special_tokens=False).ids, np.int32)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of a run of ids; a byte sequence that is not valid UTF-8 becomes U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def piece(self, token_id: int) -> str:
        """Text of one token (U+FFFD where it holds only part of a character)."""
        return self.token_bytes(token_id).decode("utf-8", errors="replace")

    # --- extras --------------------------------------------------------------------------

    def token_bytes(self, token_id: int) -> bytes:
        """The raw bytes one token stands for."""
        i = int(token_id)
        return self._blob[self._offsets[i] : self._offsets[i + 1]]

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        blob, off = self._blob, self._offsets
        return b"".join([blob[off[i] : off[i + 1]] for i in ids])

    def decode_stream(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` without a trailing incomplete UTF-8 character.

        For streaming: decode the accumulated ids each time; a character whose bytes
        are split across tokens appears once its last byte has arrived.
        """
        data = self.decode_bytes(ids)
        for cut in range(0, min(4, len(data)) + 1):
            try:
                return data[: len(data) - cut].decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.start < len(data) - 4:
                    break  # invalid in the middle: not a truncation problem
        return data.decode("utf-8", errors="replace")

    def is_special(self, token_id: int) -> bool:
        """True for control / user-defined tokens such as ``<|endoftext|>``."""
        return bool(self._special[token_id])

    def ids_with_prefix(self, prefix: str | bytes) -> np.ndarray:
        """Ids of ordinary tokens whose bytes start with ``prefix`` (int32, sorted by bytes).

        Used for token healing: drop the prompt's last token and constrain the first
        generated token to ones that re-type its text.
        """
        p = prefix.encode("utf-8") if isinstance(prefix, str) else prefix
        ids = self._sorted_ids
        lo = bisect.bisect_left(ids, p, key=self.token_bytes)
        # Every key starting with p sorts before p with its last non-0xff byte incremented.
        stem = p.rstrip(b"\xff")
        if not stem:
            return ids[lo:].copy()
        end = stem[:-1] + bytes([stem[-1] + 1])
        hi = bisect.bisect_left(ids, end, lo, key=self.token_bytes)
        return ids[lo:hi].copy()
