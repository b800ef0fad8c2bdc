"""int8-activation products for prompt batches (decode/int8.py) and the kernel path a model reports."""

from __future__ import annotations

import numpy as np
import pytest
from llama_reference import ReferenceLlama
from tiny_gguf import write_tiny_llama

from sparkls.decode import cpu, int8
from sparkls.decode.gguf_model import GROUP, dequantize, interleave
from sparkls.decode.llama import PATH_INT8, PATH_INT16, LlamaModel

needs_int8 = pytest.mark.skipif(not int8.AVAILABLE, reason="this CPU has no vpdpbusd (AVX-512 VNNI or AVX-VNNI)")


def random_q4_1(rng, rows, cols):
    """A row-interleaved Q4_1 matrix with random nibbles, scales and minimums."""
    nb = cols // 32
    q = rng.integers(0, 256, (rows, cols // 2), dtype=np.uint8)
    d = rng.uniform(0.001, 0.02, (rows, nb)).astype(np.float16).view(np.uint16)
    m = rng.uniform(-0.1, 0.0, (rows, nb)).astype(np.float16).view(np.uint16)
    return interleave(q, d, m)


def quantize_like_kernel(x):
    """The int8 blocks int8.quantize should produce: round(x * 127 / max|block|)."""
    T, n = x.shape
    blocks = x.reshape(T, n // 32, 32)
    amax = np.abs(blocks).max(axis=2)
    scale = (amax / np.float32(127.0)).astype(np.float32)
    inv = np.where(amax > 0, np.float32(127.0) / np.where(amax > 0, amax, 1), 0).astype(np.float32)
    q = np.rint(blocks * inv[:, :, None]).astype(np.int8)
    return q.reshape(T, n), scale


@needs_int8
@pytest.mark.parametrize("rows, cols, T", [(64, 64, 16), (20, 96, 19), (1536 * 2, 576, 64), (40, 1536, 33)])
def test_matmul_q4_equals_exact_integer_products(rows, cols, T):
    """Ensure that the vpdpbusd kernel computes sum_b d_b xs_b (nibbles . xq) + m_b xsum_b for every row and
    token, including a last group of fewer than 8 rows and a last tile of fewer than 8 tokens."""
    rng = np.random.default_rng(rows + T)
    qi, di, mi = random_q4_1(rng, rows, cols)
    x = rng.standard_normal((T, cols)).astype(np.float32)
    xq, xs, xsum = np.zeros((T, cols), np.int8), np.zeros((T, cols // 32), np.float32), np.zeros((T, cols // 32), np.float32)
    int8.quantize(x, xq, xs, xsum)
    want_q, want_s = quantize_like_kernel(x)
    np.testing.assert_array_equal(xq, want_q)
    np.testing.assert_allclose(xs, want_s, rtol=1e-6)
    out = np.full((T, rows), np.nan, np.float32)
    int8.matmul_q4(out, qi, di, mi, xq, xs, xsum)
    w = dequantize(qi, di, mi, rows=rows).astype(np.float64)
    xd = (xq.reshape(T, -1, 32) * xs[:, :, None]).reshape(T, cols).astype(np.float64)
    want = xd @ w.T
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert -(-rows // GROUP) == qi.shape[0]


@pytest.fixture(scope="module")
def q4_model(tmp_path_factory):
    path = write_tiny_llama(tmp_path_factory.mktemp("int8") / "tiny-Q4_1.gguf", qtype="Q4_1", seed=3)
    return LlamaModel.load(path), ReferenceLlama(path)


@needs_int8
def test_int8_prefill_matches_reference(q4_model):
    """Ensure that a prompt fed through the int8 kernels predicts as the fp32 reference does, and
    that decode steps after it (int16) stay close to the reference too."""
    model, ref = q4_model
    assert model.prefill_path == PATH_INT8
    ids = np.random.default_rng(11).integers(3, 269, 120).astype(np.int32)
    want = ref.forward(ids)
    s = model.new_session(256)
    got = [s.feed(ids[:100]).copy()] + [s.step(int(t)).copy() for t in ids[100:]]
    got, want = np.array(got[:-1]), want[99:-1]
    corr = min(np.corrcoef(a, b)[0, 1] for a, b in zip(got, want))
    assert corr >= 0.999, f"correlation {corr:.5f}"
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.95


@needs_int8
def test_int16_prefill_is_the_verification_path(q4_model):
    """Ensure that PATH_INT16 prefill equals verifying the same tokens bitwise, and that the int8 path differs
    from it only by int8 rounding (so the switch really selects another kernel)."""
    model, _ = q4_model
    ids = np.random.default_rng(12).integers(3, 269, 60).astype(np.int32)
    try:
        model.prefill_path = PATH_INT16
        plain = model.new_session(128).feed(ids).copy()
        model.prefill_path = PATH_INT8
        fast = model.new_session(128).feed(ids).copy()
    finally:
        model.prefill_path = PATH_INT8
    s = model.new_session(128)
    s.feed(ids[:1])
    np.testing.assert_array_equal(s.verify(ids[1:])[-1], plain)
    assert not np.array_equal(fast, plain)
    assert np.corrcoef(fast, plain)[0, 1] > 0.999


def test_kernel_path_is_reported(q4_model):
    """Ensure that the model says which kernels run, consistently with the CPU's features."""
    model, _ = q4_model
    assert "decode" in model.kernel_path or "float" in model.kernel_path, model.kernel_path
    assert ("int8" in model.kernel_path.split(";")[0]) == (model.prefill_path == PATH_INT8)
    granted, why = cpu.request_amx()
    assert granted or why, "a refused AMX request says why"
    if not cpu.amx_listed():
        assert not granted and "amx" not in model.kernel_path.split(";")[0]
