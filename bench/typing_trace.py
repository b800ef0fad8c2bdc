"""A realistic typing trace through the real stdio client path, per backend.

    .venv/bin/python bench/typing_trace.py [--engine neural|ngram] [--backends local,cerebras-wse3,...]

A new handler is typed into the fixture workspace character by character, 60–120 ms per key
(seeded), with 400–800 ms pauses after each line, by a pygls client that behaves like VS Code:
a didChange and an automatic inlineCompletion request per keystroke, and a $/cancelRequest for
the previous request if it is still pending. It opts in to streaming. Reported per backend:
keystroke → first ghost text and keystroke → whole suggestion (stream `done`), p50 and p99 over
the keystrokes that got a suggestion; requests sent, cancelled, answered by typeahead; and how
many decodes were still running at the end (superseded work must not be left running). The
reference, measured in the same run, is a no-op round trip (`textDocument/hover`, not served).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from editor import FIXTURE_PROJECT, VSCODE_STREAMING, start_server, stop_server

TYPED = (
    "def handle_delete(request, store):\n"
    "    payload = request.json()\n"
    "    record = store.delete(payload)\n"
    '    log.info("deleted %s", record.id)\n'
    '    return {"status": "ok", "id": record.id}\n'
)
URI = (FIXTURE_PROJECT / "pkg" / "typing_trace.py").as_uri()


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def noop_reference(client, n: int = 50) -> float:
    hover = types.HoverParams(types.TextDocumentIdentifier(URI), types.Position(0, 0))
    times = []
    for _ in range(n):
        t = time.perf_counter()
        try:
            await client.text_document_hover_async(hover)
        except JsonRpcException:
            pass
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


async def run(backend: str, seed: int) -> dict:
    client, _ = await start_server(VSCODE_STREAMING, options={"backend": backend, "index": {"enabled": True}})
    status: list = []
    done_at: dict[str, float] = {}
    client.feature("sparkls/status")(lambda p: status.append(p))
    client.feature("sparkls/inlineCompletionStream")(
        lambda p: done_at.setdefault(p.streamId, time.perf_counter()) if p.done else None
    )
    await asyncio.wait_for(client.index_done.wait(), 60)
    if os.environ.get("SPARKLS_ENGINE", "auto") != "ngram":
        for _ in range(600):  # wait for the neural core, if it is the one being measured
            if status and status[-1].engine == "neural":
                break
            await asyncio.sleep(0.1)
    await client.open(URI, "")
    reference = await noop_reference(client)
    rng = random.Random(seed)
    line = col = 0
    version = 1
    pending = None
    first, full, sent, cancelled = [], [], 0, 0
    keystrokes = []
    for ch in TYPED:
        version += 1
        client.edit(URI, version, line, col, line, col, ch)
        line, col = (line + 1, 0) if ch == "\n" else (line, col + 1)
        if pending is not None and not pending.done():
            client.cancel_request(types.CancelParams(id=f"k{sent - 1}"))  # as VS Code does on the next key
        t0 = time.perf_counter()
        fut = client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, client.inline_params(URI, line, col, automatic=True), msg_id=f"k{sent}"
        )
        keystrokes.append([t0, fut, None])
        fut.add_done_callback(lambda f, k=keystrokes[-1]: k.__setitem__(2, time.perf_counter()))
        pending = fut
        sent += 1
        await asyncio.sleep(rng.uniform(0.06, 0.12) + (rng.uniform(0.4, 0.8) if ch == "\n" else 0))
    await asyncio.sleep(2.0)
    for t0, fut, t1 in keystrokes:
        try:
            result = fut.result(timeout=0) if fut.done() else None
        except Exception:
            cancelled += 1
            continue
        if result is None or not result.items:
            continue
        first.append((t1 - t0) * 1000)
        stream_id = result.items[0].command.arguments[0]["streamId"]
        if stream_id in done_at:
            full.append((done_at[stream_id] - t0) * 1000)
    live_before = status[-1].liveStreams if status else None  # before the settings change below resets
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"sparkls": {}}))
    await asyncio.sleep(0.3)
    last = status[-1] if status else None
    await stop_server(client)
    return {
        "backend": backend,
        "reference": reference,
        "first": first,
        "full": full,
        "sent": sent,
        "cancelled": cancelled,
        "typeahead": getattr(last, "typeahead", None),
        "live": live_before,
        "engine": getattr(last, "engine", "?"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="neural", choices=["neural", "ngram"])
    parser.add_argument("--backends", default="local,cerebras-wse3,nvidia-blackwell,nvidia-hopper")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["SPARKLS_ENGINE"] = args.engine
    print(f"typing {len(TYPED)} characters at 60–120 ms per key, engine {args.engine}")
    print(
        f"{'backend':<18} {'first p50':>9} {'p99':>7} {'full p50':>9} {'p99':>7}  "
        f"{'sent':>4} {'cancel':>6} {'typeahead':>9} {'shown':>5} {'left running':>12}  no-op p50"
    )
    for backend in args.backends.split(","):
        r = asyncio.run(run(backend, args.seed))
        print(
            f"{r['backend']:<18} {statistics.median(r['first']) if r['first'] else float('nan'):7.1f}ms "
            f"{pct(r['first'], 0.99):5.0f}ms {statistics.median(r['full']) if r['full'] else float('nan'):7.1f}ms "
            f"{pct(r['full'], 0.99):5.0f}ms  {r['sent']:>4} {r['cancelled']:>6} {r['typeahead']!s:>9} "
            f"{len(r['first']):>5} {r['live']!s:>12}  {r['reference']:.2f} ms ({r['engine']})"
        )


if __name__ == "__main__":
    main()
