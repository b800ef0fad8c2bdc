"""What verifying drafts costs: batched forward passes against a one-token step, in one run.

    .venv/bin/python bench/verify_cost.py [--repeats 15]

On bench/decode.py's editing prompt (1.85k cached positions), prints for batches of 1 + k
tokens the time of a forward pass and what each extra token adds, as a fraction of the
one-token step measured in the same run (min over repeats, sizes interleaved, so a noisy
host slows all alike), then a batch of 9 split into attention, linear layers and LM head.
The draft budget (decode/neural/speculation.py) learns the same line at run time. Not a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from decode import editing_prompt  # noqa: E402

from sparkls.decode.neural.attention import attention  # noqa: E402
from sparkls.decode.neural.llama import LlamaModel, linear  # noqa: E402

SIZES = (1, 2, 3, 5, 9, 13, 17)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    model = LlamaModel.load()
    model.warmup()
    ids = model.tokenizer.encode(editing_prompt())
    s = model.new_session(2048)
    s.feed(ids)
    tokens = list(range(1000, 1000 + max(SIZES)))
    base = s.n_cached
    st, w, kv_mul = s.state, model.weights, model.config.n_heads // model.config.n_kv_heads

    def forward(n):
        s.verify(tokens[:n]) if n > 1 else s.step(tokens[0])
        s.truncate(base)

    def attend(n):
        for layer in range(model.config.n_layers):
            attention(st.att[:n], st.q[:n], st.key_cache, st.value_cache, layer, base, kv_mul, st.sbuf, st.part_m, st.part_l, st.part_o)

    def linears(n):
        for layer in range(model.config.n_layers):
            linear(st.qkv[:n], st.xb[:n], w.wqkv_q[layer], w.wqkv_d[layer], w.wqkv_m[layer], w.half, st)
            linear(st.xb[:n], st.att[:n], w.wo_q[layer], w.wo_d[layer], w.wo_m[layer], w.half, st)
            linear(st.hb[:n], st.xb[:n], w.w13_q[layer], w.w13_d[layer], w.w13_m[layer], w.half, st)
            linear(st.xb[:n], st.hb2[:n], w.w2_q[layer], w.w2_d[layer], w.w2_m[layer], w.half, st)

    def head(n):
        linear(st.logits[:n], st.xb[:n], w.out_q, w.out_d, w.out_m, w.half, st)

    best: dict[tuple[str, int], float] = {}
    for _ in range(args.repeats):
        for n in SIZES:
            for name, f in (("forward", forward), ("attention", attend), ("linears", linears), ("head", head)):
                if name != "forward" and n not in (1, 9):
                    continue
                t = time.perf_counter()
                f(n)
                dt = time.perf_counter() - t
                best[name, n] = min(best.get((name, n), dt), dt)
    step = best["forward", 1]
    print(f"{base} cached positions; one-token step {step * 1e3:.2f} ms (min of {args.repeats})")
    for n in SIZES[1:]:
        t = best["forward", n]
        print(f"  batch of {n:2d}: {t * 1e3:6.2f} ms = {t / step:4.2f} steps, each extra token +{(t - step) / step / (n - 1):.3f} step")
    print("  per extra token in a batch of 9: " + ", ".join(
        f"{name} {(best[name, 9] - best[name, 1]) / 8 * 1e3:.3f} ms" for name in ("forward", "attention", "linears", "head")))


if __name__ == "__main__":
    main()
