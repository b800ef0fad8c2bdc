"""Completion quality on code SmolLM2 has never seen, through the real `sparkls serve`, against llama.cpp.

    .venv/bin/python bench/quality.py [--split test|tune] [--cases 30] [--seed 0] [--configs sparkls,no-copy]
                                      [--no-reference] [--show] [--json out.json]

Cases (bench/quality_cases.py) are cut from Python packages first published in 2026 (bench/unseen.py: pinned
versions and wheel hashes, fetched once into a cache outside the clone): `TUNE` packages are for choosing
defaults and fitting scores, `TEST` packages for the reported figures. Three kinds: the rest of a line after a
token (``line``), ``"\\n"`` + the next line at the end of a block header (``next``), a blank indented line's
code (``block``).

Every case goes through `sparkls serve` over stdio as an editor would: one server per package with the
package as its workspace (indexed), two neighbouring files open as tabs, the case's file opened with the
target cut out, then one invoked `textDocument/inlineCompletion` right away (a cold document: nothing of it is
cached). The reference is the same GGUF through llama.cpp (llama-cpp-python, bench/quality_llama.py) in its
own process in the same run: the 1,024 tokens before the cursor, greedy, to the end of the first line.

Printed per kind and per configuration: exact match, edit similarity, empty answers, latency p50 / p90.
Configurations are settings presets (``--configs``), so what each part adds is measured by switching it off.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from editor import start_server, stop_server  # noqa: E402
from quality_cases import KINDS, Case, exact, is_empty, make_cases, similarity  # noqa: E402

# Settings presets: what each of the suggestion pipeline's parts adds is the default minus that part.
PRESETS: dict[str, dict] = {
    "sparkls": {},
    "no-nextline": {"context": {"next_line": False}},
    "no-workspace": {"context": {"workspace": False}},
    "no-copy": {"context": {"copy": False}},
    "window-512": {"context": {"window": 512}},
    "window-1k": {"context": {"window": 1024}},
    "window-2k": {"context": {"window": 2048}},
    "window-4k": {"context": {"window": 4096}},
    "window-768": {"context": {"window": 768}},
    "workspace-128": {"context": {"workspace_tokens": 128}},
    "workspace-192": {"context": {"workspace_tokens": 192}},
    "workspace-256": {"context": {"workspace_tokens": 256}},
    "workspace-384": {"context": {"workspace_tokens": 384}},
}
NEIGHBOURS = 2  # other files of the case's folder open as editor tabs


def preset(name: str) -> dict:
    """A configuration's settings: a preset, or presets joined by ``+`` (``window-1k+workspace-192``)."""
    from sparkls.plugins.api import merge

    out: dict = {}
    for part in name.split("+"):
        out = merge(out, PRESETS[part])
    return out


def _col(prefix: str) -> int:
    """The cursor's character in UTF-16 code units (LSP's default position encoding)."""
    return len(prefix[prefix.rfind("\n") + 1 :].encode("utf-16-le")) // 2


def _neighbours(case: Case) -> list[Path]:
    files = sorted(p for p in case.path.parent.glob("*.py") if p != case.path)
    files.sort(key=lambda p: abs(len(p.name) - len(case.path.name)))
    return files[:NEIGHBOURS]


async def _serve_package(cases: list[Case], options: dict) -> list[dict]:
    from lsprotocol import types

    client, init = await start_server(options={"debounce_ms": 0, **options}, root=cases[0].root)
    ready = asyncio.Event()
    client.feature("sparkls/status")(lambda p: ready.set() if p.engine == "neural" else None)
    await asyncio.wait_for(ready.wait(), 600)
    await asyncio.wait_for(client.index_done.wait(), 120)
    out = []
    for case in cases:
        uri = case.path.as_uri()
        others = _neighbours(case)
        for other in others:
            await client.open(other.as_uri(), other.read_text(encoding="utf-8", errors="replace"))
        await client.open(uri, case.text)
        line, col = case.prefix.count("\n"), _col(case.prefix)
        started = time.perf_counter()
        if client._server.returncode is not None:
            raise RuntimeError(f"sparkls serve exited with {client._server.returncode}: "
                               + b"".join(client.stderr[-20:]).decode(errors="replace"))
        result = await asyncio.wait_for(
            client.text_document_inline_completion_async(client.inline_params(uri, line, col)), 300)
        seconds = time.perf_counter() - started
        answer = ""
        if result.items:  # the item repeats the word typed before the cursor; the answer is the rest
            item = result.items[0]
            answer = item.insert_text[col - item.range.start.character :]
        out.append({"answer": answer, "seconds": seconds})
        for closing in [uri] + [p.as_uri() for p in others]:
            client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(closing)))
    await stop_server(client)
    return out


def run_sparkls(cases: list[Case], options: dict, kept: list[dict | None] | None = None,
                saved: Callable[[list[dict | None]], None] = lambda answers: None,
                packages: set[str] | None = None) -> list[dict | None]:
    """Answers in ``cases`` order; one server per package. A package whose answers are all in ``kept`` (an
    interrupted run's) is not run again, nor one outside ``packages`` (its answers stay None); ``saved`` gets
    the answers so far after each package."""
    answers: list[dict | None] = list(kept) if kept else [None] * len(cases)
    for package in dict.fromkeys(c.package for c in cases):
        idx = [i for i, c in enumerate(cases) if c.package == package]
        if all(answers[i] is not None for i in idx) or (packages is not None and package not in packages):
            continue
        started = time.perf_counter()
        got = asyncio.run(_serve_package([cases[i] for i in idx], options))
        for i, a in zip(idx, got):
            answers[i] = a
        saved(answers)
        print(f"  {package}: {len(idx)} cases in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return answers


def run_llama_cpp(cases: list[Case], threads: int, reuse: bool) -> tuple[list[dict], str] | None:
    """The reference's answers, from its own process; None if llama-cpp-python is not installed.

    Answers are kept in the bench cache by the cases' hash; ``reuse`` takes them from there (greedy decoding
    gives the same text; the latencies are then those of the run that made them, which the caller says).
    """
    from unseen import cache_dir

    payload = json.dumps([c.to_json() for c in cases])
    kept = cache_dir() / "quality-reference" / f"{hashlib.sha256(payload.encode()).hexdigest()[:16]}-t{threads}.json"
    if reuse and kept.exists():
        got = json.loads(kept.read_text())
        return got["answers"], got["version"] + " (answers and latencies of an earlier run)"
    if importlib.util.find_spec("llama_cpp") is None:
        print("llama-cpp-python is not installed (.ci/engine.sh): no reference")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "cases.json"), Path(tmp, "answers.json")
        src.write_text(payload)
        subprocess.run([sys.executable, str(HERE / "quality_llama.py"), str(src), str(dst), "--threads", str(threads)],
                       check=True)
        got = json.loads(dst.read_text())
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(got))
    return got["answers"], got["version"]


def earlier_answers(paths: list[str], cases: list[Case]) -> dict[str, list[dict | None]]:
    """sparkls's answers by configuration from earlier runs' --json files of the same cases, merged (a case's
    answer from the first file that has it)."""
    merged: dict[str, list[dict | None]] = {}
    for path in paths:
        earlier = json.loads(Path(path).read_text())
        if [c["target"] for c in earlier["cases"]] != [c.target for c in cases]:
            raise SystemExit(f"{path} holds other cases (split, seed, --cases, --kinds must match)")
        for name, answers in earlier["answers"].items():
            if name != "llama.cpp":
                have = merged.setdefault(name, [None] * len(cases))
                merged[name] = [a if a is not None else b for a, b in zip(have, answers)]
    return merged


def summary(cases: list[Case], answers: list[dict], kind: str) -> dict:
    rows = [(c, a) for c, a in zip(cases, answers) if c.kind == kind]
    lat = sorted(a["seconds"] * 1000 for _, a in rows)
    return {
        "n": len(rows),
        "exact": statistics.mean(exact(kind, a["answer"], c.target) for c, a in rows),
        "edit": statistics.mean(similarity(kind, a["answer"], c.target) for c, a in rows),
        "empty": statistics.mean(is_empty(kind, a["answer"]) for _, a in rows),
        "p50": statistics.median(lat),
        "p90": lat[min(len(lat) - 1, int(0.9 * len(lat)))],
    }


def report(results: dict[str, list[dict]], cases: list[Case]) -> dict:
    table = {}
    w = max([18, *map(len, results)])  # configurations joined by + have long names
    print(f"\n{'server':<{w}} {'kind':<6} {'n':>3}  {'exact':>6}  {'edit-sim':>8}  {'empty':>6}  {'p50 ms':>7}  {'p90 ms':>7}")
    for kind in dict.fromkeys(c.kind for c in cases):
        for name, answers in results.items():
            s = table.setdefault(name, {})[kind] = summary(cases, answers, kind)
            print(f"{name:<{w}} {kind:<6} {s['n']:>3}  {s['exact']:6.1%}  {s['edit']:8.1%}  {s['empty']:6.1%}"
                  f"  {s['p50']:7.0f}  {s['p90']:7.0f}")
    ref = table.get("llama.cpp")
    if ref:
        print("\nagainst llama.cpp (points; targets: exact and edit-sim >= +5, empty <= 5 %):")
        for name, kinds in table.items():
            if name != "llama.cpp":
                cells = "  ".join(
                    f"{k} {100 * (kinds[k]['exact'] - ref[k]['exact']):+5.1f}/{100 * (kinds[k]['edit'] - ref[k]['edit']):+5.1f}"
                    for k in KINDS if k in kinds and k in ref
                )
                print(f"  {name:<{w}} {cells}")
    return table


def show_diff(cases: list[Case], results: dict[str, list[dict]], a: str, b: str) -> None:
    """The cases one server gets exactly right and the other does not (with every server's answer), by kind."""
    for first, second in ((a, b), (b, a)):
        print(f"\n{first} exact, {second} not:")
        for i, c in enumerate(cases):
            if exact(c.kind, results[first][i]["answer"], c.target) and not exact(c.kind, results[second][i]["answer"], c.target):
                print(f"  [{c.kind}] {c.package} {c.path.name}: ...{c.prefix[-60:]!r}\n      target     {c.target!r}")
                for name, answers in results.items():
                    print(f"      {name:<10} {answers[i]['answer']!r}")


def main() -> None:
    from unseen import TEST, TUNE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("test", "tune"), default="test")
    ap.add_argument("--cases", type=int, default=30, help="cases of each kind")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--configs", default="sparkls", help=f"comma-separated presets (join with + to combine): {', '.join(PRESETS)}")
    ap.add_argument("--no-reference", action="store_true", help="skip llama.cpp")
    ap.add_argument("--reference-threads", type=int, default=1,
                    help="llama.cpp's threads (1: its spinning thread pool stalls on a shared, busy machine)")
    ap.add_argument("--reuse-reference", action="store_true", help="llama.cpp's answers from an earlier run's cache")
    ap.add_argument("--show", action="store_true", help="print every case's target and answers")
    ap.add_argument("--diff", metavar="A,B", help="print the cases where server A is exactly right and B is not, and the reverse")
    ap.add_argument("--json", help="write cases, answers and the table here")
    ap.add_argument("--answers-from", metavar="JSON[,JSON...]",
                    help="sparkls's answers from earlier (or interrupted, or --packages) runs' --json, the same cases: "
                         "only what is missing runs")
    ap.add_argument("--packages", help="run only these packages' cases (the same cases: parts of a run can go in parallel)")
    args = ap.parse_args()
    packages = TEST if args.split == "test" else TUNE
    cases = make_cases(packages, args.cases, args.seed, kinds=tuple(args.kinds.split(",")))
    print(f"{len(cases)} cases from the {args.split.upper()} split: " + ", ".join(f"{p.name} {p.version}" for p in packages))
    only = set(args.packages.split(",")) if args.packages else None
    results: dict[str, list[dict]] = {}
    if not args.no_reference:
        got = run_llama_cpp(cases, args.reference_threads, args.reuse_reference)
        if got is not None:
            results["llama.cpp"], version = got
            print(f"llama.cpp reference: llama-cpp-python {version}")
    earlier = earlier_answers(args.answers_from.split(","), cases) if args.answers_from else None

    def write(extra: dict[str, list]) -> None:
        if args.json:  # after every package, so an interrupted run can go on (--answers-from)
            Path(args.json).write_text(json.dumps({
                "split": args.split, "seed": args.seed,
                "cases": [{"kind": c.kind, "package": c.package, "file": c.path.name, "target": c.target} for c in cases],
                "answers": {**results, **extra}, "table": table,
            }, indent=1))

    table: dict = {}
    for name in args.configs.split(","):
        kept = earlier.get(name) if earlier else None
        if kept and all(a is not None for a in kept):
            results[name] = kept
            continue
        print(f"sparkls, {name}:", file=sys.stderr, flush=True)
        results[name] = run_sparkls(cases, preset(name), kept, lambda got, name=name: write({name: got}), only)
    if any(a is None for answers in results.values() for a in answers):
        write({})  # a part (--packages): the other parts' runs fill in the rest (--answers-from a.json,b.json)
        print("answers for some cases are still missing: no table")
        return
    if args.show:
        for i, c in enumerate(cases):
            print(f"[{c.kind}] {c.package} {c.path.name}: ...{c.prefix[-50:]!r}\n    target     {c.target!r}")
            for name, answers in results.items():
                print(f"    {name:<10} {answers[i]['answer']!r}")
    if args.diff:
        show_diff(cases, results, *args.diff.split(","))
    table = report(results, cases)
    write({})


if __name__ == "__main__":
    main()
