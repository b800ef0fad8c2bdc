"""Line-completion quality on code SmolLM2 cannot have memorized, through the real LSP server.

    .venv/bin/python bench/quality.py [--cases 40] [--seed 0] [--show]

Cases are cut from the installed pygls 2.x and lsprotocol 2025 sources (released after
SmolLM2's training data): the rest of a line after a cursor placed right after a token,
and the whole next line after a block header (`...:`). The server sees prefix and suffix
as an editor would (the other files of the same package are open too). Reported per
kind, as in CodeXGLUE: exact match, edit similarity (1 - Levenshtein / max length), empty
answers, latency p50/p99 — for raw greedy prefix-only decoding (no context, no stop rules,
no suffix: its first line is the answer) and for the full pipeline side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import lsprotocol
import pygls

from editor import start_server, stop_server

_TOKEN_END = re.compile(r"(?<=[\w)\]}\"'.,=(\[:])(?=[\s\w(\[.,:=)])")


@dataclass
class Case:
    kind: str  # "line" or "block"
    path: Path
    prefix: str
    suffix: str
    target: str


def source_files() -> list[Path]:
    roots = [Path(pygls.__file__).parent, Path(lsprotocol.__file__).parent]
    files = [p for r in roots for p in sorted(r.rglob("*.py")) if p.stat().st_size > 2000]
    return [p for p in files if p.name != "types.py"]  # generated, and trivially repetitive


def make_cases(n: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    lines_cases, block_cases = [], []
    for path in source_files():
        text = path.read_text()
        lines = text.split("\n")
        offset = 0
        for i, line in enumerate(lines):
            stripped = line.strip()
            code = stripped and not stripped.startswith(("#", '"""', "'''")) and len(stripped) > 12
            if code and i > 20:
                cuts = [
                    m.start()
                    for m in _TOKEN_END.finditer(line)
                    if len(line) // 3 < m.start() < len(line) - 2 and not _inside_word(line, m.start())
                ]
                if cuts:
                    c = rng.choice(cuts)
                    # The rest of the line is not typed yet: the suffix starts at the line break.
                    lines_cases.append(
                        Case("line", path, text[: offset + c], text[offset + len(line) :], line[c:].rstrip())
                    )
            if code and stripped.endswith(":") and i + 1 < len(lines) and lines[i + 1].strip() and i > 20:
                body = lines[i + 1]
                indent = body[: len(body) - len(body.lstrip())]
                start = offset + len(line) + 1
                prefix = text[:start] + indent
                suffix = text[start + len(body) :]  # the body line is gone; the rest follows
                block_cases.append(Case("block", path, prefix, suffix, body.strip()))
            offset += len(line) + 1
    rng.shuffle(lines_cases)
    rng.shuffle(block_cases)
    return lines_cases[:n] + block_cases[:n]


def _inside_word(line: str, at: int) -> bool:
    """A cut between two identifier characters is inside a token, not right after one."""
    return (line[at - 1].isalnum() or line[at - 1] == "_") and (line[at].isalnum() or line[at] == "_")


def edit_similarity(a: str, b: str) -> float:
    if not a and not b:
        return 1.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1 - prev[-1] / max(len(a), len(b))


def first_line(text: str) -> str:
    return text.split("\n", 1)[0].rstrip()


def raw_greedy(model, case: Case, max_tokens: int = 48) -> tuple[str, float]:
    """Prefix-only greedy decoding of the last 1024 prompt tokens; its first line is the answer."""
    tok = model.tokenizer
    ids = tok.encode(case.prefix)[-1024:]
    t = time.perf_counter()
    session = model.new_session(n_ctx=2048)
    session.feed(ids)
    out: list[int] = []
    for token in session.generate(max_tokens):
        if tok.is_special(token):
            break
        out.append(token)
        if b"\n" in tok.token_bytes(token) and tok.decode(out).strip():
            break
    text = tok.decode(out)
    return (first_line(text.lstrip()) if case.kind == "block" else first_line(text)), time.perf_counter() - t


async def pipeline(cases: list[Case]) -> list[tuple[str, float]]:
    """Each case through `sparkls serve`: open the package's files, then the case's document, then ask."""
    client, init = await start_server(options={"index": {"enabled": False}})
    assert "neural" in init.server_info.version, init.server_info
    ready = asyncio.Event()
    client.feature("sparkls/status")(lambda p: ready.set() if p.engine == "neural" else None)
    await asyncio.wait_for(ready.wait(), 300)
    results = []
    for n, case in enumerate(cases):
        uri = case.path.with_name(f"_case{n}_{case.path.name}").as_uri()
        # Neighbours open, never the case's own file: its full text would hold the answer.
        others = [p for p in sorted(case.path.parent.glob("*.py")) if p != case.path][:3]
        for other in others:
            await client.open(other.as_uri(), other.read_text())
        await client.open(uri, case.prefix + case.suffix)
        line = case.prefix.count("\n")
        col = len(case.prefix) - case.prefix.rfind("\n") - 1
        t = time.perf_counter()
        result = await client.text_document_inline_completion_async(client.inline_params(uri, line, col))
        elapsed = time.perf_counter() - t
        text = ""
        if result.items:  # the item repeats the word typed before the cursor; the answer is the rest
            item = result.items[0]
            text = item.insert_text[col - item.range.start.character :]
        results.append((first_line(text), elapsed))
        for closing in [uri] + [p.as_uri() for p in others]:
            client.text_document_did_close(_close(closing))
    await stop_server(client)
    return results


def _close(uri: str):
    from lsprotocol import types

    return types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri))


def report(name: str, cases: list[Case], answers: list[tuple[str, float]]) -> None:
    for kind in ("line", "block"):
        rows = [(c, a) for c, a in zip(cases, answers) if c.kind == kind]
        if not rows:
            continue
        em = sum(a[0].strip() == c.target.strip() for c, a in rows) / len(rows)
        es = statistics.mean(edit_similarity(a[0].strip(), c.target.strip()) for c, a in rows)
        empty = sum(not a[0].strip() for _, a in rows) / len(rows)
        lat = sorted(a[1] * 1000 for _, a in rows)
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        print(
            f"{name:<9} {kind:<6} n={len(rows):<3} exact {em:6.1%}  edit-sim {es:6.1%}  empty {empty:6.1%}  "
            f"latency p50 {statistics.median(lat):7.1f} ms  p99 {p99:7.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40, help="cases of each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", action="store_true", help="print every case: target, raw answer, pipeline answer")
    args = parser.parse_args()
    cases = make_cases(args.cases, args.seed)
    print(f"{len(cases)} cases from pygls {pygls.__file__.rsplit('/', 2)[0]} and lsprotocol sources")

    from sparkls.decode.llama import LlamaModel

    model = LlamaModel.load()
    model.warmup()
    raw = [raw_greedy(model, c) for c in cases]
    del model
    full = asyncio.run(pipeline(cases))
    if args.show:
        for c, (r, _), (f, _) in zip(cases, raw, full):
            print(f"[{c.kind}] {c.path.name}: ...{c.prefix[-60:]!r}")
            print(f"    target   {c.target.strip()!r}\n    raw      {r.strip()!r}\n    pipeline {f.strip()!r}")
    report("raw", cases, raw)
    report("pipeline", cases, full)


if __name__ == "__main__":
    main()
