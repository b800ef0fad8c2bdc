"""The first-run notice of `sparkls complete` / `race`: it depends on Numba's cache holding the forward pass."""

from __future__ import annotations

from sparkls.decode.neural import compiled


def test_kernels_cached_follows_numba_cache_dir(tmp_path, monkeypatch) -> None:
    """Ensure an empty cache reads as not compiled and one with the forward pass's index as compiled."""
    monkeypatch.setattr(compiled, "__file__", str(tmp_path / "src" / "compiled.py"))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache" / "neural_x").mkdir(parents=True)
    assert not compiled.kernels_cached()
    (tmp_path / "cache" / "neural_x" / "llama.rmsnorm-50.py311.nbi").write_bytes(b"")
    assert not compiled.kernels_cached()  # a partial compile does not count
    (tmp_path / "cache" / "neural_x" / "llama.forward-272.py311.nbi").write_bytes(b"")
    assert compiled.kernels_cached()
