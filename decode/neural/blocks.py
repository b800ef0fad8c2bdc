"""The weight block formats the kernels stream, and conversion into them.

Every weight matrix is kept in one of two of GGUF's own block formats: Q8_0 (32 int8
values and an fp16 scale per block, ``w = q * d``) or Q4_1 (32 4-bit values, an fp16 scale
and an fp16 minimum, ``w = d * nibble + m``). Q8_0 and Q4_1 tensors are copied unchanged, Q4_0
becomes Q4_1 exactly (``m = -8 d``), and every other type is dequantized with ``gguf.quants``
and re-quantized to Q8_0, a few thousand rows at a time so the float32 copy never exists whole
(:func:`copy_blocks`).

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
"""

from __future__ import annotations

import numpy as np

QBLOCK = 32  # inputs per int8 block (and per scale)
GROUP = 8  # rows per interleaved group (one int32 lane each in the kernels)
_ROW_CHUNK = 512  # rows converted at a time: bounds the float32 temporaries to a few MB

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


def copy_blocks(tensor, q_out: np.ndarray, d_out: np.ndarray, m_out: np.ndarray) -> None:
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


def empty_blocks(shape: tuple, cols: int, four_bit: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q, d, m (plain blocks, see :func:`dequantize`) for matrices of ``shape + (cols,)``, 4- or 8-bit."""
    nb = cols // QBLOCK
    q = np.empty(shape + (cols // 2 if four_bit else cols,), np.uint8)
    return q, np.empty(shape + (nb,), np.uint16), np.zeros(shape + (nb if four_bit else 0,), np.uint16)
