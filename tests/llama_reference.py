"""A plain NumPy float32 llama forward pass: the reference the Numba kernels are tested against.

Weights are dequantized straight from the GGUF with ``gguf.quants`` (not through
sparkls' int8 re-quantization), matrix products go to NumPy's BLAS. It keeps a KV
cache so it can also be timed as a decode baseline (bench/decode.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

from sparkls.decode.neural.loader import read_config, rope_tables


class ReferenceLlama:
    """fp32 llama with a KV cache; ``forward(tokens, pos0)`` returns logits (T, V)."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        reader = GGUFReader(path)
        self.cfg = cfg = read_config(reader, path)
        t = {x.name: x for x in reader.tensors}

        def f32(name: str) -> np.ndarray:
            x = t[name]
            return np.ascontiguousarray(dequantize(np.asarray(x.data), x.tensor_type), np.float32).reshape(
                [int(d) for d in reversed(x.shape)]
            )

        self.emb = f32("token_embd.weight")  # (V, D)
        self.out = f32("output.weight") if "output.weight" in t else self.emb
        self.out_norm = f32("output_norm.weight")
        self.layers = []
        for i in range(cfg.n_layers):
            p = f"blk.{i}."
            self.layers.append(
                {k: f32(p + k + ".weight") for k in ("attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")}
            )
        self.cos, self.sin = rope_tables(cfg)
        kv = cfg.n_kv_heads * cfg.head_size
        self.k = np.zeros((cfg.n_layers, cfg.max_ctx, kv), np.float32)
        self.v = np.zeros((cfg.n_layers, cfg.max_ctx, kv), np.float32)

    def rmsnorm(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.cfg.rms_eps) * w

    def rope(self, x: np.ndarray, pos: np.ndarray, n_heads: int) -> np.ndarray:
        """Rotate adjacent pairs of each head; x (T, n_heads*hs), pos (T,)."""
        T, hs = x.shape[0], self.cfg.head_size
        x = x.reshape(T, n_heads, hs // 2, 2)
        c, s = self.cos[pos][:, None, :], self.sin[pos][:, None, :]
        a, b = x[..., 0], x[..., 1]
        return np.stack([a * c - b * s, a * s + b * c], axis=-1).reshape(T, n_heads * hs)

    def forward(self, tokens, pos0: int = 0, n_logits: int | None = None) -> np.ndarray:
        """Logits (n_logits or T, V) of the last rows of tokens at positions pos0..; the cache beyond pos0 is overwritten."""
        cfg = self.cfg
        tokens = np.asarray(tokens)
        T, hs = len(tokens), cfg.head_size
        pos = np.arange(pos0, pos0 + T)
        x = self.emb[tokens].astype(np.float32)
        kv_mul = cfg.n_heads // cfg.n_kv_heads
        causal = np.triu(np.full((T, pos0 + T), -np.inf, np.float32), k=pos0 + 1)
        for i, L in enumerate(self.layers):
            h = self.rmsnorm(x, L["attn_norm"])
            q = self.rope(h @ L["attn_q"].T, pos, cfg.n_heads)
            self.k[i, pos] = self.rope(h @ L["attn_k"].T, pos, cfg.n_kv_heads)
            self.v[i, pos] = h @ L["attn_v"].T
            keys, values = self.k[i, : pos0 + T], self.v[i, : pos0 + T]
            att = np.empty((T, cfg.dim), np.float32)
            for head in range(cfg.n_heads):
                kvh = head // kv_mul
                qh = q[:, head * hs : (head + 1) * hs]
                kh = keys[:, kvh * hs : (kvh + 1) * hs]
                vh = values[:, kvh * hs : (kvh + 1) * hs]
                s = qh @ kh.T / np.float32(np.sqrt(hs)) + causal
                s = np.exp(s - s.max(axis=1, keepdims=True))
                att[:, head * hs : (head + 1) * hs] = (s / s.sum(axis=1, keepdims=True)) @ vh
            x = x + att @ L["attn_output"].T
            h = self.rmsnorm(x, L["ffn_norm"])
            g = h @ L["ffn_gate"].T
            x = x + ((g / (1.0 + np.exp(-g))) * (h @ L["ffn_up"].T)) @ L["ffn_down"].T
        x = x if n_logits is None else x[T - n_logits :]
        return self.rmsnorm(x, self.out_norm) @ self.out.T


def set_blas_threads(n: int) -> int:
    """Set the thread count of every OpenBLAS loaded in this process; returns how many were found.

    The decode core itself uses no BLAS; this reference is all BLAS, and the benchmark
    gives it both cores (OpenBLAS threads spinning against Numba's made decoding 3-70x
    slower on 2 cores when attention still ran on BLAS, measured).
    """
    import ctypes

    found = 0
    try:
        with open("/proc/self/maps") as maps:
            libs = {line.split()[-1] for line in maps if "openblas" in line}
    except OSError:
        return 0
    for lib in libs:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_", "openblas_set_num_threads"):
            fn = getattr(handle, name, None)
            if fn is not None:
                fn(n)
                found += 1
                break
    return found
