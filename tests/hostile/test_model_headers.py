"""Model file headers cannot drive allocations: sizes are checked against the file before anything is allocated."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest

from tiny_gguf import write_tiny_llama

from sparkls.decode.neural.gguf_header import ModelLoadError  # noqa: E402
from sparkls.decode.neural.loader import MAX_POSITIONS, load_gguf  # noqa: E402


def patch_u32(path: Path, key: str, value: int) -> None:
    """Overwrite a u32 metadata value in place (key string, then type 4, then the value)."""
    data = bytearray(path.read_bytes())
    at = data.index(key.encode()) + len(key)
    assert struct.unpack_from("<I", data, at)[0] == 4  # GGUF type u32
    struct.pack_into("<I", data, at + 4, value)
    path.write_bytes(bytes(data))


def peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 1e6


def test_huge_context_length_does_not_size_the_rope_tables(tmp_path) -> None:
    """Ensure context_length 8e6 loads with RoPE tables of at most MAX_POSITIONS rows (not 2 GB)."""
    path = write_tiny_llama(tmp_path / "ctx.gguf")
    patch_u32(path, "llama.context_length", 8_000_000)
    loaded = []
    assert peak_mb(lambda: loaded.append(load_gguf(path))) < 100
    assert loaded[0].config.max_ctx == MAX_POSITIONS
    assert loaded[0].weights.rope_cos.shape[0] == MAX_POSITIONS


@pytest.mark.parametrize("key, value, message", [
    ("llama.block_count", 100_000, "block_count 100000 needs"),
    ("llama.block_count", 3, "block_count 3 needs 29 tensors"),
    ("llama.embedding_length", 64 * 4096, "rope.dimension_count"),
    ("llama.feed_forward_length", 1 << 30, "has shape"),
])
def test_impossible_headers_fail_before_allocating(tmp_path, key, value, message) -> None:
    """Ensure a header promising more blocks or bigger tensors than the file holds fails cleanly, allocating little."""
    path = write_tiny_llama(tmp_path / "bad.gguf")
    patch_u32(path, key, value)

    def load() -> None:
        with pytest.raises(ModelLoadError, match=message):
            load_gguf(path)

    assert peak_mb(load) < 20
