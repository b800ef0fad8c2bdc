"""What int8 prefill does to the tokens generated after it: logits of decode steps vs the fp32 reference.

    .venv/bin/python bench/prefill_quality.py [--prompts 6] [--tokens 800] [--steps 48]

Prefill only fills the KV cache; decode steps run the int16 kernels either way. For each
prompt (windows of this repository's Python files), the prompt is fed through the int16 or
the int8 kernels, then the same continuation (the int16 run's greedy tokens) is decoded one
step at a time, teacher-forced, and every step's logits are compared with the NumPy fp32
reference run over prompt + continuation: minimum and mean row correlation, top-1 agreement.
Also: how often free greedy decoding after an int8 prefill yields the int16 run's tokens.
Not a test (tests/test_llama.py holds the bars).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from llama_reference import ReferenceLlama  # noqa: E402

from sparkls.decode.neural.llama import PATH_INT8, PATH_INT16, LlamaModel  # noqa: E402
from sparkls.decode.neural.model_path import default_model_path  # noqa: E402


def windows(tok, n_prompts: int, n_tokens: int) -> list[np.ndarray]:
    """Token windows from the middle of the largest Python files of the repository, one per file."""
    files = sorted((p for d in ("decode", "server", "tests", "bench") for p in (ROOT / d).glob("*.py")), key=lambda p: -p.stat().st_size)
    out = []
    for path in files:
        ids = tok.encode(path.read_text())
        if len(ids) >= n_tokens + 100:
            start = (len(ids) - n_tokens) // 2
            out.append(np.asarray(ids[start : start + n_tokens], np.int32))
        if len(out) == n_prompts:
            break
    return out


def decode_logits(model: LlamaModel, prompt: np.ndarray, continuation: list[int], path: int) -> np.ndarray:
    """Logits after the prompt (prefilled through ``path``) and after each continuation token (int16 steps)."""
    model.prefill_path = path
    s = model.new_session(len(prompt) + len(continuation) + 8)
    rows = [s.feed(prompt).copy()]
    rows += [s.step(t).copy() for t in continuation[:-1]]
    return np.array(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=800)
    ap.add_argument("--steps", type=int, default=48)
    args = ap.parse_args()
    path = default_model_path()
    model = LlamaModel.load(path)
    ref = ReferenceLlama(path)
    tok = model.tokenizer
    stats: dict[str, list] = {"int16": [], "int8": []}
    same_runs, first_diff = 0, []
    prompts = windows(tok, args.prompts, args.tokens)
    for i, prompt in enumerate(prompts):
        model.prefill_path = PATH_INT16
        s = model.new_session(len(prompt) + args.steps + 8)
        s.feed(prompt)
        greedy16 = list(s.generate(args.steps))
        model.prefill_path = PATH_INT8
        s = model.new_session(len(prompt) + args.steps + 8)
        s.feed(prompt)
        greedy8 = list(s.generate(args.steps))
        same_runs += greedy8 == greedy16
        first_diff.append(next((j for j, (a, b) in enumerate(zip(greedy8, greedy16)) if a != b), args.steps))
        want = ref.forward(np.concatenate([prompt, np.asarray(greedy16[:-1], np.int32)]))[len(prompt) - 1 :]
        for name, p in (("int16", PATH_INT16), ("int8", PATH_INT8)):
            got = decode_logits(model, prompt, greedy16, p)
            corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(got, want)]
            stats[name].append((min(corr), float(np.mean(corr)), got.argmax(1) == want.argmax(1)))
        print(f"prompt {i}: {len(prompt)} tokens; " + "; ".join(
            f"{k} prefill: min corr {v[-1][0]:.5f}, top-1 {v[-1][2].mean():.3f}" for k, v in stats.items())
            + f"; free greedy identical: {greedy8 == greedy16} (first difference at step {first_diff[-1]})")
    print(f"\n{len(prompts)} prompts of {args.tokens} tokens, {args.steps} decode steps each (teacher-forced on the int16 run's greedy tokens):")
    for name, v in stats.items():
        top1 = np.concatenate([x[2] for x in v])
        print(f"  {name:5s} prefill: min row corr {min(x[0] for x in v):.5f}, mean {np.mean([x[1] for x in v]):.6f}, "
              f"top-1 vs fp32 {top1.mean() * 100:.1f} % of {top1.size} steps")
    print(f"  free greedy after int8 prefill = after int16 prefill: {same_runs}/{len(prompts)} runs of {args.steps} tokens; "
          f"first differences at steps {first_diff}")


if __name__ == "__main__":
    main()
