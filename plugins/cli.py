"""``sparkls backends list|calibrate|fit``, ``sparkls simulate`` and ``sparkls race``.

``server/cli.py`` hands over any argv starting with one of these words (argv[0] is the word).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import re
import sys
import threading
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Iterator

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
    from sparkls.backends.calibration import TOLERANCE, figures, predict, report, report_text, table, target_failures

    preds = [predict(f, _host()) for f in figures()]
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
        misses = target_failures(preds)
        print("held-out targets: " + ("met" if not misses else "not met:\n  " + "\n  ".join(misses)))
    return 1 if bad else 0


def cmd_fit(args: argparse.Namespace) -> int:
    from sparkls.backends.fit import FREE, fit

    h = _host()
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


# -- simulate -----------------------------------------------------------------------------


def model_from(args: argparse.Namespace) -> ModelSpec:
    """The model: a TOML file or built-in name, else one described by the flags."""
    from sparkls.plugins.api import load_model

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


def _range_fields(spread) -> dict:
    """p10 / p50 / p90 of TTFT and tok/s/user under the modelled load and jitter, as JSON fields."""
    out = {}
    for metric in ("ttft_s", "tokens_per_s"):
        for q, v in zip(("p10", "p50", "p90"), getattr(spread, metric)):
            out[f"{metric}_{q}"] = v if math.isfinite(v) else None
    return out


def summary(name: str, tl: Timeline, spread=None) -> dict:
    tps = tl.tokens_per_s
    row = dict(backend=name, answered_by=tl.backend, ttft_s=tl.ttft_s,
               tokens_per_s=tps if math.isfinite(tps) else None, total_s=tl.total_s, chips=tl.chips,
               concurrency=tl.concurrency,
               tokens_per_s_per_chip=tps * tl.concurrency / tl.chips if math.isfinite(tps) else None,
               measured=tl.as_produced)
    if spread is not None:
        row.update(_range_fields(spread))
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
    from sparkls.plugins.api import load_model

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
              f"{_cell(tps, '.1f'):>10} {_band(r, 'tokens_per_s', '.4g'):>11} {_cell(per_chip, '.0f'):>10}")


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        model = model_from(args)
        req = Request(model=model, prompt_tokens=args.prompt_tokens, new_tokens=args.new_tokens,
                      cached_tokens=args.cached_tokens, concurrency=args.concurrency or 0)
    except (SpecError, ValueError) as e:
        print(f"sparkls simulate: {e}", file=sys.stderr)
        return 2
    h = _host()
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
        out.append(dict(concurrency=c, **_range_fields(sp)))
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


# -- race ---------------------------------------------------------------------------------
#
# One completion, decoded once by the local decode core at this machine's speed, then played
# in every lane at once: a modelled lane shows token i at its backend's timeline for the
# completion's own request shape (prompt ≈ the prefix's tokens, new tokens = the completion's),
# the `local` lane at the times the decode core really produced them, and a `remote` lane shows
# a real engine's own tokens as they arrive.


class _Feed:
    """Snapshots of a blocking decode engine running in a worker thread, for several readers."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: list[str] = []
        self.times: list[float] = []  # loop time each snapshot arrived
        self.done = False
        self.error: BaseException | None = None
        self._changed = asyncio.Event()

    def start(self, snapshots: Iterator[str]) -> threading.Thread:
        def work() -> None:
            err = None
            try:
                for text in snapshots:
                    self.loop.call_soon_threadsafe(self._push, text)
            except BaseException as e:  # re-raised by every reader on the event loop
                err = e
            finally:
                try:
                    self.loop.call_soon_threadsafe(self._finish, err)
                except RuntimeError:
                    pass  # the loop is gone (interrupted)

        t = threading.Thread(target=work, name="sparkls-race", daemon=True)
        t.start()
        return t

    def _push(self, text: str) -> None:
        self.items.append(text)
        self.times.append(self.loop.time())
        self._changed.set()

    def _finish(self, err: BaseException | None) -> None:
        self.error, self.done = err, True
        self._changed.set()

    async def follow(self) -> AsyncIterator[str]:
        i = 0
        while True:
            while i < len(self.items):
                yield self.items[i]
                i += 1
            if self.done:
                if self.error is not None:
                    raise self.error
                return
            self._changed.clear()
            await self._changed.wait()


@dataclass
class Decoded:
    """The local decode core's completion: one text snapshot per token and when each was made."""

    snapshots: list[str]
    times: list[float]  # seconds since decoding started

    @property
    def text(self) -> str:
        return self.snapshots[-1] if self.snapshots else ""


def decode_once(engine, ctx, cancelled: Callable[[], bool]) -> Decoded:
    """Run the decode core to the end of its completion, timing every snapshot."""
    import time

    start = time.perf_counter()
    snaps, times = [], []
    for text in engine.complete(ctx, cancelled):
        snaps.append(text)
        times.append(time.perf_counter() - start)
    return Decoded(snaps, times)


async def _replay(snapshots: list[str]) -> AsyncIterator[str]:
    for text in snapshots:
        yield text


@dataclass
class _Lane:
    name: str
    kind: str  # "modelled", "measured" (this machine) or "remote" (a real engine)
    timeline: Timeline | None = None
    spread: object = None  # backends.served.Spread, for a modelled lane
    text: str = ""
    tokens: int = 0
    first: float | None = None
    last: float | None = None
    done: bool = False
    error: str = ""
    measured: object = None  # the remote lane's Measurement

    @property
    def answered_by(self) -> str:
        return self.timeline.backend if self.timeline is not None else self.name

    @property
    def ttft(self) -> float | None:
        m = self.measured
        return m.ttft_s if m is not None and m.ttft_s is not None else self.first

    @property
    def tokens_per_s(self) -> float | None:
        m = self.measured
        if m is not None:
            return m.tokens_per_s
        tl, n = self.timeline, self.tokens
        if self.kind == "modelled" and tl is not None and n > 1 and tl.due(n - 1) > tl.due(0):
            return (n - 1) / (tl.due(n - 1) - tl.due(0))  # the hardware's rate, even when the screen bunches
        if n > 1 and self.first is not None and self.last is not None and self.last > self.first:
            return (n - 1) / (self.last - self.first)
        return None

    @property
    def note(self) -> str:
        if self.error:
            return self.error
        notes = {"modelled": "modelled", "measured": "measured on this machine",
                 "remote": "real tokens, measured cadence"}[self.kind]
        if self.timeline is not None and self.answered_by != self.name.split(":")[0]:
            notes += f"; answered by {self.answered_by}"
        if self.timeline is not None and self.kind == "modelled":
            notes += f"; {self.timeline.chips} chip{'s' if self.timeline.chips > 1 else ''}"
        sp = self.spread
        if sp is not None and all(math.isfinite(x) for x in (*sp.ttft_s, *sp.tokens_per_s)):
            notes += (f"; p10-p90 TTFT {sp.ttft_s[0]:.3g}-{sp.ttft_s[2]:.3g} s, "
                      f"{sp.tokens_per_s[0]:.0f}-{sp.tokens_per_s[2]:.0f} tok/s")
        return notes

    def summary(self) -> dict:
        row = dict(backend=self.name, kind=self.kind, answered_by=self.answered_by, ttft_s=self.ttft,
                   tokens_per_s=self.tokens_per_s, tokens=self.tokens, total_s=self.last, text=self.text,
                   note=self.note, error=self.error or None)
        if self.timeline is not None:
            row["chips"] = self.timeline.chips
        if self.spread is not None:
            row.update(_range_fields(self.spread))
        return row


def _prepare(position: str, workspace: str | None, max_tokens: int, engine: str = "auto"):
    """The decode engine and context at the position, as ``sparkls complete`` builds them."""
    from sparkls.server.offline import prepare_at

    try:
        path, line, col = position.rsplit(":", 2)
        line_no, col_no = int(line), int(col)
    except ValueError:
        raise SystemExit(f"sparkls race: expected FILE:LINE:COL (1-based), got {position!r}") from None
    try:
        completer, ctx, model = prepare_at(path, line_no, col_no, workspace, engine, max_tokens)
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"sparkls race: cannot read {path}: {e}") from None
    tokenizer = getattr(completer, "tokenizer", None)
    prompt_tokens = len(tokenizer.encode(ctx.prefix[-8000:])) if tokenizer else len(model.lexer.split(ctx.prefix))
    return completer, ctx, prompt_tokens


def _cell(x: float | None, fmt: str) -> str:
    return format(x, fmt) if x is not None and math.isfinite(x) else "-"


def _render(lanes: list[_Lane], header: str, now: float, finished: bool):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=header, title_justify="left", expand=True, show_lines=True)
    table.add_column("backend", no_wrap=True, style="bold")
    table.add_column("TTFT", justify="right", no_wrap=True)
    table.add_column("tok/s", justify="right", no_wrap=True)
    table.add_column("tokens", justify="right", no_wrap=True)
    table.add_column("completion", ratio=1)
    table.add_column("note", max_width=18, style="dim")
    for r in lanes:
        ttft = Text(f"{r.ttft:.3f}s") if r.ttft is not None else Text(f"{now:.2f}s…", style="dim")
        text = Text(r.text, style="green")
        if not r.done and not finished:
            text.append("▌", style="dim")
        table.add_row(r.name, ttft, _cell(r.tokens_per_s, ".0f"), str(r.tokens), text,
                      Text(r.note, style="red" if r.error else "dim"))
    return table


def _race_summary(lanes: list[_Lane], out) -> None:
    print(f"{'backend':28} {'TTFT s':>8} {'tok/s':>8} {'tokens':>6} {'total s':>8}  note", file=out)
    for r in lanes:
        print(f"{r.name:28} {_cell(r.ttft, '8.3f'):>8} {_cell(r.tokens_per_s, '8.1f'):>8} {r.tokens:>6} "
              f"{_cell(r.last, '8.3f'):>8}  {r.note}", file=out)


def _race_lanes(h, backends: dict, model: ModelSpec, prompt_tokens: int, decoded: Decoded, seed: int) -> list[_Lane]:
    """A lane per backend, its timeline for the completion's own request shape."""
    n = max(1, len(decoded.snapshots))
    req = Request(model=model, prompt_tokens=prompt_tokens, new_tokens=n)
    lanes = []
    for name, b in backends.items():
        if name == "remote":
            lanes.append(_Lane(name, "remote"))
        elif name.split(":")[0] == "local":
            tl = Timeline(backend="local", token_times=tuple(decoded.times) or (0.0,), chips=1)
            lanes.append(_Lane(name, "measured", tl))
        else:
            spread = b.spread(req, seed=seed) if hasattr(b, "spread") else None
            lanes.append(_Lane(name, "modelled", h.timeline(name, req, seed, backend=b), spread))
    return lanes


def cmd_race(args: argparse.Namespace) -> int:
    from sparkls.plugins.api import load_model

    h = _host()
    names = [n.strip() for b in args.backends for n in b.split(",") if n.strip()] if args.backends else default_backends(h)
    if args.remote and not args.remote_model:
        print("sparkls race: --remote needs --remote-model NAME (the model name the server expects)", file=sys.stderr)
        return 2
    if args.remote and "remote" not in names:
        names.append("remote")
    if "remote" in names and not args.remote:
        print("sparkls race: the remote row needs --remote URL --remote-model NAME", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model)
        backends = {name: h.get(name, strict=True) for name in names}
    except (SpecError, ValueError) as e:
        print(f"sparkls race: {e}", file=sys.stderr)
        return 2
    remote = None
    if args.remote:
        from sparkls.decode.remote_engine import RemoteEngine, RemoteError

        try:
            remote = RemoteEngine(dict(url=args.remote, model=args.remote_model, api_key_env=args.remote_key_env,
                                       first_token_timeout_s=args.remote_timeout))
        except RemoteError as e:
            print(f"sparkls race: {e}", file=sys.stderr)
            return 2
    engine, ctx, prompt_tokens = _prepare(args.position, args.workspace, args.max_tokens, args.engine)
    stop = threading.Event()
    try:
        decoded = decode_once(engine, ctx, stop.is_set)
    except KeyboardInterrupt:
        stop.set()
        return 130
    except Exception as e:  # the decode core failed: nothing to race
        print(f"sparkls race: the decode core failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if not decoded.text:
        print("sparkls race: the decode core has no completion here", file=sys.stderr)
        return 1
    lanes = _race_lanes(h, backends, model, prompt_tokens, decoded, args.seed)
    live = sys.stdout.isatty() and not args.plain and not args.json
    header = (f"{args.position}: {model.name}, prompt ≈ {prompt_tokens} tokens, {len(decoded.snapshots)} new, "
              f"decoded once here in {decoded.times[-1]:.2f}s"
              + (f"; remote {remote.config.model} at {remote.config.endpoint}" if remote else ""))
    try:
        asyncio.run(_race(lanes, decoded, remote, ctx, header, live, args.json, stop))
    except KeyboardInterrupt:
        stop.set()
        return 130
    if args.json:
        for r in lanes:
            print(json.dumps(r.summary()))
    return 1 if any(r.error for r in lanes) else 0


async def _race(lanes: list[_Lane], decoded: Decoded, remote, ctx, header: str, live: bool, quiet: bool,
                stop: threading.Event) -> None:
    from sparkls.server.cadence import RealClock, pace

    loop = asyncio.get_running_loop()
    clock = RealClock()
    start = clock.now()
    far = _Feed(loop) if remote else None
    if far is not None:
        far.start(remote.complete(ctx, stop.is_set))
    out = sys.stdout
    verbose = not live and not quiet

    async def run(r: _Lane) -> None:
        try:
            if r.kind == "remote":
                source, tl = far.follow(), Timeline(backend="remote", token_times=(0.0,), as_produced=True)
            else:
                source, tl = _replay(decoded.snapshots), r.timeline
            async for em in pace(tl, source, clock, start):
                delta = em.text[len(r.text):] if em.text.startswith(r.text) else em.text
                r.text, r.tokens, r.last = em.text, em.tokens, em.t
                if r.first is None:
                    r.first = em.t
                if verbose:
                    print(f"{em.t:8.3f}s {r.name:28} {em.tokens:>3} +{json.dumps(delta)}", file=out, flush=True)
        except Exception as e:  # a RemoteError: this lane ends, the others go on
            r.error = f"{type(e).__name__}: {e}"
            if verbose:
                print(f"{clock.now() - start:8.3f}s {r.name:28} error: {r.error}", file=out, flush=True)
        finally:
            r.done = True
            if r.kind == "remote" and remote.last is not None:
                r.measured = remote.last

    if not live:
        if verbose:
            print(header, file=out, flush=True)
        await asyncio.gather(*(run(r) for r in lanes))
        if verbose:
            print(file=out)
            _race_summary(lanes, out)
            print(f"\ncompletion (local decode core): {json.dumps(decoded.text)}", file=out)
            if far is not None:
                print(f"completion (remote {remote.config.model}): {json.dumps(far.items[-1] if far.items else '')}",
                      file=out)
        return

    from rich.console import Console
    from rich.live import Live

    finished = False
    with Live(console=Console(), refresh_per_second=20, transient=False,
              get_renderable=lambda: _render(lanes, header, loop.time() - start, finished)):
        await asyncio.gather(*(run(r) for r in lanes))
        finished = True


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
    cal = bsub.add_parser("calibrate", help="predicted against published serving figures, error per kind and split")
    cal.add_argument("--json", action="store_true", help="one JSON object per line")
    cal.set_defaults(run=cmd_calibrate)
    fitp = bsub.add_parser("fit", help="fit a backend's free parameters to the in-fit figures (prints TOML lines)")
    fitp.add_argument("name", help="cerebras-wse3, nvidia-blackwell or nvidia-hopper")
    fitp.add_argument("--stack", default="", help="fit a serving-stack variant (e.g. vllm) on its own figures")
    fitp.set_defaults(run=cmd_fit)

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
    sim.add_argument("--concurrency", type=integer,
                     help="streams sharing the deployment, starting together as in a load benchmark")
    sim.add_argument("--spec-accept", type=float, help="mean tokens emitted per decode step (1: no speculation)")
    sim.add_argument("--spec-draft", choices=["medusa", "eagle", "mtp", "draft-model"])
    sim.add_argument("--seed", type=int, default=0, help="seed for modelled jitter and speculative bursts")
    sim.add_argument("--plot", metavar="FILE.png",
                     help="plot TTFT and tok/s/user against concurrency (needs matplotlib: the `plot` extra)")
    sim.add_argument("--json", action="store_true", help="one JSON object per backend per line")
    sim.set_defaults(run=cmd_simulate)

    race = sub.add_parser("race", help="stream one completion from several backends side by side",
                          description="Decode one completion at FILE:LINE:COL once with the local decode core, then "
                                      "play it in every lane at once: a modelled backend's lane at that hardware's "
                                      "timeline, the local lane at the times this machine produced the tokens (a live "
                                      "view on a terminal, one line per update otherwise, --json for data).")
    race.add_argument("position", metavar="FILE:LINE:COL", help="1-based line and column")
    race.add_argument("--backends", action="append",
                      help="NAME[:VARIANT],... (default: every available backend but remote)")
    race.add_argument("--model", default="smollm2-135m",
                      help="the served model the hardware is modelled for: a built-in name or a TOML file "
                           "(default: smollm2-135m, the local decode core's model)")
    race.add_argument("--workspace", help="folder to index for context (default: the file's folder)")
    race.add_argument("--max-tokens", type=integer, default=64)
    race.add_argument("--engine", choices=["auto", "ngram", "neural"], default="auto",
                      help="decode core: the neural model when installed (auto), or the n-gram core")
    race.add_argument("--seed", type=int, default=0, help="seed for modelled jitter and speculative bursts")
    race.add_argument("--remote", metavar="URL", help="an OpenAI-compatible server (vLLM, SGLang, llama.cpp, ...): "
                                                      "adds a `remote` row with its real tokens and cadence")
    race.add_argument("--remote-model", metavar="NAME", help="the model name the remote server expects")
    race.add_argument("--remote-key-env", metavar="VAR", default="",
                      help="name of the environment variable holding the remote API key")
    race.add_argument("--remote-timeout", type=float, default=30.0, metavar="S",
                      help="seconds to wait for the remote's first token (default 30)")
    race.add_argument("--plain", action="store_true", help="line output even on a terminal")
    race.add_argument("--json", action="store_true", help="no live view: one JSON object per lane when done")
    race.set_defaults(run=cmd_race)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.run(args)
