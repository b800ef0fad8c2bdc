"""Load a llama-architecture GGUF: check it, then convert its tensors to the kernels' layout.

:func:`load_gguf` reads the header (:mod:`.gguf_header`), validates the hyper-parameters
(:func:`read_config`) and every tensor's shape and extent against the file
(:func:`check_tensors`) before anything is allocated, then converts each weight matrix to
the row-interleaved blocks of :mod:`.blocks`, releasing the file pages as it goes.

Per layer, Q/K/V are fused into one matrix and gate/up into another, so a layer is
four matrix products (fewer parallel launches, better load balance across threads); a
fused matrix whose parts are not all 4-bit is stored as Q8_0.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .blocks import GROUP, HALF, QBLOCK, Q4_0, Q4_1, copy_blocks, empty_blocks, interleave
from .gguf_header import ModelLoadError, read_header

MAX_POSITIONS = 32768  # RoPE positions tabled at most: well past any session's window (2k tokens)


class Config(NamedTuple):
    """Hyper-parameters of a llama model (all read from GGUF metadata)."""

    dim: int  # width of the residual stream (embedding_length)
    hidden_dim: int  # width of the SwiGLU feed-forward layer
    n_layers: int  # transformer blocks
    n_heads: int  # query heads
    n_kv_heads: int  # key/value heads (grouped-query attention: n_heads % n_kv_heads == 0)
    head_size: int  # dim // n_heads
    vocab_size: int  # rows of the embedding / LM head
    max_ctx: int  # positions the RoPE tables cover (the model's context_length)
    rope_base: float  # RoPE theta base (llama.rope.freq_base)
    rms_eps: float  # RMSNorm epsilon


class Weights(NamedTuple):
    """All weights (block layouts in the module docstring); L layers, D dim, F hidden, KV = n_kv_heads * head_size."""

    emb_q: np.ndarray  # (V/8, D/32, 16 or 8, 8) uint16 token embeddings, row-interleaved
    emb_d: np.ndarray  # (V/8, D/32, 8) uint16 fp16 scales
    emb_m: np.ndarray  # (V/8, D/32, 8 or 0) uint16 fp16 minimums
    out_q: np.ndarray  # LM head, as emb_*; the same arrays when embeddings are tied
    out_d: np.ndarray
    out_m: np.ndarray
    attn_norm: np.ndarray  # (L, D) float32 RMSNorm gains before attention
    wqkv_q: np.ndarray  # (L, (D + 2*KV)/8, ...) rows of Wq, then Wk, then Wv
    wqkv_d: np.ndarray
    wqkv_m: np.ndarray
    wo_q: np.ndarray  # (L, D/8, ...) attention output projection
    wo_d: np.ndarray
    wo_m: np.ndarray
    ffn_norm: np.ndarray  # (L, D) float32 RMSNorm gains before the feed-forward
    w13_q: np.ndarray  # (L, 2F/8, ...) rows of W_gate (w1), then W_up (w3)
    w13_d: np.ndarray
    w13_m: np.ndarray
    w2_q: np.ndarray  # (L, D/8, ...) down projection, F inputs
    w2_d: np.ndarray
    w2_m: np.ndarray
    out_norm: np.ndarray  # (D,) float32 final RMSNorm gains
    rope_cos: np.ndarray  # (max_ctx, head_size/2) float32 cos(pos * theta_i)
    rope_sin: np.ndarray  # (max_ctx, head_size/2) float32 sin(pos * theta_i)
    half: np.ndarray  # (65536,) float32 value of every fp16 bit pattern (HALF)


class LoadedModel(NamedTuple):
    """What :func:`load_gguf` returns."""

    path: Path
    config: Config
    weights: Weights
    metadata: dict  # scalar metadata plus tokenizer lists (tokens, token_type, merges)


def _field(header, key: str, path: Path, default=None):
    if hasattr(header, "fields"):  # a gguf.GGUFReader (the tests' reference model reads with one)
        field = header.fields.get(key)
        value = None if field is None else field.contents()
    else:
        value = header.get(key)
    if value is None:
        if default is not None:
            return default
        raise ModelLoadError(f"{path}: missing GGUF metadata key {key!r}")
    return value


def read_config(header, path: Path) -> Config:
    """The :class:`Config` of a GGUF's metadata (:func:`read_header` values, or a ``GGUFReader``), validated."""
    arch = _field(header, "general.architecture", path)
    if arch != "llama":
        raise ModelLoadError(f"{path}: architecture {arch!r} is not supported (only 'llama')")
    dim = int(_field(header, "llama.embedding_length", path))
    n_heads = int(_field(header, "llama.attention.head_count", path))
    n_kv = int(_field(header, "llama.attention.head_count_kv", path, n_heads))
    hidden = int(_field(header, "llama.feed_forward_length", path))
    vocab = int(_field(header, "llama.vocab_size", path, 0) or len(_field(header, "tokenizer.ggml.tokens", path, ())))
    cfg = Config(
        dim=dim,
        hidden_dim=hidden,
        n_layers=int(_field(header, "llama.block_count", path)),
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_size=dim // max(n_heads, 1),
        vocab_size=vocab,
        # RoPE tables cover this many positions: the model's context, but never more than any
        # session can use (a header saying 8M positions must not cost 2 GB of tables).
        max_ctx=min(int(_field(header, "llama.context_length", path)), MAX_POSITIONS),
        rope_base=float(_field(header, "llama.rope.freq_base", path, 10000.0)),
        rms_eps=float(_field(header, "llama.attention.layer_norm_rms_epsilon", path, 1e-5)),
    )
    problems = []
    if n_heads <= 0 or dim % n_heads or cfg.head_size % 8:
        problems.append(f"dim {dim} is not n_heads {n_heads} x a head size that is a multiple of 8 (attention's vectors)")
    if n_kv <= 0 or n_heads % n_kv:
        problems.append(f"n_heads {n_heads} is not a multiple of n_kv_heads {n_kv}")
    if dim % QBLOCK or hidden % QBLOCK:
        problems.append(f"dim {dim} and hidden {hidden} must be multiples of {QBLOCK}")
    if vocab <= 0 or cfg.n_layers <= 0 or cfg.max_ctx <= 0:
        problems.append("vocab_size, block_count and context_length must be positive")
    rope_dims = _field(header, "llama.rope.dimension_count", path, -1)
    if rope_dims != -1 and int(rope_dims) != cfg.head_size:
        problems.append("partial RoPE (rope.dimension_count != head size) is not supported")
    if problems:
        raise ModelLoadError(f"{path}: " + "; ".join(problems))
    return cfg


def check_tensors(index: dict, cfg: Config, path: Path, file_size: int) -> None:
    """Every tensor the config implies is in the file with its shape, and together they fit
    in it: checked on the header alone, before anything is allocated (a header claiming
    100k blocks must fail here, not after asking for 26 GiB)."""
    D, F, V = cfg.dim, cfg.hidden_dim, cfg.vocab_size
    KV = cfg.n_kv_heads * cfg.head_size
    layer_tensors = 9
    if cfg.n_layers * layer_tensors + 2 > len(index):
        raise ModelLoadError(f"{path}: block_count {cfg.n_layers} needs {cfg.n_layers * layer_tensors + 2} tensors, "
                             f"the file has {len(index)}")
    want = {"token_embd.weight": (D, V), "output_norm.weight": (D,)}
    if "output.weight" in index:
        want["output.weight"] = (D, V)
    for i in range(cfg.n_layers):
        for name, shape in (("attn_q", (D, D)), ("attn_k", (D, KV)), ("attn_v", (D, KV)), ("attn_output", (D, D)),
                            ("ffn_gate", (D, F)), ("ffn_up", (D, F)), ("ffn_down", (F, D)),
                            ("attn_norm", (D,)), ("ffn_norm", (D,))):
            want[f"blk.{i}.{name}.weight"] = shape
    total = 0
    for name, shape in want.items():
        entry = index.get(name)
        if entry is None:
            raise ModelLoadError(f"{path}: missing tensor {name!r}")
        if tuple(int(x) for x in entry[1]) != shape:
            raise ModelLoadError(f"{path}: tensor {name!r} has shape {tuple(entry[1])}, expected {shape}")
        offset, n_bytes = entry[2], entry[3]
        if offset < 0 or n_bytes <= 0 or offset + n_bytes > file_size:
            raise ModelLoadError(f"{path}: tensor {name!r} lies outside the file")
        total += n_bytes
    if total > file_size:  # tensors sharing bytes would multiply what is allocated
        raise ModelLoadError(f"{path}: the header's tensors need {total} bytes, the file holds {file_size}")


def rope_tables(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin of ``pos * base**(-2i/head_size)``, shape (max_ctx, head_size/2) float32 each."""
    half = cfg.head_size // 2
    theta = cfg.rope_base ** (-np.arange(half, dtype=np.float64) * 2.0 / cfg.head_size)
    angles = np.arange(cfg.max_ctx, dtype=np.float64)[:, None] * theta[None, :]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


class _Tensor(NamedTuple):
    """One tensor of the file: ggml type, ggml shape (cols first) and its bytes as (rows, row_bytes)."""

    name: str
    tensor_type: int
    shape: tuple
    data: np.ndarray


def load_gguf(path: str | Path) -> LoadedModel:
    """Read, validate and convert a llama GGUF.

    The header is parsed by our own :func:`~.gguf_header.read_header` (not ``gguf.GGUFReader``),
    and the file pages of each converted tensor are released, so peak RSS stays near the
    size of the converted weights. Loading also fixes glibc's mmap threshold for
    the process (:func:`_map_large_blocks`).

    Raises
    ------
    ModelLoadError
        if the file is missing, unreadable or inconsistent; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    _map_large_blocks()
    metadata, index = read_header(path)
    try:
        cfg = read_config(metadata, path)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: bad GGUF metadata ({type(exc).__name__}: {exc})") from exc
    check_tensors(index, cfg, path, path.stat().st_size)
    try:
        weights = _read_weights(_TensorFile(path, index), cfg, path)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{path}: failed to load weights ({type(exc).__name__}: {exc})") from exc
    return LoadedModel(path, cfg, weights, metadata)


MMAP_THRESHOLD = 4 << 20  # bytes: glibc malloc serves blocks this large from their own mappings
TRIM_THRESHOLD = 16 << 20  # bytes of free heap top glibc keeps before giving pages back


def _map_large_blocks() -> None:
    """Make glibc malloc serve every block of 4 MB or more from its own mapping, for good.

    By default the threshold adapts: freeing a mapped block raises it to that block's size
    (up to 32 MB), and loading frees many. Every session's 12.6 MB logits buffer then came
    from the heap, where ``calloc`` writes all of it (prefill touches one row), and a
    dropped session's buffers stayed resident as holes: 22 MB of ``bench/decode.py``'s
    peak and 12.6 MB per live session in the server (measured). A mapped block is touched
    only where written and goes back to the OS when freed.

    Fixing the mmap threshold also fixes the heap-top trim threshold. At 4 MB the top rose
    and fell with verification's logits copies (T x 196 KB, T varying) and speculative
    decoding took 20-27 page faults per token instead of 11 (the KV cache filling); at
    16 MB it is back to 11-13 and the benchmark's peak RSS is the same (measured).

    Process-wide, set by the model loader because the decode core's buffers need it.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, TRIM_THRESHOLD)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


class _TensorFile:
    """Tensors of a GGUF file read through one read-only memory map."""

    def __init__(self, path: Path, index: dict) -> None:
        self.path = path
        self.index = index
        self.map = np.memmap(path, np.uint8, mode="r")

    def get(self, name: str) -> _Tensor | None:
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

        entry = self.index.get(name)
        if entry is None:
            return None
        ttype, shape, offset, n_bytes = entry
        rows = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
        row_bytes = shape[0] // block * size
        if offset + n_bytes > self.map.shape[0] or rows * row_bytes != n_bytes:
            raise ModelLoadError(f"{self.path}: tensor {name!r} lies outside the file or has a bad size")
        data = self.map[offset : offset + n_bytes].reshape(rows, row_bytes)
        if ttype == GGMLQuantizationType.F32:
            data = data.view(np.float32)
        elif ttype == GGMLQuantizationType.F16:
            data = data.view(np.float16)
        return _Tensor(name, GGMLQuantizationType(ttype), shape, data)

    def release(self) -> None:
        """Drop the file pages read so far from this process's RSS (they stay in the page cache)."""
        try:
            self.map._mmap.madvise(mmap.MADV_DONTNEED)
        except (AttributeError, OSError, ValueError):
            pass


def _read_weights(tensors: _TensorFile, cfg: Config, path: Path) -> Weights:
    D, F, L, V = cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.vocab_size
    KV = cfg.n_kv_heads * cfg.head_size

    def need(name: str, cols: int, rows: int | None):
        t = tensors.get(name)
        if t is None:
            raise ModelLoadError(f"{path}: missing tensor {name!r}")
        tensors.release()
        # GGUF shapes are in ggml order: (cols, rows) for a matrix, (n,) for a vector.
        shape = tuple(int(x) for x in t.shape)
        want = (cols,) if rows is None else (cols, rows)
        if shape != want:
            raise ModelLoadError(f"{path}: tensor {name!r} has shape {shape}, expected {want}")
        return t

    def vector(name: str, n: int) -> np.ndarray:
        t = need(name, n, None)
        from gguf import GGMLQuantizationType as Q
        from gguf.quants import dequantize as dequantize_gguf  # not this module's dequantize

        data = np.asarray(t.data)
        if t.tensor_type not in (Q.F32, Q.F16):
            data = dequantize_gguf(data, t.tensor_type)
        return np.ascontiguousarray(data, np.float32).reshape(n)

    def matrices(rows: int, cols: int, names_per_layer: list[tuple[str, int]]):
        types = {tensors.index[f"blk.{i}.{name}.weight"][0] for i in range(L) for name, _ in names_per_layer
                 if f"blk.{i}.{name}.weight" in tensors.index}  # fmt: skip
        four_bit = types <= {Q4_0, Q4_1}
        G, nb = -(-rows // GROUP), cols // QBLOCK
        out = (np.empty((L, G, nb, 8 if four_bit else 16, GROUP), np.uint16), np.empty((L, G, nb, GROUP), np.uint16),
               np.empty((L, G, nb, GROUP if four_bit else 0), np.uint16))  # fmt: skip
        for layer in range(L):  # one layer's plain blocks at a time: load never holds two copies of a matrix stack
            q, d, m = empty_blocks((rows,), cols, four_bit)
            r0 = 0
            for name, n_rows in names_per_layer:
                t = need(f"blk.{layer}.{name}.weight", cols, n_rows)
                r1 = r0 + n_rows
                copy_blocks(t, q[r0:r1], d[r0:r1], m[r0:r1])
                r0 = r1
            for whole, part in zip(out, interleave(q, d, m)):
                whole[layer] = part
        return out

    def table(name: str):
        t = need(name, D, V)
        q, d, m = empty_blocks((V,), D, four_bit=t.tensor_type in (Q4_0, Q4_1))
        copy_blocks(t, q, d, m)
        return interleave(q, d, m)

    emb = table("token_embd.weight")
    out = table("output.weight") if "output.weight" in tensors.index else emb  # tied: the LM head is the embedding matrix
    wqkv = matrices(D + 2 * KV, D, [("attn_q", D), ("attn_k", KV), ("attn_v", KV)])
    wo = matrices(D, D, [("attn_output", D)])
    w13 = matrices(2 * F, D, [("ffn_gate", F), ("ffn_up", F)])
    w2 = matrices(D, F, [("ffn_down", D)])
    attn_norm = np.stack([vector(f"blk.{i}.attn_norm.weight", D) for i in range(L)])
    ffn_norm = np.stack([vector(f"blk.{i}.ffn_norm.weight", D) for i in range(L)])
    cos, sin = rope_tables(cfg)
    return Weights(*emb, *out, attn_norm, *wqkv, *wo, ffn_norm, *w13, *w2, vector("output_norm.weight", D), cos, sin, HALF)
