"""``sparkls backends list|calibrate``, ``sparkls simulate`` and ``sparkls race``.

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


# -- race ---------------------------------------------------------------------------------
#
# One completion from the local decode core, shown growing at each backend's cadence side by
# side: modelled rows are paced by server/cadence.py's pace() at their timeline for the request
# shape (prompt ≈ the prefix's lexer tokens, new tokens = the completion's); a `remote` row shows
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

    async def wait(self) -> None:
        while not self.done:
            self._changed.clear()
            await self._changed.wait()

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


class _Shape:
    """A row's timeline: first for the token budget, asked again for the completion's real
    length as soon as the decode core has finished (long before the first modelled token is
    due with the n-gram core), so the request shape is the completion's own."""

    def __init__(self, h, name: str, backend, shape: Callable[[int], Request], seed: int, budget: int) -> None:
        self.h, self.name, self.backend, self.shape, self.seed = h, name, backend, shape, seed
        self.tl = h.timeline(name, shape(budget), seed, backend=backend)

    def settle(self, tokens: int) -> None:
        if tokens > 0:
            self.tl = self.h.timeline(self.name, self.shape(tokens), self.seed, backend=self.backend)

    @property
    def as_produced(self) -> bool:
        return self.tl.as_produced

    def due(self, i: int) -> float:
        return self.tl.due(i)


@dataclass
class _Row:
    name: str
    shape: _Shape
    feed: _Feed
    text: str = ""
    tokens: int = 0
    first: float | None = None
    last: float | None = None
    lag: float = 0.0  # worst lateness of a token behind this row's timeline (local decode too slow)
    done: bool = False
    error: str = ""
    measured: object = None  # the remote row's Measurement

    @property
    def answered_by(self) -> str:
        return self.shape.tl.backend

    @property
    def ttft(self) -> float | None:
        m = self.measured
        return m.ttft_s if m is not None and m.ttft_s is not None else self.first

    @property
    def tokens_per_s(self) -> float | None:
        m = self.measured
        if m is not None:
            return m.tokens_per_s
        t = self.feed.times
        if self.shape.as_produced and self.done and len(t) > 1 and t[-1] > t[0]:
            return (len(t) - 1) / (t[-1] - t[0])  # shown as produced: the decode core's own rate
        if self.tokens > 1 and self.last is not None and self.first is not None and self.last > self.first:
            return (self.tokens - 1) / (self.last - self.first)
        if self.tokens > 1 and not self.shape.as_produced:
            due = [self.shape.due(i) for i in range(self.tokens)]
            if due[-1] > due[0]:  # shown in one burst (the screen is slower than the hardware): its rate
                return (self.tokens - 1) / (due[-1] - due[0])
        return None

    @property
    def note(self) -> str:
        if self.error:
            return self.error
        notes = []
        if self.answered_by != self.name.split(":")[0]:
            notes.append(f"answered by {self.answered_by}")
        if self.lag > 0.0005:
            notes.append(f"local decode could not keep up (up to {self.lag * 1000:.0f} ms late)")
        if self.measured is not None:
            notes.append("real tokens, measured cadence")
        elif self.shape.as_produced:
            notes.append("as produced")
        return "; ".join(notes)


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


def _render(rows: list[_Row], header: str, now: float, finished: bool):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=header, title_justify="left", expand=True, show_lines=True)
    table.add_column("backend", no_wrap=True, style="bold")
    table.add_column("TTFT", justify="right", no_wrap=True)
    table.add_column("tok/s", justify="right", no_wrap=True)
    table.add_column("tokens", justify="right", no_wrap=True)
    table.add_column("completion", ratio=1)
    table.add_column("note", max_width=28, style="dim")
    for r in rows:
        ttft = Text(f"{r.ttft:.3f}s") if r.ttft is not None else Text(f"{now:.2f}s…", style="dim")
        text = Text(r.text, style="green")
        if not r.done and not finished:
            text.append("▌", style="dim")
        note = Text(r.note, style="red" if r.error or r.lag > 0.0005 else "dim")
        table.add_row(r.name, ttft, _cell(r.tokens_per_s, ".0f"), str(r.tokens), text, note)
    return table


def _summary(rows: list[_Row], out) -> None:
    print(f"{'backend':28} {'TTFT s':>8} {'tok/s':>8} {'tokens':>6} {'total s':>8}  note", file=out)
    for r in rows:
        print(f"{r.name:28} {_cell(r.ttft, '8.3f'):>8} {_cell(r.tokens_per_s, '8.1f'):>8} {r.tokens:>6} "
              f"{_cell(r.last, '8.3f'):>8}  {r.note}", file=out)


def cmd_race(args: argparse.Namespace) -> int:
    from sparkls.backends.stream import load_model

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
        from sparkls.backends.remote import RemoteEngine, RemoteError

        try:
            remote = RemoteEngine(dict(url=args.remote, model=args.remote_model, api_key_env=args.remote_key_env,
                                       first_token_timeout_s=args.remote_timeout))
        except RemoteError as e:
            print(f"sparkls race: {e}", file=sys.stderr)
            return 2
    engine, ctx, prompt_tokens = _prepare(args.position, args.workspace, args.max_tokens, args.engine)
    live = sys.stdout.isatty() and not args.plain
    header = (f"{args.position}: {model.name}, prompt ≈ {prompt_tokens} tokens, up to {ctx.max_tokens} new"
              + (f"; remote {remote.config.model} at {remote.config.endpoint}" if remote else ""))
    stop = threading.Event()
    try:
        rows = asyncio.run(_race(h, backends, model, engine, ctx, prompt_tokens, remote, args.seed, header, live, stop))
    except KeyboardInterrupt:
        stop.set()
        return 130
    local_failed = any(r.error for r in rows if r.measured is None)
    if not any(r.text for r in rows if r.measured is None) or local_failed:
        print("sparkls race: the decode core has no completion here", file=sys.stderr)
        return 1
    return 1 if any(r.error for r in rows) else 0


async def _race(h, backends, model, engine, ctx, prompt_tokens, remote, seed, header, live, stop) -> list[_Row]:
    from sparkls.server.cadence import RealClock, pace

    loop = asyncio.get_running_loop()
    clock = RealClock()
    start = clock.now()
    local = _Feed(loop)
    local.start(engine.complete(ctx, stop.is_set))
    far = _Feed(loop) if remote else None
    if far is not None:
        far.start(remote.complete(ctx, stop.is_set))

    def shape(n: int) -> Request:
        return Request(model=model, prompt_tokens=prompt_tokens, new_tokens=max(1, n))

    rows = [_Row(name, _Shape(h, name, b, shape, seed, ctx.max_tokens), far if name == "remote" else local)
            for name, b in backends.items()]
    for r in rows:
        if r.feed is far:
            r.measured = remote.last

    async def settle() -> None:
        await local.wait()
        for r in rows:
            if r.feed is local:
                r.shape.settle(len(local.items))

    out = sys.stdout

    async def run(r: _Row) -> None:
        try:
            async for em in pace(r.shape, r.feed.follow(), clock, start):
                delta = em.text[len(r.text):] if em.text.startswith(r.text) else em.text
                r.text, r.tokens, r.last = em.text, em.tokens, em.t
                if r.first is None:
                    r.first = em.t
                if not em.kept_up:
                    r.lag = max(r.lag, em.t - em.due)
                if not live:
                    print(f"{em.t:8.3f}s {r.name:28} {em.tokens:>3} +{json.dumps(delta)}", file=out, flush=True)
        except Exception as e:  # a RemoteError, or a decode core failure: this row ends, the others go on
            r.error = f"{type(e).__name__}: {e}"
            if not live:
                print(f"{clock.now() - start:8.3f}s {r.name:28} error: {r.error}", file=out, flush=True)
        finally:
            r.done = True
        if r.measured is None and remote is not None and r.feed is far:
            r.measured = remote.last

    if not live:
        print(header, file=out, flush=True)
        await asyncio.gather(settle(), *(run(r) for r in rows))
        for r in rows:
            if r.feed is far and remote.last is not None:
                r.measured = remote.last
        print(file=out)
        _summary(rows, out)
        print(f"\ncompletion (local decode core): {json.dumps(local.items[-1] if local.items else '')}", file=out)
        if far is not None:
            print(f"completion (remote {remote.config.model}): {json.dumps(far.items[-1] if far.items else '')}",
                  file=out)
        return rows

    from rich.console import Console
    from rich.live import Live

    console = Console()
    finished = False
    with Live(console=console, refresh_per_second=20, transient=False,
              get_renderable=lambda: _render(rows, header, loop.time() - start, finished)):
        await asyncio.gather(settle(), *(run(r) for r in rows))
        for r in rows:
            if r.feed is far and remote.last is not None:
                r.measured = remote.last
        finished = True
    return rows


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

    race = sub.add_parser("race", help="stream one completion from several backends side by side",
                          description="Decode one completion at FILE:LINE:COL with the local decode core and show it "
                                      "streaming at each backend's cadence, side by side (a live view on a terminal, "
                                      "one line per update otherwise).")
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
    race.set_defaults(run=cmd_race)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return args.run(args)
