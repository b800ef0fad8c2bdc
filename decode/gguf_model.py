"""Load a llama-architecture GGUF into the block layouts the Numba kernels stream.

Every weight matrix is kept in one of two of GGUF's own block formats: Q8_0 (32 int8
values and an fp16 scale per block, ``w = q * d``) or Q4_1 (32 4-bit values, an fp16 scale
and an fp16 minimum, ``w = d * nibble + m``). Q8_0 and Q4_1 tensors are copied unchanged, Q4_0
becomes Q4_1 exactly (``m = -8 d``), and every other type is dequantized with ``gguf.quants``
and re-quantized to Q8_0, a few thousand rows at a time so the float32 copy never exists whole.

The blocks are then *row-interleaved* (:func:`interleave`): rows go in groups of 8, and
within a group the same 2-value word of the 8 rows' blocks sits side by side, so one
integer instruction multiplies 8 rows by the same two activations and each row's sums stay
in its own lane (:mod:`.q8`). Arrays: ``q`` (G, nb, K, 8) uint16 words (K = 16 for Q8_0: values
2k, 2k+1; K = 8 for Q4_1: packed bytes 2k, 2k+1, i.e. values 2k, 2k+1 and 2k+16, 2k+17);
``d`` (G, nb, 8) the fp16 scales as uint16 bits; ``m`` (G, nb, 8) Q4_1's fp16 minimums, or
(G, nb, 0) for Q8_0. G = rows/8 rounded up; missing rows are zeros. Numba has no float16:
the kernels widen the scales themselves (see :mod:`.q8`, and :data:`HALF` for the float kernels).

Why keep 4-bit weights: decoding a token reads every weight once, so bytes per weight set
the speed and the resident size (SmolLM2's Q4_1 layers: 66 MB; as int8 blocks: 119 MB).

Per layer, Q/K/V are fused into one matrix and gate/up into another, so a layer is
four matrix products (fewer parallel launches, better load balance across threads); a
fused matrix whose parts are not all 4-bit is stored as Q8_0.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import NamedTuple

import numpy as np

QBLOCK = 32  # inputs per int8 block (and per scale)
GROUP = 8  # rows per interleaved group (one int32 lane each in the kernels)
MAX_POSITIONS = 32768  # RoPE positions tabled at most: well past any session's window (2k tokens)
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


# --- block formats ---------------------------------------------------------------------

Q8_0, Q4_0, Q4_1 = 8, 2, 3  # ggml type ids
HALF = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)  # fp16 bits -> float32


def quantize_q8_0(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric 8-bit blocks of 32 with an fp16 scale, as ggml's Q8_0.

    Parameters
    ----------
    w : float32 array, shape (rows, cols), cols % 32 == 0

    Returns
    -------
    q : uint8 array (rows, cols) holding the int8 values
    d : uint16 array (rows, cols // 32), the fp16 bits of the scales; ``w ~= q * d`` blockwise
    """
    rows, cols = w.shape
    blocks = np.asarray(w, np.float32).reshape(rows, cols // QBLOCK, QBLOCK)
    d16 = (np.abs(blocks).max(axis=2) / 127.0).astype(np.float16)
    scale = d16.astype(np.float32)
    inv = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
    q = np.clip(np.rint(blocks * inv[:, :, None]), -127, 127).astype(np.int8)
    return q.reshape(rows, cols).view(np.uint8), d16.view(np.uint16)


def interleave(q: np.ndarray, d: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks of (rows, ...) -> groups of 8 rows whose same 2-value words sit side by side.

    q (G, nb, K, 8) uint16: word k (values 2k, 2k+1 for Q8_0; bytes 2k, 2k+1 of the packed
    nibbles, i.e. values 2k, 2k+1, 2k+16, 2k+17, for Q4_1) of block b of row 8g+i, K = 16
    or 8; d (G, nb, 8); m (G, nb, 8) for Q4_1, (G, nb, 0) for Q8_0. Missing rows are zeros.
    """
    rows, nb = d.shape
    G, pad = -(-rows // GROUP), -rows % GROUP
    words = np.pad(np.ascontiguousarray(q).view(np.uint16).reshape(rows, nb, -1), ((0, pad), (0, 0), (0, 0)))
    qi = np.ascontiguousarray(words.reshape(G, GROUP, nb, -1).transpose(0, 2, 3, 1))

    def per_block(a):
        return np.ascontiguousarray(np.pad(a, ((0, pad), (0, 0))).reshape(G, GROUP, -1).transpose(0, 2, 1))

    mi = per_block(m[:, :nb]) if m.shape[1] else np.zeros((G, nb, 0), np.uint16)
    return qi, per_block(d), mi


def dequantize(q: np.ndarray, d: np.ndarray, m: np.ndarray, rows: int | None = None) -> np.ndarray:
    """Float32 (rows, n) of a matrix: row-interleaved (q 4-D; ``rows`` drops padding rows) or plain blocks
    (q (rows, n) int8 as uint8 / (rows, n/2) nibbles, d (rows, nb), m (rows, nb) or (rows, 0))."""
    if q.ndim == 4:
        G, nb, K, _ = q.shape
        plain = q.transpose(0, 3, 1, 2).reshape(G * GROUP, nb * K).copy().view(np.uint8)
        d, m = (a.transpose(0, 2, 1).reshape(G * GROUP, -1) for a in (d, m))
        return dequantize(plain, d, m)[: G * GROUP if rows is None else rows]
    n_rows, nb = d.shape
    scale = HALF[d][:, :, None]
    if m.shape[1]:  # Q4_1
        packed = q.reshape(n_rows, nb, 16)
        nibbles = np.concatenate([packed & 15, packed >> 4], axis=2).astype(np.float32)
        w = scale * nibbles + HALF[m][:, :, None]
    else:
        w = scale * q.view(np.int8).reshape(n_rows, nb, QBLOCK).astype(np.float32)
    return w.reshape(n_rows, nb * QBLOCK).astype(np.float32)


def _halves(blocks: np.ndarray, at: int) -> np.ndarray:
    """The fp16 field at byte ``at`` of every block (rows, nb, size) as uint16 bits."""
    return blocks[:, :, at : at + 2].copy().view(np.uint16)[:, :, 0]


def _copy_blocks(tensor, q_out: np.ndarray, d_out: np.ndarray, m_out: np.ndarray) -> None:
    """Write one GGUF tensor (rows, cols) into the layout of ``q_out``: Q4_1 if ``m_out`` has columns, else Q8_0."""
    from gguf.quants import dequantize as dequantize_gguf

    data, ttype = tensor.data, tensor.tensor_type
    rows = q_out.shape[0]
    for r0 in range(0, rows, _ROW_CHUNK):
        r1 = min(r0 + _ROW_CHUNK, rows)
        chunk = np.asarray(data[r0:r1])
        if m_out.shape[1]:  # 4-bit layout: only Q4_1 and Q4_0 tensors are given one
            blocks = chunk.reshape(r1 - r0, -1, 20 if ttype == Q4_1 else 18)
            d = _halves(blocks, 0)
            d_out[r0:r1] = d
            if ttype == Q4_1:
                m_out[r0:r1] = _halves(blocks, 2)
                q_out[r0:r1] = blocks[:, :, 4:].reshape(r1 - r0, -1)
            else:  # Q4_0: w = d * (nibble - 8), exactly d * nibble + (-8 d) in fp16
                m_out[r0:r1] = (d.view(np.float16) * np.float16(-8)).view(np.uint16)
                q_out[r0:r1] = blocks[:, :, 2:].reshape(r1 - r0, -1)
        elif ttype == Q8_0:
            blocks = chunk.reshape(r1 - r0, -1, 34)
            d_out[r0:r1] = _halves(blocks, 0)
            q_out[r0:r1] = blocks[:, :, 2:].reshape(r1 - r0, -1)
        else:
            w = chunk if chunk.dtype in (np.float32, np.float16) else dequantize_gguf(chunk, ttype)
            q_out[r0:r1], d_out[r0:r1] = quantize_q8_0(np.asarray(w, np.float32).reshape(r1 - r0, -1))


def _empty_blocks(shape: tuple, cols: int, four_bit: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q, d, m (plain blocks, see :func:`dequantize`) for matrices of ``shape + (cols,)``, 4- or 8-bit."""
    nb = cols // QBLOCK
    q = np.empty(shape + (cols // 2 if four_bit else cols,), np.uint8)
    return q, np.empty(shape + (nb,), np.uint16), np.zeros(shape + (nb if four_bit else 0,), np.uint16)


# --- loading ---------------------------------------------------------------------------


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

    The header is parsed by :func:`read_header` (``gguf.GGUFReader`` made ~165 MB of
    per-field objects for a 49k-token vocabulary, took 2 s and left ~5 MB of fragments
    resident), and the file pages of each converted tensor are released, so peak RSS stays
    near the size of the converted weights. Loading also fixes glibc's mmap threshold for
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


# --- header ----------------------------------------------------------------------------

# GGUF value types (gguf.GGUFValueType) with fixed-size encodings, as NumPy little-endian dtypes.
_FIXED = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<u1", 10: "<u8", 11: "<i8", 12: "<f8"}
_BOOL, _STRING, _ARRAY = 7, 8, 9


class _HeaderReader:
    """Sequential little-endian reads of a GGUF header; every read is bounds-checked."""

    def __init__(self, buf) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError(f"truncated at byte {self.pos} (wanted {n} more)")
        view = self.buf[self.pos : self.pos + n]
        self.pos += n
        return view

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def string(self) -> str:
        return str(self.take(self.u64()), "utf-8")

    def value(self, vtype: int):
        """One metadata value: a Python scalar or str; arrays of strings (or arrays) as lists,
        arrays of numbers as NumPy arrays."""
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item, count = self.u32(), self.u64()
            if item in _FIXED:
                dtype = np.dtype(_FIXED[item])
                data = np.frombuffer(self.take(count * dtype.itemsize), dtype)
                return data.astype(bool) if item == _BOOL else data.copy()
            if count * 8 > len(self.buf) - self.pos:  # every string or array item takes at least 8 bytes
                raise ValueError(f"array of {count} items at byte {self.pos} is longer than the file")
            return [self.value(item) for _ in range(count)]
        if vtype in _FIXED:
            x = np.frombuffer(self.take(np.dtype(_FIXED[vtype]).itemsize), _FIXED[vtype])[0]
            return bool(x) if vtype == _BOOL else x.item()
        raise ValueError(f"unknown value type {vtype} at byte {self.pos}")


def read_header(path: str | Path) -> tuple[dict, dict]:
    """Metadata and tensor index of a GGUF (versions 2 and 3, little-endian).

    Returns ``(metadata, index)``: metadata maps each key to its value (tokenizer vocabulary
    and merges as lists of str, numeric arrays as NumPy arrays); index maps each tensor name
    to ``(ggml type, ggml shape, absolute data offset, n_bytes)``.

    Raises
    ------
    ModelLoadError
        if the file is not a GGUF or its header is inconsistent.
    """
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    path = Path(path)
    try:
        with open(path, "rb") as f:
            # Not closed explicitly: the map is unmapped when the last view of it is collected.
            view = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
        return _parse_header(_HeaderReader(view), path, GGML_QUANT_SIZES, GGMLQuantizationType)
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ModelLoadError(f"{path}: not a readable GGUF file ({type(exc).__name__}: {exc})") from exc


def _parse_header(r: _HeaderReader, path: Path, quant_sizes: dict, qtype) -> tuple[dict, dict]:
    if bytes(r.take(4)) != b"GGUF":
        raise ModelLoadError(f"{path}: not a GGUF file (bad magic)")
    version = r.u32()
    if version not in (2, 3):
        raise ModelLoadError(f"{path}: GGUF version {version} is not supported (2 or 3, little-endian)")
    n_tensors, n_kv = r.u64(), r.u64()
    metadata = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = r.value(r.u32())
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.u32()
        if n_dims > 4:
            raise ValueError(f"tensor {name!r} has {n_dims} dimensions")
        shape = tuple(r.u64() for _ in range(n_dims))
        infos.append((name, r.u32(), shape, r.u64()))
    align = metadata.get("general.alignment", 32)
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        raise ModelLoadError(f"{path}: general.alignment {align!r} is not a power of two")
    start = -(-r.pos // align) * align
    index = {}
    for name, ttype, shape, offset in infos:
        block, size = quant_sizes[qtype(ttype)]
        n_elements = int(np.prod(shape, dtype=np.int64)) if shape else 1
        index[name] = (ttype, shape, start + offset, n_elements // block * size)
    return metadata, index


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
            q, d, m = _empty_blocks((rows,), cols, four_bit)
            r0 = 0
            for name, n_rows in names_per_layer:
                t = need(f"blk.{layer}.{name}.weight", cols, n_rows)
                r1 = r0 + n_rows
                _copy_blocks(t, q[r0:r1], d[r0:r1], m[r0:r1])
                r0 = r1
            for whole, part in zip(out, interleave(q, d, m)):
                whole[layer] = part
        return out

    def table(name: str):
        t = need(name, D, V)
        q, d, m = _empty_blocks((V,), D, four_bit=t.tensor_type in (Q4_0, Q4_1))
        _copy_blocks(t, q, d, m)
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
