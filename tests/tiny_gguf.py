"""Write a tiny random-weight llama GGUF (same keys as SmolLM2's) for fast tests.

The vocabulary is GPT-2 byte-level: 3 control tokens, the 256 byte tokens and a few
merges, so the BPE tokenizer round-trips any text. Weights are random but scaled so
logits are peaked (few near-ties), which keeps argmax comparisons meaningful.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize

from sparkls.decode.neural.bpe import byte_decoder

CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "Ġ"), ("ĠĠ", "ĠĠ"), ("d", "e"), ("de", "f"), ("r", "e"), ("Ċ", "ĠĠĠĠ")]


def tiny_vocab() -> tuple[list[str], list[int], list[str]]:
    """(tokens, token types, merges) of the tiny byte-level vocabulary."""
    byte_chars = sorted(byte_decoder(), key=lambda c: byte_decoder()[c])
    tokens = CONTROL_TOKENS + byte_chars + [a + b for a, b in MERGES]
    types = [3] * len(CONTROL_TOKENS) + [1] * (len(tokens) - len(CONTROL_TOKENS))
    return tokens, types, [f"{a} {b}" for a, b in MERGES]


def write_tiny_llama(
    path: str | Path,
    qtype: str = "F32",
    seed: int = 0,
    dim: int = 64,
    hidden_dim: int = 128,
    n_layers: int = 2,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    context_length: int = 256,
    tied: bool = True,
    overrides: dict[str, str] | None = None,
) -> Path:
    """Write the model; ``qtype`` is the type of the 2-D weights (F32, F16, Q8_0, Q4_0, Q4_1),
    ``overrides`` the type of single tensors by name part (e.g. ``{"attn_v": "Q8_0"}``)."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    tokens, types, merges = tiny_vocab()
    vocab = len(tokens)
    hs = dim // n_heads
    kv = n_kv_heads * hs
    w = GGUFWriter(str(path), "llama")
    w.add_name("tiny random llama")
    w.add_block_count(n_layers)
    w.add_context_length(context_length)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(hidden_dim)
    w.add_head_count(n_heads)
    w.add_head_count_kv(n_kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_rope_dimension_count(hs)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)

    default = GGMLQuantizationType[qtype]

    def matrix(name: str, rows: int, cols: int, std: float) -> None:
        m = (rng.standard_normal((rows, cols)) * std).astype(np.float32)
        kind = next((GGMLQuantizationType[t] for part, t in (overrides or {}).items() if part in name), default)
        if kind == GGMLQuantizationType.F32:
            w.add_tensor(name, m)
        elif kind == GGMLQuantizationType.F16:
            w.add_tensor(name, m.astype(np.float16))
        else:
            w.add_tensor(name, quantize(m, kind), raw_dtype=kind)

    def vector(name: str, n: int) -> None:
        w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32))

    matrix("token_embd.weight", vocab, dim, 1.0)
    if not tied:
        matrix("output.weight", vocab, dim, 1.0)
    vector("output_norm.weight", dim)
    for i in range(n_layers):
        vector(f"blk.{i}.attn_norm.weight", dim)
        vector(f"blk.{i}.ffn_norm.weight", dim)
        matrix(f"blk.{i}.attn_q.weight", dim, dim, 1.0 / np.sqrt(dim))
        matrix(f"blk.{i}.attn_k.weight", kv, dim, 1.0 / np.sqrt(dim))
        matrix(f"blk.{i}.attn_v.weight", kv, dim, 1.0 / np.sqrt(dim))
        matrix(f"blk.{i}.attn_output.weight", dim, dim, 1.0 / np.sqrt(dim))
        matrix(f"blk.{i}.ffn_gate.weight", hidden_dim, dim, 1.0 / np.sqrt(dim))
        matrix(f"blk.{i}.ffn_up.weight", hidden_dim, dim, 1.0 / np.sqrt(dim))
        matrix(f"blk.{i}.ffn_down.weight", dim, hidden_dim, 1.0 / np.sqrt(hidden_dim))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
