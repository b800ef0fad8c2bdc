"""``sparkls backends list|calibrate``, ``sparkls simulate`` and ``sparkls race``.

``server/cli.py`` hands over any argv starting with one of these words (argv[0] is the word).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys

from sparkls.plugins.api import ModelSpec, Request, SpecError, Timeline

SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
PRECISION = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5, "nvfp4": 0.5, "mxfp4": 0.53}


def count(text: str) -> float:
    """A count as a plain number, ``1.2e11``, or with a suffix: ``120B``, ``5.1B``, ``32k``."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a count: {text!r} (try 1.2e11, 120B, 32k)")
    return float(m[1]) * SUFFIX[m[2].lower()]


def integer(text: str) -> int:
    return int(round(count(text)))


def bytes_per_param(text: str) -> float:
    return PRECISION.get(text.lower()) or count(text)


def _host():
    from sparkls.plugins.registry import host

    return host()


# -- backends list / calibrate --------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    h = _host()
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


def cmd_calibrate(args: argparse.Namespace) -> int:
    from sparkls.backends.calibration import TOLERANCE, figures, predict, table

    preds = [predict(f, _host()) for f in figures()]
    if args.json:
        for p in preds:
            f = p.figure
            print(json.dumps(dict(id=f.id, row=f.row, split=f.split, hardware=f.hardware, model=f.model,
                                  metric=f.metric, published=f.value, predicted=p.predicted,
                                  error=p.error, chips=p.chips)))
    else:
        print(table(preds))
    bad = [p for p in preds if abs(p.error) > TOLERANCE and not p.figure.known_miss]
    misses = [p for p in preds if p.figure.known_miss]
    if not args.json:
        print(f"\n{len(preds) - len(bad) - len(misses)} of {len(preds)} figures within {TOLERANCE:.0%}.")
        for p in misses:
            print(f"known miss {p.figure.id}: {p.figure.known_miss}")
    return 1 if bad else 0


# -- simulate -----------------------------------------------------------------------------


def model_from(args: argparse.Namespace) -> ModelSpec:
    """The model: a TOML file or built-in name, else one described by the flags."""
    from sparkls.backends.stream import load_model

    if args.model:
        m = load_model(args.model)
    elif args.params:
        active = args.active_params or args.params
        layers = args.layers or max(1, round((active / 196608) ** (1 / 3)))  # P ≈ 12·L·d², d ≈ 128·L
        m = ModelSpec(name=f"{args.params / 1e9:g}B", params=args.params, layers=layers,
                      hidden=args.hidden or 64 * max(1, round(2 * layers)), active_params=active)
    else:
        raise SystemExit("sparkls simulate: give --model FILE.toml (or a built-in name) or --params")
    changes = {k: v for k, v in dict(
        params=args.params if args.model else None, active_params=args.active_params,
        layers=args.layers, hidden=args.hidden, bytes_per_param=args.bytes_per_param,
        kv_bytes_per_token=args.kv_bytes_per_token).items() if v is not None}
    import msgspec

    spec = m.speculative
    if args.spec_accept is not None:
        draft = args.spec_draft or (spec.draft if spec.draft != "none" else "draft-model")
        spec = msgspec.structs.replace(spec, accept=args.spec_accept, draft="none" if args.spec_accept == 1 else draft)
    dep = m.deployment
    if args.chips is not None:
        dep = msgspec.structs.replace(dep, chips=args.chips)
    return msgspec.convert({**msgspec.to_builtins(m), **changes, "speculative": msgspec.to_builtins(spec),
                            "deployment": msgspec.to_builtins(dep)}, ModelSpec)


def summary(name: str, tl: Timeline) -> dict:
    tps = tl.tokens_per_s
    return dict(backend=name, answered_by=tl.backend, ttft_s=tl.ttft_s,
                tokens_per_s=tps if math.isfinite(tps) else None, total_s=tl.total_s, chips=tl.chips,
                concurrency=tl.concurrency,
                tokens_per_s_per_chip=tps * tl.concurrency / tl.chips if math.isfinite(tps) else None)


# Backends that are measured, not modelled, for a configured engine: listed only when asked for by name.
MEASURED_ONLY = ("remote",)


def default_backends(h) -> list[str]:
    """Every available backend that models or measures this machine, best priority first."""
    return [n for n in h.names() if n not in MEASURED_ONLY]


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        model = model_from(args)
        req = Request(model=model, prompt_tokens=args.prompt_tokens, new_tokens=args.new_tokens,
                      cached_tokens=args.cached_tokens, concurrency=args.concurrency or 0)
    except (SpecError, ValueError) as e:
        print(f"sparkls simulate: {e}", file=sys.stderr)
        return 2
    h = _host()
    names = [n for b in args.backend for n in b.split(",")] if args.backend else default_backends(h)
    results: list[tuple[str, Timeline]] = []
    for name in names:
        try:
            backend = h.get(name, strict=True)
        except ValueError as e:
            print(f"sparkls simulate: {e}", file=sys.stderr)
            return 2
        results.append((name, h.timeline(name, req, seed=args.seed, backend=backend)))
    rows = [summary(n, tl) for n, tl in results]
    if args.json:
        for r in rows:
            print(json.dumps(r))
    else:
        print(f"{model.name}: {model.params:.3g} params ({model.active:.3g} active), {model.layers} layers, "
              f"{model.bytes_per_param:g} B/param; {req.prompt_tokens} prompt -> {req.new_tokens} new tokens, "
              f"{req.streams} stream(s)")
        print(f"{'backend':28} {'chips':>5} {'TTFT s':>8} {'tok/s/user':>11} {'total s':>8} {'tok/s/chip':>10}")
        for r in rows:
            label = r["backend"] + ("" if r["answered_by"] == r["backend"].split(":")[0] else f" (-> {r['answered_by']})")
            tps = f"{r['tokens_per_s']:.1f}" if r["tokens_per_s"] else "-"
            per_chip = f"{r['tokens_per_s_per_chip']:.0f}" if r["tokens_per_s_per_chip"] else "-"
            print(f"{label:28} {r['chips']:>5} {r['ttft_s']:>8.3f} {tps:>11} {r['total_s']:>8.3f} {per_chip:>10}")
    if args.plot:
        return plot(results, args.plot, title=f"{model.name}: {req.prompt_tokens} -> {req.new_tokens} tokens")
    return 0


def plot(results: list[tuple[str, Timeline]], path: str, title: str) -> int:
    """Cumulative tokens over time, one step line per backend, to a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("sparkls simulate: --plot needs matplotlib: pip install 'sparkls[plot]'", file=sys.stderr)
        return 1
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, tl in results:
        ts = [0.0, *tl.token_times]
        ax.step(ts, range(len(ts)), where="post", label=f"{name} ({tl.chips} chips)")
    ax.set(xlabel="seconds since request", ylabel="tokens shown", title=title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}", file=sys.stderr)
    return 0


# -- entry --------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparkls", description="Inference hardware backends.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = p.add_subparsers(dest="command", required=True)

    backends = sub.add_parser("backends", help="list or calibrate the hardware backends")
    bsub = backends.add_subparsers(dest="action", required=True)
    ls = bsub.add_parser("list", help="every discovered backend, whether it is usable and why not")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(run=cmd_list)
    cal = bsub.add_parser("calibrate", help="predicted against published serving figures")
    cal.add_argument("--json", action="store_true", help="one JSON object per line")
    cal.set_defaults(run=cmd_calibrate)

    sim = sub.add_parser("simulate", help="each backend's timeline for one request shape")
    sim.add_argument("--prompt-tokens", type=integer, required=True)
    sim.add_argument("--new-tokens", type=integer, required=True)
    sim.add_argument("--cached-tokens", type=integer, default=0, help="prompt tokens already in the KV cache")
    sim.add_argument("--backend", action="append", help="NAME or NAME:VARIANT, repeatable (default: all available)")
    sim.add_argument("--model", help="model description: a TOML file or a built-in name (llama-3.1-70b, ...)")
    sim.add_argument("--params", type=count, help="total parameters: 70B, 1.2e11")
    sim.add_argument("--active-params", type=count, help="parameters used per token (mixture of experts)")
    sim.add_argument("--layers", type=integer)
    sim.add_argument("--hidden", type=integer, help="model width d")
    sim.add_argument("--bytes-per-param", type=bytes_per_param, help="2, 1, 0.5 or bf16, fp8, fp4")
    sim.add_argument("--kv-bytes-per-token", type=count)
    sim.add_argument("--chips", type=integer, help="chips or wafers (default: the fewest that hold the model)")
    sim.add_argument("--concurrency", type=integer, help="streams sharing the deployment (batch)")
    sim.add_argument("--spec-accept", type=float, help="mean tokens emitted per decode step (1: no speculation)")
    sim.add_argument("--spec-draft", choices=["medusa", "eagle", "mtp", "draft-model"])
    sim.add_argument("--seed", type=int, default=0, help="seed for modelled jitter and speculative bursts")
    sim.add_argument("--plot", metavar="FILE.png", help="write cumulative tokens over time (needs matplotlib)")
    sim.add_argument("--json", action="store_true", help="one JSON object per backend per line")
    sim.set_defaults(run=cmd_simulate)

    race = sub.add_parser("race", help="stream one completion from several backends side by side")
    race.set_defaults(run=lambda args: print("sparkls race: not implemented yet") or 2)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.run(args)
