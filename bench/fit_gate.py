"""Fit the show/no-show gate (server/gate.py) on code SmolLM2 has never seen, and measure it.

    .venv/bin/python bench/fit_gate.py [--cases 120] [--seed 0] [--write]

Cases are cut from the packages of bench/unseen.py: the rest of a line after a cursor placed right after a token, and
the next line after a block header. Each goes through the real `sparkls serve` (neural core, gate off, streamed
ghost text as the editors get it): the gate's features are what the server recorded when the first text was ready
(`sparkls/suggestionInfo`), and a suggestion is good when the first line of its final text is exactly the target.
The TUNE packages fit the weights (logistic regression, Newton, L2) and the threshold: the highest one that hides at
most 3 % of the cases' exact answers. `--write` stores both in server/gate_weights.json. On the TEST packages, with
and without the gate at that threshold: shown rate, precision of what is shown, exact match and edit similarity over
all cases (a hidden suggestion counts as an empty answer).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import unseen  # noqa: E402
from editor import VSCODE_STREAMING, start_server, stop_server  # noqa: E402

from sparkls.server import gate  # noqa: E402

MAX_LOSS = 0.03  # of all cases' exact answers the gate may hide
_TOKEN_END = re.compile(r"(?<=[\w)\]}\"'.,=(\[:])(?=[\s\w(\[.,:=)])")


@dataclass
class Case:
    kind: str  # "line" | "block"
    path: Path
    prefix: str
    suffix: str
    target: str


def cut_cases(packages, per_kind: int, seed: int, blocks_per_split: int = 0) -> list[Case]:
    rng = random.Random(seed)
    lines_cases, blocks = [], []
    for pkg in packages:
        for path in unseen.sources(pkg):
            text = path.read_text(encoding="utf-8", errors="replace")
            if len(text) < 1500:
                continue
            lines = text.split("\n")
            offset = 0
            for i, line in enumerate(lines):
                code = line.strip()
                ok = i > 15 and code and not code.startswith(("#", '"', "'")) and len(code) > 12
                if ok:
                    cuts = [m.start() for m in _TOKEN_END.finditer(line) if len(line) // 3 < m.start() < len(line) - 2]
                    cuts = [c for c in cuts if not (line[c - 1].isalnum() and line[c].isalnum())]
                    if cuts:
                        c = rng.choice(cuts)
                        lines_cases.append(Case("line", path, text[: offset + c], text[offset + len(line):], line[c:].rstrip()))
                if ok and code.endswith(":") and i + 1 < len(lines) and lines[i + 1].strip():
                    body = lines[i + 1]
                    indent = body[: len(body) - len(body.lstrip())]
                    start = offset + len(line) + 1
                    blocks.append(Case("block", path, text[:start] + indent, text[start + len(body):], body.strip()))
                offset += len(line) + 1
    rng.shuffle(lines_cases)
    rng.shuffle(blocks)
    chosen = lines_cases[:per_kind] + blocks[:blocks_per_split]
    chosen.sort(key=lambda c: (str(c.path), len(c.prefix)))  # file order: the server's KV cache is reused
    return chosen


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


@dataclass
class Outcome:
    answer: str  # the first line of the final suggestion ("" when none)
    features: np.ndarray | None
    seconds: float


def _key(case: Case) -> str:
    return f"{case.path.name}:{len(case.prefix)}:{case.kind}"


async def run(cases: list[Case], cache: Path) -> list[Outcome]:
    """Each case through `sparkls serve` with streamed ghost text, as the editor plugins ask.

    Outcomes are appended to ``cache`` (JSON lines) as they come, and cases found there are not run again."""
    known = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            row = json.loads(line)
            known[row["key"]] = Outcome(row["answer"], None if row["features"] is None else np.array(row["features"]), row["seconds"])
    todo = [c for c in cases if _key(c) not in known]
    if todo:
        await _run(todo, cache, known)
    return [known[_key(c)] for c in cases]


async def _run(cases: list[Case], cache: Path, known: dict) -> None:
    client, init = await start_server(VSCODE_STREAMING, options={"index": {"enabled": False}, "gate": {"enabled": False}, "debounce_ms": 0})
    assert "neural" in init.server_info.version, init.server_info
    ready = asyncio.Event()
    finals: dict[str, str] = {}
    done: dict[str, asyncio.Event] = {}
    client.feature("sparkls/status")(lambda p: ready.set() if p.engine == "neural" else None)

    def on_stream(p) -> None:
        if p.done:
            finals[p.streamId] = p.text
            done.setdefault(p.streamId, asyncio.Event()).set()

    client.feature("sparkls/inlineCompletionStream")(on_stream)
    await asyncio.wait_for(ready.wait(), 600)
    versions = {}
    started = time.perf_counter()
    for n, case in enumerate(cases):
        uri = case.path.with_name("_gate_" + case.path.name).as_uri()
        text = case.prefix + case.suffix
        if uri not in versions:
            for other in versions:  # one document open at a time: no snippets from other cases' files
                client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(other)))
            versions = {uri: 1}
            await client.open(uri, text)
        else:  # the whole text replaced: the document's KV cache keeps the common start
            versions[uri] += 1
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=versions[uri], uri=uri),
                [types.TextDocumentContentChangeWholeDocument(text=text)]))
        line = case.prefix.count("\n")
        col = len(case.prefix) - case.prefix.rfind("\n") - 1
        t = time.perf_counter()
        result = await client.text_document_inline_completion_async(client.inline_params(uri, line, col, automatic=n % 2 == 1))
        answer, features = "", None
        if result.items:
            item = result.items[0]
            stream_id = item.command.arguments[0]["streamId"]
            event = done.setdefault(stream_id, asyncio.Event())
            await asyncio.wait_for(event.wait(), 60)
            full = finals[stream_id]
            answer = full[col - item.range.start.character:].split("\n", 1)[0]
            if case.kind == "block":
                answer = full[col - item.range.start.character:].strip("\n").split("\n", 1)[0]
            info = await client.protocol.send_request_async("sparkls/suggestionInfo", {"streamId": stream_id})
            if info is not None and info.features is not None:
                features = np.array([getattr(info.features, f) for f in gate.FEATURES])
        outcome = Outcome(answer.strip(), features, time.perf_counter() - t)
        known[_key(case)] = outcome
        with cache.open("a") as f:
            row = {"key": _key(case), "answer": outcome.answer, "seconds": outcome.seconds,
                   "features": None if features is None else [float(v) for v in features]}
            f.write(json.dumps(row) + "\n")
        if n % 10 == 9:
            print(f"  {n + 1}/{len(cases)} cases, {time.perf_counter() - started:.0f} s", flush=True)
    await stop_server(client)


def choose_threshold(scores: np.ndarray, good: np.ndarray, n_cases: int) -> float:
    """The highest threshold that hides at most MAX_LOSS of all cases' exact answers."""
    best = 0.0
    for th in np.unique(scores):
        hidden_good = np.sum(good & (scores < th))
        if hidden_good <= MAX_LOSS * n_cases:
            best = max(best, float(th))
    return best


def report(name: str, cases, outcomes, show: np.ndarray) -> dict:
    good = np.array([o.answer == c.target.strip() and bool(o.answer) for c, o in zip(cases, outcomes)])
    has = np.array([bool(o.answer) for o in outcomes])
    shown = has & show
    exact = float(np.mean(good & show))
    sim = statistics.mean(edit_similarity(o.answer if s else "", c.target.strip()) for c, o, s in zip(cases, outcomes, shown))
    precision = float(np.sum(good & shown) / max(1, np.sum(shown)))
    row = {"shown": float(np.mean(shown)), "precision": precision, "exact": exact, "edit_similarity": sim}
    print(f"{name:<14} n={len(cases):<4} shown {row['shown']:6.1%}  precision {precision:6.1%}  "
          f"exact {exact:6.1%}  edit-sim {sim:6.1%}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100, help="rest-of-line cases per split")
    parser.add_argument("--blocks", type=int, default=0, help="next-line cases per split (the stop rules leave most empty)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="store the fitted weights in server/gate_weights.json")
    args = parser.parse_args()
    tune = cut_cases(unseen.TUNE, args.cases, args.seed, args.blocks)
    test = cut_cases(unseen.TEST, args.cases, args.seed, args.blocks)
    print(f"{len(tune)} TUNE cases from {', '.join(p.name for p in unseen.TUNE)}; "
          f"{len(test)} TEST cases from {', '.join(p.name for p in unseen.TEST)}")
    t0 = time.perf_counter()
    version = hashlib.sha256(",".join(gate.FEATURES).encode()).hexdigest()[:8]  # other features: other outcomes
    cache = unseen.cache_dir() / f"fit_gate-{args.seed}-{version}.jsonl"  # outcomes so far: a rerun resumes
    outcomes = asyncio.run(run(tune + test, cache))  # one server: the model loads once
    tune_out, test_out = outcomes[: len(tune)], outcomes[len(tune) :]
    print(f"ran {len(tune) + len(test)} cases in {time.perf_counter() - t0:.0f} s")

    rows = [(c, o) for c, o in zip(tune, tune_out) if o.features is not None]
    X = np.array([o.features for _, o in rows])
    y = np.array([float(o.answer == c.target.strip()) for c, o in rows])
    w = gate.fit(X, y)
    scores = gate.sigmoid(X @ w)
    threshold = choose_threshold(scores, y.astype(bool), len(tune))
    print(f"fitted on {len(rows)} TUNE suggestions ({y.mean():.1%} good); threshold {threshold:.3f}")
    for name, value in sorted(zip(gate.FEATURES, w), key=lambda kv: -abs(kv[1])):
        print(f"  {name:<14} {value:+.3f}")

    def gated(outcomes) -> np.ndarray:
        return np.array([o.features is None or gate.sigmoid(o.features @ w) >= threshold for o in outcomes])

    print("TUNE:")
    report("  no gate", tune, tune_out, np.ones(len(tune), bool))
    report("  gate", tune, tune_out, gated(tune_out))
    print("TEST:")
    base = report("  no gate", test, test_out, np.ones(len(test), bool))
    with_gate = report("  gate", test, test_out, gated(test_out))
    print(f"TEST: precision {100 * (with_gate['precision'] - base['precision']):+.1f} points, "
          f"exact {100 * (with_gate['exact'] - base['exact']):+.1f} points, "
          f"shown {100 * (with_gate['shown'] - base['shown']):+.1f} points")
    if args.write:
        data = {
            "about": "server/gate.py weights, fitted by bench/fit_gate.py on the TUNE packages of bench/unseen.py",
            "features": list(gate.FEATURES),
            "weights": {f: round(float(v), 5) for f, v in zip(gate.FEATURES, w)},
            "threshold": round(threshold, 4),
            "tune": {"suggestions": len(rows), "good": round(float(y.mean()), 4)},
            "test": {"no_gate": base, "gate": with_gate},
        }
        gate.WEIGHTS.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {gate.WEIGHTS}")


if __name__ == "__main__":
    main()
