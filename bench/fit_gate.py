"""Fit the show/no-show gate (server/gate.py) on code SmolLM2 has never seen, and measure it.

    .venv/bin/python bench/fit_gate.py [--tune-cases 300] [--seed 0] [--collect] [--test [--cases 200] [--test-seed 16] [--write]]

Cases are bench/quality.py's (bench/quality_cases.py: rest of line, next line at a header's end, blank indented
line; cut from the packages of bench/unseen.py), scored as that bench scores them. Each goes through the real
`sparkls serve` as an as-you-type request (the only kind the gate keeps back; neural core, gate off, streamed ghost
text as the editors get it): the gate's features are what the server recorded when the first text was ready
(`sparkls/suggestionInfo`), and a suggestion is good when its first line is an exact match (so a case ends once the
first line is whole: the next case's request stops the rest of the decode). Outcomes go to a cache as they come
(keyed by where the case is cut, whatever the seed): an interrupted run resumes, `--collect` runs both splits into it
without looking at any figure. Features added to the gate since an outcome was recorded that depend on the text
alone are computed here as the server computes them.
The TUNE packages fit the weights (logistic regression, Newton, L2). Which feature groups, which L2 penalty and the
threshold are chosen by cross-validation on TUNE alone (`select`): each case's score comes from gates fitted without
it, and the threshold is read off those held-out scores (`calibrate`): the best precision of what is shown whose
share of the cases' exact answers hidden, plus one standard error, is within 3 %. TEST is measured only with
`--test`, once the choices are made: on the TEST packages (their own seed), with and without the gate, the shown
rate, precision of what is shown, exact match and edit similarity over all cases (a hidden suggestion counts as an
empty answer), and the weights shipped so far beside. `--write` stores the weights, the threshold and those figures
in server/gate_weights.json.
"""

from __future__ import annotations

import argparse
import asyncio
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
    answer: str  # the final suggestion after the cursor ("" when none; only its first line is whole)
    first: str  # its text when the gate scored it (the first paced text)
    features: dict[str, float] | None  # the gate's features, by name, as the server reported them
    seconds: float

    def vector(self, case: Case) -> np.ndarray:
        """gate.FEATURES' values: the server's, and those it did not report (added since the outcome was recorded,
        depending only on the text and the document) computed here as the server would."""
        missing = [f for f in gate.FEATURES if f not in self.features]
        local = dict(zip(gate.FEATURES, gate.features(_situation(case, self.first)))) if missing else {}
        return np.array([self.features[f] if f in self.features else local[f] for f in gate.FEATURES])


def _situation(case: Case, first: str) -> gate.Situation:
    before = case.prefix[case.prefix.rfind("\n") + 1:]
    above = case.prefix[: len(case.prefix) - len(before) - 1]
    after = case.suffix.split("\n", 1)[0]
    return gate.Situation(text=first, logprobs=(), prefix_line=before, suffix_line=after,
                          invoked=False, language="python", since_key=None, accept_rate=None,
                          previous_line=above[above.rfind("\n") + 1:] if above else "",
                          elsewhere=case.prefix[: len(case.prefix) - len(before)] + case.suffix[len(after):])


def _key(case: Case) -> str:
    return f"{case.package}:{case.path.name}:{len(case.prefix)}:{case.kind}"


def _order(case: Case) -> tuple:
    return (str(case.path), len(case.prefix))  # file order: the server's KV cache is reused


async def run(cases: list[Case], cache: Path, whole_line_only: bool = True) -> list[Outcome]:
    """Each case through `sparkls serve` with streamed ghost text, as the editor plugins ask.

    Outcomes are appended to ``cache`` (JSON lines) as they come, and cases found there are not run again."""
    known = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            row = json.loads(line)
            known[row["key"]] = Outcome(row["answer"], row["first"], row["features"], row["seconds"])
    todo = [c for c in cases if _key(c) not in known]
    if todo:
        await _run(todo, cache, known, whole_line_only)
    return [known[_key(c)] for c in cases]


def _first_line_whole(kind: str, answer: str) -> bool:
    """Whether more text could no longer change the answer's first line (bench/quality_cases.py's answer_line)."""
    return "\n" in (answer[1:] if kind == "next" and answer.startswith("\n") else answer)


async def _run(cases: list[Case], cache: Path, known: dict, whole_line_only: bool) -> None:
    client, init = await start_server(VSCODE_STREAMING, options={"index": {"enabled": False}, "gate": {"enabled": False}, "debounce_ms": 0})
    assert "neural" in init.server_info.version, init.server_info
    ready = asyncio.Event()
    finals: dict[str, str] = {}
    done: dict[str, asyncio.Event] = {}
    client.feature("sparkls/status")(lambda p: ready.set() if p.engine == "neural" else None)

    lines_needed: dict[str, tuple[str, int]] = {}  # stream -> (kind, where the answer starts): enough once its first line is whole

    def on_stream(p) -> None:
        finals[p.streamId] = p.text
        need = lines_needed.get(p.streamId)
        if p.done or (need is not None and _first_line_whole(need[0], p.text[need[1]:])):
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
        answer, first, features = "", "", None
        t_offer = time.perf_counter() - t
        if result.items:
            item = result.items[0]
            stream_id = item.command.arguments[0]["streamId"]
            skip = col - item.range.start.character
            first = item.insert_text[skip:]
            finals.setdefault(stream_id, item.insert_text)
            if whole_line_only:  # only the first line is scored: the next case's request stops the rest of the decode
                lines_needed[stream_id] = (case.kind, skip)
                if _first_line_whole(case.kind, finals[stream_id][skip:]):
                    done.setdefault(stream_id, asyncio.Event()).set()
            event = done.setdefault(stream_id, asyncio.Event())
            await asyncio.wait_for(event.wait(), 300)  # a loaded machine: streams take long
            answer = finals[stream_id][skip:]  # scored as bench/quality.py does
            info = await client.protocol.send_request_async("sparkls/suggestionInfo", {"streamId": stream_id})
            if info is not None and info.features is not None:
                features = {f: float(getattr(info.features, f)) for f in gate.FEATURES}
        outcome = Outcome(answer, first, features, time.perf_counter() - t)
        known[_key(case)] = outcome
        with cache.open("a") as f:
            row = {"key": _key(case), "answer": outcome.answer, "first": first, "features": features,
                   "seconds": round(outcome.seconds, 3), "offer_seconds": round(t_offer, 3)}
            f.write(json.dumps(row) + "\n")
        if n % 10 == 9:
            print(f"  {n + 1}/{len(cases)} cases, {time.perf_counter() - started:.0f} s", flush=True)
    await stop_server(client)


# What the bench cannot show: a bench case is asked once, nothing is accepted, its "keystroke" is the whole document
# replaced. Their weights stay 0 in the fit, and then follow the user's accepts and rejects.
UNFITTED = ("invoked", "since_key", "accept_rate", "has_rate")
# Features added together, tried as groups beside the others.
GROUPS = {
    "margins": ("first_margin", "min_margin"),
    "agreement": ("ngram_common", "ngram_same_line"),
    "repeats": ("repeats_context",),
    "header": ("header_end",),
    "prose": ("opens_prose",),
    "seen": ("seen_elsewhere",),
}
L2S = (0.001, 0.003, 0.01, 0.03, 0.1)
FOLDS, REPEATS = 5, 6
Z = 1.0  # the held-out loss plus Z standard errors must stay within MAX_LOSS: TEST is other packages


@dataclass
class Choice:
    cols: np.ndarray
    l2: float
    threshold: float
    precision: float  # held out (cross-validation on TUNE), at that threshold
    loss: float  # held-out exact answers hidden, of all cases
    shown: float

    def names(self) -> str:
        return ", ".join(gate.FEATURES[i] for i in self.cols[1:])


def held_out_scores(X: np.ndarray, y: np.ndarray, cols: np.ndarray, l2: float) -> np.ndarray:
    """Each row's score from gates fitted without it: REPEATS shuffles of FOLDS folds, one row of scores each."""
    out = np.zeros((REPEATS, len(y)))
    for r in range(REPEATS):
        order = np.random.default_rng(r).permutation(len(y))
        for f in range(FOLDS):
            held = order[f::FOLDS]
            train = np.setdiff1d(order, held)
            w = gate.fit(X[np.ix_(train, cols)], y[train], l2=l2)
            out[r, held] = gate.sigmoid(X[np.ix_(held, cols)] @ w)
    return out


def calibrate(scores: np.ndarray, y: np.ndarray, n_cases: int, max_loss: float = MAX_LOSS, z: float = Z):
    """The threshold on held-out scores (rows: repeats) with the best precision of what is shown whose share of the
    cases' exact answers hidden, plus ``z`` standard errors, stays within ``max_loss``.

    Held-out scores are what a gate gives cases it was not fitted on, so a threshold read off them is one for new
    code, where one read off the fitted cases' own scores hides more than it was allowed to (those score higher).
    Returns (threshold, precision, loss, shown), all averaged over the repeats."""
    good = y.astype(bool)
    best = (0.0, float(good.mean()), 0.0, len(y) / n_cases)
    for th in np.unique(np.quantile(scores, np.linspace(0, 0.95, 96))):
        show = scores >= th
        hidden = np.sum(good & ~show) / scores.shape[0]
        loss = hidden / n_cases
        bound = loss + z * np.sqrt(max(hidden, 1.0)) / n_cases  # a count of hidden answers: Poisson error
        if bound > max_loss:
            continue
        precision = np.sum(good & show) / max(1, np.sum(show))
        if precision > best[1]:
            best = (float(th), float(precision), float(loss), float(np.sum(show) / scores.shape[0] / n_cases))
    return best


def select(X: np.ndarray, y: np.ndarray, n_cases: int) -> Choice:
    """The feature groups, L2 penalty and threshold, by cross-validation on TUNE alone: the best held-out precision of
    what is shown within the loss bound (calibrate). Ties: fewer features."""
    import itertools

    grouped = {f for g in GROUPS.values() for f in g}
    base = [i for i, f in enumerate(gate.FEATURES) if f not in grouped and f not in UNFITTED and np.ptp(X[:, i]) > 0 or i == 0]
    best = None
    for k in range(len(GROUPS) + 1):
        for names in itertools.combinations(GROUPS, k):
            cols = np.array(base + [gate.FEATURES.index(f) for n in names for f in GROUPS[n]])
            for l2 in L2S:
                th, precision, loss, shown = calibrate(held_out_scores(X, y, cols, l2), y, n_cases)
                choice = Choice(cols, l2, th, precision, loss, shown)
                if best is None or (precision, -len(cols)) > (best.precision, -len(best.cols)):
                    best = choice
                    print(f"  cv best so far: {'+'.join(names) or 'base'} l2 {l2}: threshold {th:.3f}, "
                          f"precision {precision:.1%}, exact hidden {loss:.1%} of the cases, shown {shown:.1%}")
    print(f"chosen: {best.names()} (l2 {best.l2}, threshold {best.threshold:.3f})")
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
    print(f"{name:<24} n={len(cases):<4} shown {row['shown']:6.1%}  precision {precision:6.1%}  "
          f"exact {em:6.1%}  edit-sim {sim:6.1%}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200, help="cases of each kind (bench/quality_cases.py) on TEST")
    parser.add_argument("--tune-cases", type=int, default=300, help="cases of each kind on TUNE")
    parser.add_argument("--seed", type=int, default=0, help="which TUNE cases")
    parser.add_argument("--test-seed", type=int, default=16, help="which TEST cases")
    parser.add_argument("--collect", action="store_true", help="only run the cases of both splits into the cache (no figures)")
    parser.add_argument("--test", action="store_true", help="measure on the TEST packages (once, at the end)")
    parser.add_argument("--write", action="store_true", help="with --test: store the fitted weights in server/gate_weights.json")
    args = parser.parse_args()
    tune = sorted(make_cases(unseen.TUNE, args.tune_cases, args.seed, KINDS), key=_order)
    test = sorted(make_cases(unseen.TEST, args.cases, args.test_seed, KINDS), key=_order)
    print(f"{len(tune)} TUNE cases from {', '.join(p.name for p in unseen.TUNE)} (seed {args.seed}); "
          f"{len(test)} TEST cases from {', '.join(p.name for p in unseen.TEST)} (seed {args.test_seed})")
    # Outcomes so far, whatever the seed (a case's key says where it is cut): a rerun resumes.
    cache = unseen.cache_dir() / "fit_gate-outcomes.jsonl"
    t0 = time.perf_counter()
    if args.collect:
        asyncio.run(run(tune + test, cache))  # TUNE first: fitting can start while TEST runs (into the cache only)
        print(f"ran {len(tune) + len(test)} cases in {time.perf_counter() - t0:.0f} s")
        return
    tune_out = asyncio.run(run(tune, cache))
    print(f"ran {len(tune)} TUNE cases in {time.perf_counter() - t0:.0f} s")

    rows = [(c, o) for c, o in zip(tune, tune_out) if o.features is not None]
    X = np.array([o.vector(c) for c, o in rows])
    y = np.array([float(good(c, o)) for c, o in rows])
    print(f"{len(rows)} TUNE suggestions, {y.mean():.1%} good; no gate: precision {y.mean():.1%}")
    shipped_names = tuple(json.loads(gate.WEIGHTS.read_text())["features"])
    if set(shipped_names) <= set(gate.FEATURES):  # the weights in use, on the same cases: their threshold, and one calibrated here
        shipped = gate.Gate.load(gate.WEIGHTS, shipped_names)
        cur = gate.sigmoid(X[:, [gate.FEATURES.index(f) for f in shipped_names]] @ shipped.w)[None, :]
        hidden = np.sum((y == 1) & (cur[0] < shipped.threshold)) / len(tune)
        th, precision, loss, shown = calibrate(cur, y, len(tune))
        print(f"shipped weights (fitted on some of these cases): at their threshold {shipped.threshold:.3f} they hide "
              f"{hidden:.1%}; at {th:.3f}, calibrated here: precision {precision:.1%}, hidden {loss:.1%}, shown {shown:.1%}")
    choice = select(X, y, len(tune))
    w = np.zeros(len(gate.FEATURES))
    w[choice.cols] = gate.fit(X[:, choice.cols], y, l2=choice.l2)
    threshold = choice.threshold
    for name, value in sorted(zip(gate.FEATURES, w), key=lambda kv: -abs(kv[1])):
        print(f"  {name:<16} {value:+.3f}")

    def gated(cases, outcomes) -> np.ndarray:
        return np.array([o.features is None or gate.sigmoid(o.vector(c) @ w) >= threshold for c, o in zip(cases, outcomes)])

    print("TUNE:")
    report("  no gate", tune, tune_out, np.ones(len(tune), bool))
    report("  gate (fitted on these)", tune, tune_out, gated(tune, tune_out))
    if not args.test:
        return  # choices are made on TUNE; TEST is looked at once, at the end (--test)
    test_out = asyncio.run(run(test, cache))
    print("TEST:")
    base = report("  no gate", test, test_out, np.ones(len(test), bool))
    with_gate = report("  gate", test, test_out, gated(test, test_out))
    if set(shipped_names) <= set(gate.FEATURES):
        cols = [gate.FEATURES.index(f) for f in shipped_names]
        report("  shipped gate", test, test_out, np.array([o.features is None or shipped.shows(o.vector(c)[cols])
                                                           for c, o in zip(test, test_out)]))
    print(f"TEST: precision {100 * (with_gate['precision'] - base['precision']):+.1f} points, "
          f"exact {100 * (with_gate['exact'] - base['exact']):+.1f} points, "
          f"shown {100 * (with_gate['shown'] - base['shown']):+.1f} points")
    if args.write:
        gate.Gate.save(gate.WEIGHTS, "server/gate.py weights, fitted by bench/fit_gate.py on the TUNE packages of "
                       "bench/unseen.py", gate.FEATURES, w, threshold,
                       tune={"cases": len(tune), "suggestions": len(rows), "good": round(float(y.mean()), 4),
                             "cv": {"precision": round(choice.precision, 4), "exact_hidden": round(choice.loss, 4),
                                    "shown": round(choice.shown, 4), "l2": choice.l2}},
                       test={"no_gate": base, "gate": with_gate})
        print(f"wrote {gate.WEIGHTS}")


if __name__ == "__main__":
    main()
