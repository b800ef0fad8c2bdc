"""Fit when a copy (the n-gram core's completion) should replace the model's, on the TUNE split only.

    .venv/bin/python bench/calibrate_copy.py RUN.json:CASES:SEED[:KINDS] ... [--config no-copy]

Each RUN.json is a `bench/quality.py --split tune --cases CASES --seed SEED [--kinds KINDS] --json` run (kinds
joined by "+" here) with a `no-copy` configuration: the model's answers with the copy choice off. For its cases, this script computes the n-gram core's completion
in process, as the server does (the package indexed, the case's document open in place of its file), with its
evidence per token: how long a context matched, and how often that token followed it. Then it searches the
rule `copy when it disagrees with the model and min order >= K and prod(count/total) >= P` for the (K, P) that
maximises exact matches over all kinds, and prints the gain on TUNE. decode/copy_choice.py holds the result.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from quality_cases import KINDS, answer_line, exact, make_cases, similarity  # noqa: E402


def copies(cases) -> list[tuple[str, list]]:
    from sparkls.decode.engine import CompletionContext
    from sparkls.decode.ngram.ngram_engine import NgramEngine
    from sparkls.decode.ngram.ngram_model import CodeModel
    from sparkls.server.exclusions import Exclusions
    from sparkls.server.indexer import index_workspace
    from sparkls.server.options import IndexOptions

    out, models = [], {}
    for case in cases:
        if case.package not in models:
            model = CodeModel()
            index_workspace(model, case.root, IndexOptions(), key=lambda p: p.as_uri(), skip=Exclusions(case.root).excluded)
            models[case.package] = model
        model = models[case.package]
        uri = case.path.as_uri()
        model.open_document(uri, case.text)
        ctx = CompletionContext(case.prefix, case.suffix, path=uri, prefix_start=0)
        out.append(NgramEngine(model).copy(ctx, lambda: False))
        model.close_document(uri, disk_text=case.path.read_text(encoding="utf-8", errors="replace"))
    return out


def features(evidence: list) -> tuple[int, float]:
    steps = [(o, c, t) for o, c, t in evidence if t]
    if not steps:
        return 0, 0.0
    return min(o for o, _, _ in steps), math.exp(sum(math.log(c / t) for _, c, t in steps))


def main() -> None:
    from unseen import TUNE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="RUN.json:CASES:SEED[:KINDS]")
    ap.add_argument("--config", default="no-copy", help="the runs' configuration whose answers are the model's")
    args = ap.parse_args()
    cases, model = [], []
    for spec in args.runs:
        path, n, seed, *kinds = spec.split(":")
        run = json.loads(Path(path).read_text())
        cut = make_cases(TUNE, int(n), int(seed), kinds=tuple(kinds[0].split("+")) if kinds else KINDS)
        assert [c.target for c in cut] == [c["target"] for c in run["cases"]], f"{path} was cut with other arguments"
        cases += cut
        model += [a["answer"] for a in run["answers"][args.config]]
    got = copies(cases)
    rows = []
    for case, answer, (copy, evidence) in zip(cases, model, got):
        k, p = features(evidence)
        same = answer_line(case.kind, copy) == answer_line(case.kind, answer)
        rows.append({"kind": case.kind, "differs": bool(copy.strip()) and not same, "order": k, "prob": p,
                     "model": (exact(case.kind, answer, case.target), similarity(case.kind, answer, case.target)),
                     "copy": (exact(case.kind, copy, case.target), similarity(case.kind, copy, case.target))})
    grid = [(k, p) for k in range(1, 9) for p in [i / 20 for i in range(21)]]

    def chosen(r: dict, k: int, p: float) -> tuple[bool, float]:
        return r["copy"] if r["differs"] and r["order"] >= k and r["prob"] >= p else r["model"]

    def score(rows: list[dict], k: int, p: float) -> tuple[int, float]:
        """Exact matches, then summed edit similarity to break ties."""
        picks = [chosen(r, k, p) for r in rows]
        return sum(e for e, _ in picks), round(sum(s for _, s in picks), 6)

    base = sum(r["model"][0] for r in rows)
    print(f"{len(rows)} TUNE cases: model exact {base}, copy exact {sum(r['copy'][0] for r in rows)}, "
          f"either {sum(r['model'][0] or r['copy'][0] for r in rows)}, agree {sum(not r['differs'] for r in rows)}")
    best = max(score(rows, k, p) for k, p in grid)
    ties = [(k, p) for k, p in grid if score(rows, k, p) == best]
    # Among the rules that score best, the strictest: a copy replaces the model only on the strongest evidence.
    k, p = max(ties, key=lambda t: (t[0] + 8 * t[1], t))
    print(f"{len(ties)} rules score {best}: min order {min(t[0] for t in ties)}..{max(t[0] for t in ties)}, "
          f"prod {min(t[1] for t in ties):.2f}..{max(t[1] for t in ties):.2f}")
    print(f"chosen: copy when min order >= {k} and prod(count/total) >= {p:.2f}: exact {base} -> {best[0]}")
    for kind in KINDS:
        sub = [r for r in rows if r["kind"] == kind]
        if sub:
            print(f"  {kind:<6} model {sum(r['model'][0] for r in sub)} -> {score(sub, k, p)[0]} of {len(sub)}")

if __name__ == "__main__":
    main()
