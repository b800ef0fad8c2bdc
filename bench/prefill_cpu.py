"""Prefill and decode cost in CPU time on ONE thread: Numba int8 / int16 prompts vs llama.cpp, alternating.

    NUMBA_NUM_THREADS=1 .venv/bin/python bench/prefill_cpu.py [--repeats 3] [--tokens 1000 4000]

On a host shared with other jobs, wall-clock figures of two thread pools mostly measure the
other jobs (bench/decode.py's whole-model figures swung 10x on this project's 2-core host);
the CPU seconds a single thread spends are far steadier. Every figure here is tokens per
CPU second of one thread: Numba's prefill of each prompt through the int8 and the int16
kernels, Numba's decode, and llama.cpp (llama-cpp-python, same GGUF, n_threads=1, in its own
process) prefilling the same prompt and decoding, runs alternating, medians. Two cores'
wall-clock speed is at most twice these. Not a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from decode import code_prompt, run_llama_cpp  # noqa: E402

from sparkls.decode.neural import int8  # noqa: E402
from sparkls.decode.neural.llama import PATH_INT8, PATH_INT16, LlamaModel  # noqa: E402
from sparkls.decode.neural.model_path import default_model_path  # noqa: E402

LLAMA_CPP = """
import json, sys, time
from llama_cpp import Llama
ids = json.load(open(sys.argv[2]))
llm = Llama(model_path=sys.argv[1], n_ctx=len(ids) + 256, n_batch=512, n_threads=1, n_threads_batch=1, verbose=False)
llm.eval(ids[:64])  # warm-up
llm.reset()
t = time.process_time()
llm.eval(ids)
prefill = len(ids) / (time.process_time() - t)
t = time.process_time()
for i in range(64):
    llm.eval([ids[i]])
print(json.dumps({"prefill": prefill, "decode": 64 / (time.process_time() - t)}))
"""


def llama_cpp(path: Path, ids) -> dict | None:
    return run_llama_cpp(LLAMA_CPP, path, ids)


def numba_prefill(model: LlamaModel, ids, path: int) -> float:
    model.prefill_path = path
    s = model.new_session(min(model.config.max_ctx, len(ids) + 64))
    t = time.process_time()
    s.feed(ids)
    return len(ids) / (time.process_time() - t)


def numba_decode(model: LlamaModel, ids) -> float:
    s = model.new_session(len(ids) + 80)
    s.feed(ids)
    t = time.process_time()
    for i in range(64):
        s.step(int(ids[i]))
    return 64 / (time.process_time() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tokens", type=int, nargs="+", default=[1000])
    args = ap.parse_args()
    import numba

    if numba.config.NUMBA_NUM_THREADS != 1:
        sys.exit("run with NUMBA_NUM_THREADS=1 (CPU time of one thread)")
    path = default_model_path()
    model = LlamaModel.load(path)
    model.warmup()
    print(f"kernels: {model.kernel_path}; one thread, tokens per CPU second, medians of {args.repeats} alternating runs")
    paths = {"int8": PATH_INT8, "int16": PATH_INT16} if int8.AVAILABLE else {"int16": PATH_INT16}
    for n in args.tokens:
        ids = model.tokenizer.encode(code_prompt(model.tokenizer, n))
        runs: dict[str, list[float]] = {k: [] for k in [*paths, "llama.cpp", "decode", "llama.cpp decode"]}
        for _ in range(args.repeats):
            for name, p in paths.items():
                runs[name].append(numba_prefill(model, ids, p))
            c = llama_cpp(path, ids)
            if c is not None:
                runs["llama.cpp"].append(c["prefill"])
                runs["llama.cpp decode"].append(c["decode"])
            runs["decode"].append(numba_decode(model, ids[:100]))
        med = {k: float(np.median(v)) for k, v in runs.items() if v}
        print(f"{len(ids)} tokens: " + ", ".join(f"{k} {v:.0f}" for k, v in med.items()))
        if "llama.cpp" in med:
            ratios = ", ".join(f"{k} x{med[k] / med['llama.cpp']:.2f}" for k in paths)
            print(f"  prefill vs llama.cpp: {ratios}; decode x{med['decode'] / med['llama.cpp decode']:.2f}")
        if "int8" in med:
            print(f"  int8 / int16 prefill x{med['int8'] / med['int16']:.2f}; runs: " + "; ".join(
                f"{k} " + " ".join(f"{x:.0f}" for x in v) for k, v in runs.items() if v))


if __name__ == "__main__":
    main()
