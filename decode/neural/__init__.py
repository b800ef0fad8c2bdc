"""sparkls.decode.neural: the transformer core (SmolLM2 read from its GGUF, run by Numba kernels)."""
