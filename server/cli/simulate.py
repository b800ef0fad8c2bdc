"""``sparkls simulate``: each backend's modelled timeline for one request shape (a table, JSON or a plot)."""

from __future__ import annotations

import argparse
import json
import math
import sys

from sparkls.plugins.api import ModelSpec, Request, SpecError, Timeline, load_model
from sparkls.server.cli.common import TOOL_LOGS, bytes_per_param, cell, count, host, integer, range_fields


def add_to(sub, common: argparse.ArgumentParser) -> None:
    sim = sub.add_parser("simulate", parents=[common], help="each backend's timeline for one request shape")
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
    sim.add_argument("--concurrency", type=integer,
                     help="streams sharing the deployment, starting together as in a load benchmark")
    sim.add_argument("--spec-accept", type=float, help="mean tokens emitted per decode step (1: no speculation)")
    sim.add_argument("--spec-draft", choices=["medusa", "eagle", "mtp", "draft-model"])
    sim.add_argument("--seed", type=int, default=0, help="seed for modelled jitter and speculative bursts")
    sim.add_argument("--plot", metavar="FILE.png",
                     help="plot TTFT and tok/s/user against concurrency (needs matplotlib: the `plot` extra)")
    sim.add_argument("--json", action="store_true", help="one JSON object per backend per line")
    sim.set_defaults(run=run, logs=TOOL_LOGS)


def model_from(args: argparse.Namespace) -> ModelSpec:
    """The model: a TOML file or built-in name, else one described by the flags."""
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


def summary(name: str, tl: Timeline, spread=None) -> dict:
    tps = tl.tokens_per_s
    row = dict(backend=name, answered_by=tl.backend, ttft_s=tl.ttft_s,
               tokens_per_s=tps if math.isfinite(tps) else None, total_s=tl.total_s, chips=tl.chips,
               concurrency=tl.concurrency,
               tokens_per_s_per_chip=tps * tl.concurrency / tl.chips if math.isfinite(tps) else None,
               measured=tl.as_produced)
    if spread is not None:
        row.update(range_fields(spread))
        row["mean_batch"] = spread.mean_batch
    return row


# Backends that are measured, not modelled, for a configured engine: listed only when asked for by name.
MEASURED_ONLY = ("remote",)
LOCAL = "local"
LOCAL_MODEL = "smollm2-135m"  # what `local` serves: this machine's own decode core


def default_backends(h) -> list[str]:
    """Every available backend that models or measures this machine, best priority first."""
    return [n for n in h.names() if n not in MEASURED_ONLY]


def compared_backends(h, model: ModelSpec) -> list[str]:
    """The default comparison for a model: ``local`` only when the model is the one it runs."""
    own = load_model(LOCAL_MODEL).name
    return [n for n in default_backends(h) if n != LOCAL or model.name == own]


def _label(row: dict) -> str:
    if row["measured"]:
        return f"{row['backend']} (this machine, SmolLM2-135M, measured)"
    return row["backend"] + ("" if row["answered_by"] == row["backend"].split(":")[0] else f" (-> {row['answered_by']})")


def _band(row: dict, metric: str, fmt: str) -> str:
    lo, hi = row.get(f"{metric}_p10"), row.get(f"{metric}_p90")
    return f"{lo:{fmt}}-{hi:{fmt}}" if lo is not None and hi is not None else "-"


def print_simulation(model: ModelSpec, req: Request, rows: list[dict]) -> None:
    print(f"{model.name}: {model.params:.3g} params ({model.active:.3g} active), {model.layers} layers, "
          f"{model.bytes_per_param:g} B/param; {req.prompt_tokens} prompt -> {req.new_tokens} new tokens, "
          f"{req.streams} stream(s) starting together; medians and p10-p90 over the modelled requests")
    print(f"{'backend':44} {'chips':>5} {'TTFT s':>8} {'p10-p90':>13} {'tok/s/user':>10} {'p10-p90':>11} "
          f"{'tok/s/chip':>10}")
    for r in rows:
        ttft = r.get("ttft_s_p50") or r["ttft_s"]
        tps = r.get("tokens_per_s_p50") or r["tokens_per_s"]
        per_chip = tps * r["concurrency"] / r["chips"] if tps else None
        print(f"{_label(r):44} {r['chips']:>5} {ttft:>8.3f} {_band(r, 'ttft_s', '.3g'):>13} "
              f"{cell(tps, '.1f'):>10} {_band(r, 'tokens_per_s', '.4g'):>11} {cell(per_chip, '.0f'):>10}")


def run(args: argparse.Namespace) -> int:
    try:
        model = model_from(args)
        req = Request(model=model, prompt_tokens=args.prompt_tokens, new_tokens=args.new_tokens,
                      cached_tokens=args.cached_tokens, concurrency=args.concurrency or 0)
    except (SpecError, ValueError) as e:
        print(f"sparkls simulate: {e}", file=sys.stderr)
        return 2
    h = host()
    names = [n for b in args.backend for n in b.split(",")] if args.backend else compared_backends(h, model)
    try:
        backends = {name: h.get(name, strict=True) for name in names}
    except ValueError as e:
        print(f"sparkls simulate: {e}", file=sys.stderr)
        return 2
    rows = []
    for name, backend in backends.items():
        tl = h.timeline(name, req, seed=args.seed, backend=backend)
        spread = backend.spread(req, seed=args.seed) if hasattr(backend, "spread") and tl.backend == backend.name else None
        rows.append(summary(name, tl, spread))
    if args.json:
        for r in rows:
            print(json.dumps(r))
    else:
        print_simulation(model, req, rows)
    if args.plot:
        return plot_load(h, backends, req, args.plot, args.seed)
    return 0


def load_curve(backend, req: Request, levels: list[int], seed: int = 0) -> list[dict]:
    """p10 / p50 / p90 of TTFT and tok/s/user at each concurrency level."""
    import msgspec

    out = []
    for c in levels:
        sp = backend.spread(msgspec.structs.replace(req, concurrency=c), seed=seed)
        out.append(dict(concurrency=c, **range_fields(sp)))
    return out


def plot_load(h, backends: dict, req: Request, path: str, seed: int = 0) -> int:
    """TTFT and tok/s/user against concurrency (median, p10-p90 band), one line per backend, to a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("sparkls simulate: --plot needs matplotlib: pip install 'sparkls[plot]'", file=sys.stderr)
        return 1
    top = max(req.streams, 64)
    levels = sorted({1 << i for i in range(top.bit_length()) if 1 << i <= top} | {req.streams})
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, b in backends.items():
        if not hasattr(b, "spread"):
            continue  # measured, not modelled: no load curve
        curve = load_curve(b, req, levels, seed)
        xs = [c["concurrency"] for c in curve]
        for ax, metric in ((ax_t, "ttft_s"), (ax_s, "tokens_per_s")):
            mid = [c[f"{metric}_p50"] for c in curve]
            ax.plot(xs, mid, marker="o", label=name)
            ax.fill_between(xs, [c[f"{metric}_p10"] for c in curve], [c[f"{metric}_p90"] for c in curve], alpha=0.2)
    for ax, ylabel in ((ax_t, "time to first token, s"), (ax_s, "tokens/s per user")):
        ax.set(xscale="log", yscale="log", xlabel="concurrent streams", ylabel=ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.suptitle(f"{req.model.name}: {req.prompt_tokens} -> {req.new_tokens} tokens "
                 "(median, p10-p90 band; modelled)")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}", file=sys.stderr)
    return 0
