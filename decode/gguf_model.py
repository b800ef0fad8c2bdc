"""Load a llama-architecture GGUF into the int8-block layout the Numba kernels stream.

Every weight matrix becomes ``q`` (rows, cols) int8 plus ``s`` (rows, cols // 32)
float32: one scale per block of 32 consecutive inputs, ``w[r, c] = q[r, c] * s[r, c // 32]``.
Q8_0 tensors map straight onto that layout (their fp16 scales are widened, since
Numba has no float16); every other type is dequantized with ``gguf.quants`` and
re-quantized, a few thousand rows at a time so the float32 copy never exists whole.
Q4_1 nibbles would be smaller, but their unpacking loop does not vectorize (decode.md §5).

Per layer, Q/K/V are fused into one matrix and gate/up into another, so a layer is
four matrix products (fewer parallel launches, better load balance across threads).
"""

from __future__ import annotations

import gc
import mmap
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit

QBLOCK = 32  # inputs per int8 block (and per scale)
_ROW_CHUNK = 512  # rows converted at a time: bounds the float32 temporaries to a few MB


class ModelLoadError(Exception):
    """The model file is missing, unreadable, not llama, or has inconsistent shapes."""


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
    """All weights, int8 blocks with float32 scales; L layers, D dim, F hidden, KV = n_kv_heads * head_size."""

    emb_q: np.ndarray  # (V, D) int8 token embeddings
    emb_s: np.ndarray  # (V, D/32) float32
    out_q: np.ndarray  # (V, D) int8 LM head; the same arrays as emb_* when embeddings are tied
    out_s: np.ndarray  # (V, D/32) float32
    attn_norm: np.ndarray  # (L, D) float32 RMSNorm gains before attention
    wqkv_q: np.ndarray  # (L, D + 2*KV, D) int8: rows of Wq, then Wk, then Wv
    wqkv_s: np.ndarray  # (L, D + 2*KV, D/32) float32
    wo_q: np.ndarray  # (L, D, D) int8 attention output projection
    wo_s: np.ndarray  # (L, D, D/32) float32
    ffn_norm: np.ndarray  # (L, D) float32 RMSNorm gains before the feed-forward
    w13_q: np.ndarray  # (L, 2F, D) int8: rows of W_gate (w1), then W_up (w3)
    w13_s: np.ndarray  # (L, 2F, D/32) float32
    w2_q: np.ndarray  # (L, D, F) int8 down projection
    w2_s: np.ndarray  # (L, D, F/32) float32
    out_norm: np.ndarray  # (D,) float32 final RMSNorm gains
    rope_cos: np.ndarray  # (max_ctx, head_size/2) float32 cos(pos * theta_i)
    rope_sin: np.ndarray  # (max_ctx, head_size/2) float32 sin(pos * theta_i)


class LoadedModel(NamedTuple):
    """What :func:`load_gguf` returns."""

    path: Path
    config: Config
    weights: Weights
    metadata: dict  # scalar metadata plus tokenizer lists (tokens, token_type, merges)


# --- quantization ----------------------------------------------------------------------


def quantize_blocks(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantization per block of 32 inputs.

    Parameters
    ----------
    w : float32 array, shape (rows, cols), cols % 32 == 0

    Returns
    -------
    q : int8 array, shape (rows, cols)
    s : float32 array, shape (rows, cols // 32); ``w ~= q * s`` blockwise
    """
    rows, cols = w.shape
    blocks = w.reshape(rows, cols // QBLOCK, QBLOCK)
    amax = np.abs(blocks).max(axis=2)
    s = (amax / 127.0).astype(np.float32)
    inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)
    q = np.rint(blocks * inv[:, :, None]).astype(np.int8)
    return q.reshape(rows, cols), s


@njit(cache=True)
def _requantize_f32(w, q_out, s_out):
    """float32 (rows, cols) -> int8 blocks; same numbers as :func:`quantize_blocks`, without temporaries."""
    rows, cols = w.shape
    for r in range(rows):
        for b in range(cols // 32):
            amax = np.float32(0.0)
            for j in range(32):
                amax = max(amax, abs(w[r, b * 32 + j]))
            scale = np.float32(amax / np.float32(127.0))
            inv = np.float32(1.0) / scale if scale > 0 else np.float32(0.0)
            s_out[r, b] = scale
            for j in range(32):
                q_out[r, b * 32 + j] = np.int8(np.rint(w[r, b * 32 + j] * inv))


@njit(cache=True)
def _requantize_q4_1(raw, d, m, q_out, s_out):
    """Q4_1 blocks -> int8 blocks.

    raw : uint8 (rows, nb * 20); a block is fp16 d, fp16 m, then 16 bytes whose low
    nibbles are elements 0..15 and high nibbles elements 16..31; ``w = d * nibble + m``.
    d, m : float32 (rows, nb), the fp16 fields widened in NumPy (Numba has no float16).
    """
    rows, nb = d.shape
    w = np.empty(32, np.float32)
    for r in range(rows):
        for b in range(nb):
            base = b * 20 + 4
            for j in range(16):
                byte = raw[r, base + j]
                w[j] = d[r, b] * np.float32(byte & 15) + m[r, b]
                w[j + 16] = d[r, b] * np.float32(byte >> 4) + m[r, b]
            amax = np.float32(0.0)
            for j in range(32):
                amax = max(amax, abs(w[j]))
            scale = np.float32(amax / np.float32(127.0))
            inv = np.float32(1.0) / scale if scale > 0 else np.float32(0.0)
            s_out[r, b] = scale
            for j in range(32):
                q_out[r, b * 32 + j] = np.int8(np.rint(w[j] * inv))


def dequantize_blocks(q: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Inverse of :func:`quantize_blocks`: (rows, cols) float32."""
    rows, cols = q.shape
    return (q.reshape(rows, cols // QBLOCK, QBLOCK) * s[:, :, None]).reshape(rows, cols).astype(np.float32)


def _convert_into(tensor, q_out: np.ndarray, s_out: np.ndarray) -> None:
    """Write one GGUF tensor (rows, cols) into int8 blocks ``q_out`` and scales ``s_out``."""
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import dequantize

    data = tensor.data
    rows = q_out.shape[0]
    if tensor.tensor_type == Q.Q8_0:
        # Q8_0 block: fp16 scale then 32 int8 values (34 bytes); same layout as ours.
        blocks = np.asarray(data).reshape(rows, -1, 34)
        for r0 in range(0, rows, _ROW_CHUNK):
            b = blocks[r0 : r0 + _ROW_CHUNK]
            s_out[r0 : r0 + len(b)] = b[:, :, :2].copy().view(np.float16)[:, :, 0].astype(np.float32)
            q_out[r0 : r0 + len(b)] = b[:, :, 2:].view(np.int8).reshape(len(b), -1)
        return
    if tensor.tensor_type == Q.Q4_1:
        blocks = np.asarray(data).reshape(rows, -1, 20)
        for r0 in range(0, rows, _ROW_CHUNK):
            b = blocks[r0 : r0 + _ROW_CHUNK]
            d = b[:, :, 0:2].copy().view(np.float16)[:, :, 0].astype(np.float32)
            m = b[:, :, 2:4].copy().view(np.float16)[:, :, 0].astype(np.float32)
            raw = np.ascontiguousarray(b.reshape(len(b), -1))
            _requantize_q4_1(raw, d, m, q_out[r0 : r0 + len(b)], s_out[r0 : r0 + len(b)])
        return
    for r0 in range(0, rows, _ROW_CHUNK):
        chunk = np.asarray(data[r0 : r0 + _ROW_CHUNK])
        w = chunk if tensor.tensor_type in (Q.F32, Q.F16) else dequantize(chunk, tensor.tensor_type)
        w = np.ascontiguousarray(w, np.float32).reshape(len(chunk), -1)
        _requantize_f32(w, q_out[r0 : r0 + len(w)], s_out[r0 : r0 + len(w)])


# --- loading ---------------------------------------------------------------------------


def _field(reader, key: str, path: Path, default=None):
    field = reader.fields.get(key)
    if field is None:
        if default is not None:
            return default
        raise ModelLoadError(f"{path}: missing GGUF metadata key {key!r}")
    return field.contents()


def read_config(reader, path: Path) -> Config:
    """The :class:`Config` of a GGUF reader, validated."""
    arch = _field(reader, "general.architecture", path)
    if arch != "llama":
        raise ModelLoadError(f"{path}: architecture {arch!r} is not supported (only 'llama')")
    dim = int(_field(reader, "llama.embedding_length", path))
    n_heads = int(_field(reader, "llama.attention.head_count", path))
    n_kv = int(_field(reader, "llama.attention.head_count_kv", path, n_heads))
    hidden = int(_field(reader, "llama.feed_forward_length", path))
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = int(_field(reader, "llama.vocab_size", path, len(tokens.data) if tokens else 0))
    cfg = Config(
        dim=dim,
        hidden_dim=hidden,
        n_layers=int(_field(reader, "llama.block_count", path)),
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_size=dim // max(n_heads, 1),
        vocab_size=vocab,
        max_ctx=int(_field(reader, "llama.context_length", path)),
        rope_base=float(_field(reader, "llama.rope.freq_base", path, 10000.0)),
        rms_eps=float(_field(reader, "llama.attention.layer_norm_rms_epsilon", path, 1e-5)),
    )
    problems = []
    if n_heads <= 0 or dim % n_heads or cfg.head_size % 2:
        problems.append(f"dim {dim} is not n_heads {n_heads} x an even head size")
    if n_kv <= 0 or n_heads % n_kv:
        problems.append(f"n_heads {n_heads} is not a multiple of n_kv_heads {n_kv}")
    if dim % QBLOCK or hidden % QBLOCK:
        problems.append(f"dim {dim} and hidden {hidden} must be multiples of {QBLOCK}")
    if vocab <= 0 or cfg.n_layers <= 0 or cfg.max_ctx <= 0:
        problems.append("vocab_size, block_count and context_length must be positive")
    rope_dims = reader.fields.get("llama.rope.dimension_count")
    if rope_dims is not None and int(rope_dims.contents()) != cfg.head_size:
        problems.append("partial RoPE (rope.dimension_count != head size) is not supported")
    if problems:
        raise ModelLoadError(f"{path}: " + "; ".join(problems))
    return cfg


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

    The header is parsed with ``gguf.GGUFReader``; its per-field objects (about 165 MB
    for a 49k-token vocabulary) are dropped before the weights are converted, and the
    file pages of each converted tensor are released, so peak RSS stays near the size
    of the converted weights.

    Raises
    ------
    ModelLoadError
        if the file is missing, unreadable or inconsistent; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    try:
        from gguf import GGUFReader

        reader = GGUFReader(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise ModelLoadError(f"{path}: not a readable GGUF file ({exc})") from exc
    try:
        cfg = read_config(reader, path)
        metadata, big_arrays = _read_metadata(reader)
        index = {t.name: (int(t.tensor_type), tuple(int(x) for x in t.shape), int(t.data_offset), int(t.n_bytes)) for t in reader.tensors}
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{path}: bad GGUF header ({type(exc).__name__}: {exc})") from exc
    finally:
        del reader
    _release_freed_memory()
    try:
        metadata.update(_read_big_arrays(path, big_arrays))
        weights = _read_weights(_TensorFile(path, index), cfg, path)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{path}: failed to load weights ({type(exc).__name__}: {exc})") from exc
    return LoadedModel(path, cfg, weights, metadata)


def _release_freed_memory() -> None:
    """Collect the reader's objects and hand freed heap pages back to the OS (glibc keeps them otherwise)."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


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


# Array fields with ~50k entries: GGUFReader makes a NumPy object per entry, so these
# are re-read from the file after the reader is gone (its ~165 MB of objects otherwise
# stay fragmented in the heap).
_BIG_ARRAYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type", "tokenizer.ggml.scores")


def _read_metadata(reader) -> tuple[dict, dict]:
    """Scalar and small metadata values, and (offset, item type) of the big array fields."""
    from gguf import GGUFValueType

    meta, big = {}, {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "tokenizer.chat_template":
            continue
        if key in _BIG_ARRAYS and field.types and field.types[0] == GGUFValueType.ARRAY:
            big[key] = (int(field.offset), field.types[-1])
            continue
        try:
            meta[key] = field.contents()
        except Exception:  # noqa: BLE001 - exotic fields are not needed
            continue
    return meta, big


def _read_big_arrays(path: Path, big: dict) -> dict:
    """Parse the recorded array fields straight from the file (string or int32/float32 items)."""
    from gguf import GGUFValueType

    out = {}
    mm = np.memmap(path, np.uint8, mode="r")
    try:
        view = memoryview(mm)
        for key, (offset, item_type) in big.items():
            # KV layout: key length u64, key bytes, value type u32, item type u32, count u64, items.
            pos = offset + 8 + int.from_bytes(view[offset : offset + 8], "little") + 8
            count = int.from_bytes(view[pos : pos + 8], "little")
            pos += 8
            if item_type == GGUFValueType.STRING:
                items = []
                for _ in range(count):
                    n = int.from_bytes(view[pos : pos + 8], "little")
                    items.append(str(view[pos + 8 : pos + 8 + n], "utf-8"))
                    pos += 8 + n
                out[key] = items
            elif item_type in (GGUFValueType.INT32, GGUFValueType.FLOAT32):
                dtype = np.int32 if item_type == GGUFValueType.INT32 else np.float32
                out[key] = np.frombuffer(view[pos : pos + 4 * count], dtype).tolist()
        view.release()
    finally:
        del mm
    return out


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
        from gguf.quants import dequantize

        data = np.asarray(t.data)
        if t.tensor_type not in (Q.F32, Q.F16):
            data = dequantize(data, t.tensor_type)
        return np.ascontiguousarray(data, np.float32).reshape(n)

    def matrices(rows: int, cols: int, names_per_layer: list[tuple[str, int]]):
        q = np.empty((L, rows, cols), np.int8)
        s = np.empty((L, rows, cols // QBLOCK), np.float32)
        for layer in range(L):
            r0 = 0
            for name, n_rows in names_per_layer:
                t = need(f"blk.{layer}.{name}.weight", cols, n_rows)
                _convert_into(t, q[layer, r0 : r0 + n_rows], s[layer, r0 : r0 + n_rows])
                r0 += n_rows
        return q, s

    emb = need("token_embd.weight", D, V)
    emb_q = np.empty((V, D), np.int8)
    emb_s = np.empty((V, D // QBLOCK), np.float32)
    _convert_into(emb, emb_q, emb_s)
    if "output.weight" in tensors.index:
        out_q = np.empty((V, D), np.int8)
        out_s = np.empty((V, D // QBLOCK), np.float32)
        _convert_into(need("output.weight", D, V), out_q, out_s)
    else:  # tied embeddings: the LM head is the embedding matrix
        out_q, out_s = emb_q, emb_s

    wqkv_q, wqkv_s = matrices(D + 2 * KV, D, [("attn_q", D), ("attn_k", KV), ("attn_v", KV)])
    wo_q, wo_s = matrices(D, D, [("attn_output", D)])
    w13_q, w13_s = matrices(2 * F, D, [("ffn_gate", F), ("ffn_up", F)])
    w2_q, w2_s = matrices(D, F, [("ffn_down", D)])
    attn_norm = np.stack([vector(f"blk.{i}.attn_norm.weight", D) for i in range(L)])
    ffn_norm = np.stack([vector(f"blk.{i}.ffn_norm.weight", D) for i in range(L)])
    cos, sin = rope_tables(cfg)
    return Weights(
        emb_q, emb_s, out_q, out_s, attn_norm, wqkv_q, wqkv_s, wo_q, wo_s, ffn_norm,
        w13_q, w13_s, w2_q, w2_s, vector("output_norm.weight", D), cos, sin,
    )  # fmt: skip
