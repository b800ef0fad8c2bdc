"""Calls between compiled functions by address (decode/neural/native.py), and which kernels a model compiles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit, types
from numba.core.errors import TypingError

from sparkls.decode.neural.native import Kernel, caller

ROWS = types.Array(types.float32, 2, "A")
ARGS = (ROWS, types.Array(types.float32, 2, "C"), types.float32)


@njit
def scale_rows(out, x, k):
    if k < 0:
        raise ValueError("negative scale")
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] * k


call = caller(ARGS)


@njit
def twice(address, out, x):
    call(address, out[:, :2], x, np.float32(2.0))  # out[:, :2]: layout A, as declared
    call(address, out[:, 2:], x, 3)  # an int where a float32 is declared: cast


@njit
def negative(address, out, x):
    call(address, out, x, np.float32(-1.0))


def test_kernel_compiles_on_first_address_and_is_called_by_it():
    """Ensure that a kernel is compiled only when its address is asked for, and that compiled code calling
    it by that address gets what a direct call computes, arguments cast to the declared types."""
    kernel = Kernel(scale_rows, ARGS)
    assert not kernel.compiled
    address = kernel.address()
    assert kernel.compiled and kernel.address() == address and address > 0
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    out = np.zeros((3, 4), np.float32)
    twice(address, out, x)
    np.testing.assert_array_equal(out, np.hstack([2 * x, 3 * x]))


def test_kernel_exceptions_reach_the_caller():
    """Ensure that an exception raised in a kernel called by address propagates out of its caller."""
    address = Kernel(scale_rows, ARGS).address()
    with pytest.raises(ValueError, match="negative scale"):
        negative(address, np.zeros((2, 2), np.float32), np.ones((2, 2), np.float32))


def test_arguments_the_declaration_cannot_take_fail_to_type():
    """Ensure that a call whose arguments do not fit the declared signature is refused at compile time
    (a call by address with other types would read garbage)."""

    @njit
    def too_few(address, out):
        call(address, out, out)

    @njit
    def wrong_dtype(address, out, x):
        call(address, out, x, np.float32(1.0))

    with pytest.raises(TypingError, match="2 arguments for a kernel taking 3"):
        too_few(1, np.zeros((2, 2), np.float32))
    with pytest.raises(TypingError, match="argument 1"):
        wrong_dtype(1, np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int32))


COMPILED = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from tiny_gguf import write_tiny_llama
from sparkls.decode.neural import amx, int8, linear as lin
from sparkls.decode.neural.llama import LlamaModel
model = LlamaModel.load(write_tiny_llama(sys.argv[2] + "/tiny.gguf", qtype="Q4_1", seed=3))
s = model.new_session(256)
s.feed(np.arange(3, 100, dtype=np.int32))  # a prompt batch of 64 tokens, then one of 33
list(s.generate(4))
names = {"float": lin.FLOAT, "int16": lin.INT16, "int8": lin.INT8, "amx": lin.AMX}
print(" ".join(sorted(name for name, k in names.items() if k.compiled)))
print(" ".join(sorted(name for name, f in (("int8", int8.products_part), ("amx", amx.linear_q4),
                                           ("float", lin.float_part)) if f.signatures)))
"""


@pytest.mark.parametrize("prefill", ["int16", ""])
def test_a_model_compiles_only_the_kernels_it_runs(prefill, tmp_path):
    """Ensure that a completion compiles (or loads from the cache) the linear kernels of its paths and no
    others: never the AMX one without AMX, the float one where the integer ones run, the int8 one when prompts
    take the int16 kernels."""
    env = dict(os.environ, SPARKLS_PREFILL=prefill, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    out = subprocess.run([sys.executable, "-c", COMPILED, str(Path(__file__).parent), str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    requested, compiled = out.stdout.splitlines()[-2:]
    from sparkls.decode.neural import int8, q8
    from sparkls.decode.neural.linear import kernel_paths

    if not q8.AVAILABLE:
        assert requested == compiled == "float"
        return
    with_int8 = int8.AVAILABLE and prefill != "int16" and "amx-tdpbusd" not in kernel_paths()[1]
    assert requested == ("int16 int8" if with_int8 else "int16")
    assert compiled == ("int8" if with_int8 else "")


def test_forward_refuses_kernels_of_other_signatures(tmp_path):
    """Ensure that the compiled forward pass refuses kernels whose signatures it was not compiled for (a Numba
    cache of llama.py outliving an edit of linear.py's or attention.py's signatures) instead of calling them."""
    from tiny_gguf import write_tiny_llama

    from sparkls.decode.neural import linear
    from sparkls.decode.neural.llama import LlamaModel, forward

    model = LlamaModel.load(write_tiny_llama(tmp_path / "tiny.gguf", qtype="Q8_0", seed=2))
    s = model.new_session(16)
    k = model.kernels(model.prefill_path)
    with pytest.raises(RuntimeError, match="stale compiled forward pass"):
        forward(model.config, model.weights, s.state, np.array([1, 2], np.int32), 0, 1, k._replace(abi=linear.ABI + 1))
    forward(model.config, model.weights, s.state, np.array([1, 2], np.int32), 0, 1, k)
