"""Perplexity of the neural core on the repository's fixture code (tests/fixtures, examples/demo).

    .venv/bin/python bench/perplexity.py

Per file: every token after the first is scored by the model given all tokens before it
(chunks of verify() calls over one KV-cache session), reported as perplexity per token.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sparkls.decode.neural.llama import PREFILL_CHUNK, LlamaModel

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "tests" / "fixtures" / "project" / "pkg").glob("[a-z]*.py")) + sorted((ROOT / "examples" / "demo").glob("*.py"))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def main() -> None:
    model = LlamaModel.load()
    total_nll, total_tokens = 0.0, 0
    for path in FILES:
        try:
            ids = model.tokenizer.encode(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            continue  # the fixture's deliberately undecodable file
        if len(ids) < 2:
            continue
        session = model.new_session(n_ctx=max(2048, len(ids) + 1))
        nll = -log_softmax(session.feed(ids[:1]))[ids[1]]
        for start in range(1, len(ids) - 1, PREFILL_CHUNK):
            chunk = ids[start : min(start + PREFILL_CHUNK, len(ids) - 1)]
            logp = log_softmax(session.verify(chunk))
            targets = ids[start + 1 : start + 1 + len(chunk)]
            nll += -logp[np.arange(len(chunk)), targets].sum()
        n = len(ids) - 1
        print(f"{path.relative_to(ROOT)!s:<45} {n:5d} tokens  perplexity {math.exp(nll / n):6.2f}")
        total_nll, total_tokens = total_nll + nll, total_tokens + n
    print(f"{'all':<45} {total_tokens:5d} tokens  perplexity {math.exp(total_nll / total_tokens):6.2f}")


if __name__ == "__main__":
    main()
