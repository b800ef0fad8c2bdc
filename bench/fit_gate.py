"""Fit the show/no-show gate (server/gate.py) on code SmolLM2 has never seen, and measure it.

    .venv/bin/python bench/fit_gate.py [--cases 60] [--tune-cases N] [--seed 0] [--test [--write]]

Cases are bench/quality.py's (bench/quality_cases.py: rest of line, next line at a header's end, blank indented
line; cut from the packages of bench/unseen.py), scored as that bench scores them. Each goes through the real
`sparkls serve` as an as-you-type request (the only kind the gate keeps back; neural core, gate off, streamed ghost
text as the editors get it): the gate's features are what the server recorded when the first text was ready
(`sparkls/suggestionInfo`), and a suggestion is good when it is an exact match.
The TUNE packages fit the weights (logistic regression, Newton, L2) and the threshold: the highest one that hides at
most `budget` of the cases' exact answers; which feature groups (margins, n-gram agreement past the first token,
repeated context), which L2 penalty and which budget (the held-out loss must stay within 3 %) are chosen by
cross-validation on TUNE alone (`select`). TEST is measured only with `--test`, once the choices are made: on the
TEST packages, with and without the gate at that threshold, the shown rate, precision of what is shown, exact match
and edit similarity over all cases (a hidden suggestion counts as an empty answer). `--write` stores the weights, the
threshold and those figures in server/gate_weights.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lsprotocol import types

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import unseen  # noqa: E402
from editor import VSCODE_STREAMING, start_server, stop_server  # noqa: E402
from quality_cases import Case, exact, make_cases, similarity  # noqa: E402

from sparkls.server import gate  # noqa: E402

MAX_LOSS = 0.03  # of all cases' exact answers the gate may hide
KINDS = ("line", "next", "block")


@dataclass
class Outcome:
    answer: str  # the first line of the final suggestion ("" when none)
    features: np.ndarray | None
    seconds: float


def _key(case: Case) -> str:
    return f"{case.package}:{case.path.name}:{len(case.prefix)}:{case.kind}"


def _order(case: Case) -> tuple:
    return (str(case.path), len(case.prefix))  # file order: the server's KV cache is reused


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
        # As you type: only automatic requests are gated (an invoked one is always answered).
        result = await client.text_document_inline_completion_async(client.inline_params(uri, line, col, automatic=True))
        answer, features = "", None
        if result.items:
            item = result.items[0]
            stream_id = item.command.arguments[0]["streamId"]
            event = done.setdefault(stream_id, asyncio.Event())
            await asyncio.wait_for(event.wait(), 300)  # a loaded machine: streams take long
            answer = finals[stream_id][col - item.range.start.character:]  # scored as bench/quality.py does
            info = await client.protocol.send_request_async("sparkls/suggestionInfo", {"streamId": stream_id})
            if info is not None and info.features is not None:
                features = np.array([getattr(info.features, f) for f in gate.FEATURES])
        outcome = Outcome(answer, features, time.perf_counter() - t)
        known[_key(case)] = outcome
        with cache.open("a") as f:
            row = {"key": _key(case), "answer": outcome.answer, "seconds": outcome.seconds,
                   "features": None if features is None else [float(v) for v in features]}
            f.write(json.dumps(row) + "\n")
        if n % 10 == 9:
            print(f"  {n + 1}/{len(cases)} cases, {time.perf_counter() - started:.0f} s", flush=True)
    await stop_server(client)


def choose_threshold(scores: np.ndarray, good: np.ndarray, n_cases: float, max_loss: float = MAX_LOSS) -> float:
    """The highest threshold that hides at most ``max_loss`` of all cases' exact answers."""
    best = 0.0
    for th in np.unique(scores):
        hidden_good = np.sum(good & (scores < th))
        if hidden_good <= max_loss * n_cases:
            best = max(best, float(th))
    return best


# Features added together, tried as groups: the first fit's, and those that tell near misses apart.
GROUPS = {
    "margins": ("first_margin", "min_margin"),
    "agreement": ("ngram_common", "ngram_same_line"),
    "repeats": ("repeats_context",),
}
L2S = (0.01, 0.03, 0.1, 0.3)


BUDGETS = (0.0, 0.01, 0.02, 0.03)


def select(X: np.ndarray, y: np.ndarray, cases_per_row: float, folds: int = 5, repeats: int = 4) -> tuple[np.ndarray, float, float]:
    """The feature groups, L2 penalty and threshold rule to fit with, by cross-validation on TUNE alone.

    For each choice, the gate fitted on four fifths, its threshold the highest hiding at most ``budget`` of those
    cases' exact answers, is applied to the fifth left out. A budget of MAX_LOSS on the cases fitted on hides more
    on cases not seen (with ~100 cases, one good answer is a point), so the budget is chosen too: among the choices
    whose held-out gates hide at most MAX_LOSS of the held-out exact answers, the best precision of what they show.
    Returns the feature columns, the penalty and the budget."""
    import itertools

    base = [i for i, f in enumerate(gate.FEATURES) if not any(f in g for g in GROUPS.values())]
    best, best_key = (np.array(base), L2S[0], 0.0), (-1.0, 0.0, 0)
    for k in range(len(GROUPS) + 1):
        for names in itertools.combinations(GROUPS, k):
            cols = np.array(base + [gate.FEATURES.index(f) for n in names for f in GROUPS[n]])
            for l2 in L2S:
                for budget in BUDGETS:
                    shown = right = hidden_right = 0
                    for r in range(repeats):
                        order = np.random.default_rng(r).permutation(len(y))
                        for f in range(folds):
                            held = order[f::folds]
                            train = np.setdiff1d(order, held)
                            w = gate.fit(X[np.ix_(train, cols)], y[train], l2=l2)
                            th = choose_threshold(gate.sigmoid(X[np.ix_(train, cols)] @ w), y[train].astype(bool),
                                                  len(train) * cases_per_row, budget)
                            show = gate.sigmoid(X[np.ix_(held, cols)] @ w) >= th
                            shown += int(show.sum())
                            right += int((show & (y[held] == 1)).sum())
                            hidden_right += int((~show & (y[held] == 1)).sum())
                    precision = right / max(1, shown)
                    loss = hidden_right / (repeats * len(y) * cases_per_row)
                    key = (precision if loss <= MAX_LOSS else -loss, -len(cols), -budget)
                    if key > best_key:
                        best, best_key = (cols, l2, budget), key
                        print(f"  cv best so far: {'+'.join(names) or 'first fit'} l2 {l2} budget {budget:.0%}: "
                              f"precision {precision:.1%}, exact hidden {loss:.1%} of the cases")
    print(f"chosen: {', '.join(gate.FEATURES[i] for i in best[0][1:])} (l2 {best[1]}, budget {best[2]:.0%})")
    return best


def good(case: Case, outcome: Outcome) -> bool:
    return bool(outcome.answer.strip()) and exact(case.kind, outcome.answer, case.target)


def report(name: str, cases, outcomes, show: np.ndarray) -> dict:
    right = np.array([good(c, o) for c, o in zip(cases, outcomes)])
    has = np.array([bool(o.answer.strip()) for o in outcomes])
    shown = has & show
    em = float(np.mean(right & show))
    sim = statistics.mean(similarity(c.kind, o.answer if s else "", c.target) for c, o, s in zip(cases, outcomes, shown))
    precision = float(np.sum(right & shown) / max(1, np.sum(shown)))
    row = {"shown": float(np.mean(shown)), "precision": precision, "exact": em, "edit_similarity": sim}
    print(f"{name:<14} n={len(cases):<4} shown {row['shown']:6.1%}  precision {precision:6.1%}  "
          f"exact {em:6.1%}  edit-sim {sim:6.1%}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60, help="cases of each kind (bench/quality_cases.py) per split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tune-cases", type=int, help="cases of each kind on TUNE (default: --cases)")
    parser.add_argument("--test", action="store_true", help="measure on the TEST packages (once, at the end)")
    parser.add_argument("--write", action="store_true", help="with --test: store the fitted weights in server/gate_weights.json")
    args = parser.parse_args()
    tune = sorted(make_cases(unseen.TUNE, args.tune_cases or args.cases, args.seed, KINDS), key=_order)
    test = sorted(make_cases(unseen.TEST, args.cases, args.seed, KINDS), key=_order)
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
    y = np.array([float(good(c, o)) for c, o in rows])
    used, l2, budget = select(X, y, len(tune) / max(1, len(rows)))
    w = np.zeros(len(gate.FEATURES))
    w[used] = gate.fit(X[:, used], y, l2=l2)
    scores = gate.sigmoid(X @ w)
    threshold = choose_threshold(scores, y.astype(bool), len(tune), budget)
    print(f"fitted on {len(rows)} TUNE suggestions ({y.mean():.1%} good); threshold {threshold:.3f}")
    for name, value in sorted(zip(gate.FEATURES, w), key=lambda kv: -abs(kv[1])):
        print(f"  {name:<14} {value:+.3f}")

    def gated(outcomes) -> np.ndarray:
        return np.array([o.features is None or gate.sigmoid(o.features @ w) >= threshold for o in outcomes])

    print("TUNE:")
    report("  no gate", tune, tune_out, np.ones(len(tune), bool))
    report("  gate", tune, tune_out, gated(tune_out))
    if not args.test:
        return  # choices are made on TUNE; TEST is looked at once, at the end (--test)
    print("TEST:")
    base = report("  no gate", test, test_out, np.ones(len(test), bool))
    with_gate = report("  gate", test, test_out, gated(test_out))
    print(f"TEST: precision {100 * (with_gate['precision'] - base['precision']):+.1f} points, "
          f"exact {100 * (with_gate['exact'] - base['exact']):+.1f} points, "
          f"shown {100 * (with_gate['shown'] - base['shown']):+.1f} points")
    if args.write:
        gate.Gate.save(gate.WEIGHTS, "server/gate.py weights, fitted by bench/fit_gate.py on the TUNE packages of "
                       "bench/unseen.py", gate.FEATURES, w, threshold,
                       tune={"suggestions": len(rows), "good": round(float(y.mean()), 4)},
                       test={"no_gate": base, "gate": with_gate})
        print(f"wrote {gate.WEIGHTS}")


if __name__ == "__main__":
    main()
