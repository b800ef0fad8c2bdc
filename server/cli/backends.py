"""``sparkls backends list|calibrate|fit``: what the plugin host found, and the models against published figures."""

from __future__ import annotations

import argparse
import json
import sys

from sparkls.server.cli.common import TOOL_LOGS, host


def add_to(sub, common: argparse.ArgumentParser) -> None:
    backends = sub.add_parser("backends", parents=[common], help="list or calibrate the hardware backends")
    actions = backends.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = actions.add_parser("list", parents=[common], help="every discovered backend, whether it is usable and why not")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(run=run_list)
    cal = actions.add_parser("calibrate", parents=[common],
                             help="predicted against published serving figures, error per kind and split")
    cal.add_argument("--json", action="store_true", help="one JSON object per line")
    cal.set_defaults(run=run_calibrate)
    fit = actions.add_parser("fit", parents=[common],
                             help="fit a backend's free parameters to the in-fit figures (prints TOML lines)")
    fit.add_argument("name", help="cerebras-wse3, nvidia-blackwell or nvidia-hopper")
    fit.add_argument("--stack", default="", help="fit a serving-stack variant (e.g. vllm) on its own figures")
    fit.set_defaults(run=run_fit)
    backends.set_defaults(logs=TOOL_LOGS)


def run_list(args: argparse.Namespace) -> int:
    h = host()
    rows = []
    for e in sorted(h.entries.values(), key=lambda e: (-e.priority, e.name)):
        variants = ",".join(getattr(e.backend, "variants", ()) or ())
        rows.append(
            dict(name=e.name, available=e.available, priority=e.priority if e.available else None,
                 variants=variants, source=e.dist, target=e.target, reason=e.reason)
        )
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"{'backend':20} {'available':9} {'priority':>8}  {'source':18} {'variants / why not'}")
    for r in rows:
        prio = f"{r['priority']:g}" if r["available"] else "-"
        why = r["variants"] if r["available"] else r["reason"]
        print(f"{r['name']:20} {'yes' if r['available'] else 'no':9} {prio:>8}  {r['source']:18} {why}")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from sparkls.backends.calibration import TOLERANCE, figures, predict, report, report_text, table, target_failures

    preds = [predict(f, host()) for f in figures()]
    if args.json:
        for p in preds:
            f = p.figure
            print(json.dumps(dict(id=f.id, kind=f.kind, split=f.split, hardware=f.hardware, model=f.model,
                                  metric=f.metric, published=f.value, predicted=p.predicted, p10=p.low, p90=p.high,
                                  error=p.error, chips=p.chips, url=f.url, date=f.date)))
        for r in report(preds):
            print(json.dumps(dict(report=True, **r)))
    else:
        print(table(preds))
        print()
        print(report_text(preds))
    bad = [p for p in preds if p.figure.split == "fit" and abs(p.error) > TOLERANCE and not p.figure.known_miss]
    if not args.json:
        fit = [p for p in preds if p.figure.split == "fit"]
        within = sum(abs(p.error) <= TOLERANCE for p in fit)
        print(f"\n{within} of {len(fit)} in-fit figures within {TOLERANCE:.0%}; "
              f"{len(fit) - within - len(bad)} beyond it are known misses.")
        for p in preds:
            if p.figure.known_miss:
                print(f"known miss {p.figure.id}: {p.figure.known_miss}")
                if p.figure.excluded:
                    print(f"  (left out of the fit: {p.figure.excluded})")
        misses = target_failures(preds)
        print("held-out targets: " + ("met" if not misses else "not met:\n  " + "\n  ".join(misses)))
    return 1 if bad else 0


def run_fit(args: argparse.Namespace) -> int:
    from sparkls.backends.fit import FREE, fit

    h = host()
    if args.name not in FREE:
        print(f"sparkls backends fit: no free parameters for {args.name!r} (have: {', '.join(FREE)})", file=sys.stderr)
        return 2
    variant = f"{h.get(args.name, strict=True).variant}+{args.stack}" if args.stack else ""
    spec = h.get(args.name + (f":{variant}" if variant else ""), strict=True).spec
    start = {k: getattr(spec, k) or 1e-6 for k in FREE[args.name]}
    values, before, after = fit(args.name, start, h, log=lambda line: print(line, file=sys.stderr), stack=args.stack)
    print(f"# weighted mean squared log error {before:.4f} -> {after:.4f}")
    for k, v in values.items():
        print(f"{k} = {v:.4g}")
    return 0
