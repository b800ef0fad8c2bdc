"""int8-activation products for prompt batches (decode/neural/int8.py) and the kernel path a model reports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from llama_reference import ReferenceLlama
from tiny_gguf import write_tiny_llama

from sparkls.decode.neural import cpu, int8
from sparkls.decode.neural.blocks import GROUP, dequantize, interleave
from sparkls.decode.neural.llama import PATH_INT8, PATH_INT16, LlamaModel

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
        assert not granted and "amx-tdpbusd" not in model.kernel_path and "no AMX" in model.kernel_path


def run_child(code: str, env: dict, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), **env)
    return subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], env=env, capture_output=True, text=True, timeout=900)


TILE_ASM = """
import numpy as np
from numba import njit, types
from sparkls.decode.neural import amx

@njit
def one(c, a, b):
    amx._tile_dot(c, a, b)

one.compile((types.Array(types.int32, 2, "C"), types.Array(types.uint8, 2, "C"), types.Array(types.int8, 2, "C")))
asm = "\\n".join(one.inspect_asm().values())
print(" ".join(op for op in ("ldtilecfg", "tilezero", "tileloadd", "tdpbusd", "tilestored", "tilerelease") if op in asm))
"""


@pytest.mark.skipif(not int8.AVAILABLE, reason="x86 with vpdpbusd only")
def test_tile_kernel_compiles_to_amx_instructions(tmp_path):
    """Ensure that Numba's LLVM emits the tile product as AMX instructions for a Sapphire Rapids target
    (compiled only, in a child told that CPU: this one may have no AMX to run it)."""
    feats = "+amx-tile,+amx-int8,+avx512f,+avx512bw,+avx512vl,+avx512dq,+avx512vnni,+avx2,+fma,+f16c"
    out = run_child(TILE_ASM, {"NUMBA_CPU_NAME": "sapphirerapids", "NUMBA_CPU_FEATURES": feats}, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["ldtilecfg", "tilezero", "tileloadd", "tdpbusd", "tilestored", "tilerelease"], out.stdout


AMX_PREFILL = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from llama_reference import ReferenceLlama
from tiny_gguf import write_tiny_llama
from test_int8 import random_q4_1
from sparkls.decode.neural import amx, int8
from sparkls.decode.neural.blocks import HALF
from sparkls.decode.neural.llama import PATH_AMX, PATH_INT8, LlamaModel

assert amx.AVAILABLE and amx.self_test() == "", amx.WHY_NOT or amx.self_test()
rng = np.random.default_rng(5)
for rows, cols, T in ((200, 576, 37), (24, 64, 16), (3072, 576, 64)):
    wq, wd, wm = random_q4_1(rng, rows, cols)
    x = rng.standard_normal((T, cols)).astype(np.float32)
    got = np.full((T, rows), np.nan, np.float32)
    amx.linear_q4(got, x, wq, wd, wm, HALF)
    xq, xs, xsum = np.zeros((T, cols), np.int8), np.zeros((T, cols // 32), np.float32), np.zeros((T, cols // 32), np.float32)
    int8.quantize(x, xq, xs, xsum)
    want = np.zeros((T, rows), np.float32)
    int8.matmul_q4(want, wq, wd, wm, xq, xs, xsum)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), (rows, cols, T)
path = write_tiny_llama(sys.argv[2] + "/tiny-Q4_1.gguf", qtype="Q4_1", seed=3)
model, ref = LlamaModel.load(path), ReferenceLlama(path)
assert model.prefill_path == PATH_AMX and "amx" in model.kernel_path, model.kernel_path
ids = np.random.default_rng(11).integers(3, 269, 120).astype(np.int32)
want = ref.forward(ids)
s = model.new_session(256)
got = np.array([s.feed(ids[:100]).copy()] + [s.step(int(t)).copy() for t in ids[100:-1]])
corr = min(np.corrcoef(a, b)[0, 1] for a, b in zip(got, want[99:-1]))
assert corr >= 0.999 and np.mean(got.argmax(1) == want[99:-1].argmax(1)) >= 0.95, corr
model.prefill_path = PATH_INT8
np.testing.assert_allclose(model.new_session(256).feed(ids[:100]), got[0], rtol=0, atol=1e-4 * np.abs(got[0]).max())
print("ok")
"""


@pytest.mark.skipif(not int8.AVAILABLE, reason="x86 with vpdpbusd only")
@pytest.mark.parametrize("mode", ["emulated", "amx"])
def test_amx_prefill_matches_int8_and_reference(mode, tmp_path):
    """Ensure that the AMX prefill (tiles, B-tile activations, per-block scales) computes what the vpdpbusd
    kernel does and predicts as the fp32 reference: with real tiles where this CPU has AMX, and everywhere with
    the tile product emulated by loops (so all the code around the tile instructions is checked here too)."""
    from sparkls.decode.neural import amx

    if mode == "amx" and not amx.AVAILABLE:
        pytest.skip(f"no AMX here: {amx.WHY_NOT}")
    out = run_child(AMX_PREFILL.replace("sys.argv[2]", repr(str(tmp_path))), {"SPARKLS_AMX_EMULATE": "1" if mode == "emulated" else "0", "SPARKLS_AMX": "1"}, tmp_path)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
