"""``sparkls race FILE:LINE:COL``: one completion, decoded once here, played at each backend's cadence.

The local decode core decodes the completion once at this machine's speed; then every lane
plays it at once: a modelled lane shows token i at its backend's timeline for the completion's
own request shape (prompt ≈ the prefix's tokens, new tokens = the completion's), the ``local``
lane at the times the decode core really produced them, and a ``remote`` lane shows a real
engine's own tokens as they arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
from dataclasses import dataclass
from typing import AsyncIterator, Callable

from sparkls.plugins.api import ModelSpec, Request, SpecError, Timeline, load_model
from sparkls.server.cli.common import TOOL_LOGS, host, integer, parse_position
from sparkls.server.cli.race_view import Lane, print_summary, render
from sparkls.server.cli.simulate import default_backends


def add_to(sub, common: argparse.ArgumentParser) -> None:
    race = sub.add_parser("race", parents=[common], help="stream one completion from several backends side by side",
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
    race.set_defaults(run=run, logs=TOOL_LOGS)


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


def _prepare(position: str, workspace: str | None, max_tokens: int, engine: str = "auto"):
    """The decode engine and context at the position, as ``sparkls complete`` builds them."""
    from sparkls.server.offline import prepare_at

    path, line_no, col_no = parse_position(position, "sparkls race")
    try:
        completer, ctx, model = prepare_at(path, line_no, col_no, workspace, engine, max_tokens)
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"sparkls race: cannot read {path}: {e}") from None
    tokenizer = getattr(completer, "tokenizer", None)
    prompt_tokens = len(tokenizer.encode(ctx.prefix[-8000:])) if tokenizer else len(model.lexer.split(ctx.prefix))
    return completer, ctx, prompt_tokens


def _race_lanes(h, backends: dict, model: ModelSpec, prompt_tokens: int, decoded: Decoded, seed: int) -> list[Lane]:
    """A lane per backend, its timeline for the completion's own request shape."""
    n = max(1, len(decoded.snapshots))
    req = Request(model=model, prompt_tokens=prompt_tokens, new_tokens=n)
    lanes = []
    for name, b in backends.items():
        if name == "remote":
            lanes.append(Lane(name, "remote"))
        elif name.split(":")[0] == "local":
            tl = Timeline(backend="local", token_times=tuple(decoded.times) or (0.0,), chips=1)
            lanes.append(Lane(name, "measured", tl))
        else:
            spread = b.spread(req, seed=seed) if hasattr(b, "spread") else None
            lanes.append(Lane(name, "modelled", h.timeline(name, req, seed, backend=b), spread))
    return lanes


def run(args: argparse.Namespace) -> int:
    h = host()
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
        from sparkls.decode.remote.remote_engine import RemoteEngine, RemoteError

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


async def _race(lanes: list[Lane], decoded: Decoded, remote, ctx, header: str, live: bool, quiet: bool,
                stop: threading.Event) -> None:
    from sparkls.server.cadence import RealClock, in_thread, pace

    loop = asyncio.get_running_loop()
    clock = RealClock()
    start = clock.now()
    out = sys.stdout
    verbose = not live and not quiet

    async def run(r: Lane) -> None:
        try:
            if r.kind == "remote":
                # Its real tokens, as they arrive (the thread stops with `stop` when the lane ends early).
                source = in_thread(remote.complete(ctx, stop.is_set), stop=stop)
                tl = Timeline(backend="remote", token_times=(0.0,), as_produced=True)
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
            print_summary(lanes, out)
            print(f"\ncompletion (local decode core): {json.dumps(decoded.text)}", file=out)
            for r in lanes:
                if r.kind == "remote":
                    print(f"completion (remote {remote.config.model}): {json.dumps(r.text)}", file=out)
        return

    from rich.console import Console
    from rich.live import Live

    finished = False
    with Live(console=Console(), refresh_per_second=20, transient=False,
              get_renderable=lambda: render(lanes, header, loop.time() - start, finished)):
        await asyncio.gather(*(run(r) for r in lanes))
        finished = True
