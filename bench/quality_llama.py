"""The reference for bench/quality.py: the same GGUF through llama.cpp (llama-cpp-python), no tricks.

    python bench/quality_llama.py CASES.json ANSWERS.json [--threads 2]

Run by bench/quality.py in its own process (llama.cpp has its own thread pool). For each case: the prompt is
the 1,024 tokens before the cursor, greedy decoding, stopped at the end of the first line that has any text
(so a next-line case gets the line break and the line after it), at most 64 tokens, a fresh cache per case.
"""

from __future__ import annotations

import json
import re
import sys
import time

PROMPT_TOKENS = 1024
MAX_TOKENS = 64
_LINE_DONE = re.compile(r"\S[^\n]*\n")  # a line with text, ended


def main() -> None:
    import argparse

    from llama_cpp import Llama, __version__

    from sparkls.decode.neural.model_path import default_model_path

    ap = argparse.ArgumentParser()
    ap.add_argument("cases")
    ap.add_argument("answers")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cases = json.loads(open(args.cases).read())
    llm = Llama(model_path=str(default_model_path()), n_ctx=2048, n_batch=512, n_threads=args.threads,
                n_threads_batch=args.threads, verbose=False)
    eos = llm.token_eos()
    answers = []
    for case in cases:
        ids = llm.tokenize(case["prefix"].encode("utf-8"), add_bos=False, special=False)[-PROMPT_TOKENS:]
        llm.reset()
        started = time.perf_counter()
        out = b""
        text = ""
        for n, token in enumerate(llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, reset=True)):
            if token == eos or n >= MAX_TOKENS:
                break
            out += llm.detokenize([token])
            text = out.decode("utf-8", "ignore")
            m = _LINE_DONE.search(text)
            if m:
                text = text[: m.end() - 1]
                break
        answers.append({"answer": text, "seconds": time.perf_counter() - started})
    with open(args.answers, "w") as f:
        json.dump({"version": __version__, "answers": answers}, f)


if __name__ == "__main__":
    sys.exit(main())
