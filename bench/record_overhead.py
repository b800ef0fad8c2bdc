"""Round-trip latency through `sparkls record` against a direct connection, in the same run.

    .venv/bin/python bench/record_overhead.py [--requests 400]

Two servers run side by side, one behind the recording proxy; requests alternate between them
so machine noise hits both alike. Measured: a no-op round trip (`textDocument/hover`, which
sparkls rejects at once: pure stdio + JSON-RPC cost) and an inline completion.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from editor import FIXTURE_PROJECT, start_server, stop_server
from sparkls.server.testing.client import SERVE, EditorClient

URI = (FIXTURE_PROJECT / "pkg" / "bench.py").as_uri()
TEXT = (FIXTURE_PROJECT / "pkg" / "handlers.py").read_text() + "\n\ndef handle_delete(request, store):\n    payload = request.json()\n    record = store.\n"


async def start(cmd: list[str]) -> EditorClient:
    client, _ = await start_server(command=cmd)
    await asyncio.wait_for(client.index_done.wait(), 60)
    await client.open(URI, TEXT)
    return client


async def timed(coro) -> float:
    t = time.perf_counter()
    try:
        await coro
    except JsonRpcException:
        pass
    return (time.perf_counter() - t) * 1000


async def main(requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.jsonl"
        direct = await start(SERVE)
        proxied = await start([sys.executable, "-m", "sparkls.server", "record", "--out", str(out), "--", *SERVE])
        line = TEXT.count("\n") - 1
        inline = direct.inline_params(URI, line, len("    record = store."))
        hover = types.HoverParams(types.TextDocumentIdentifier(URI), types.Position(0, 0))
        ms = {(who, what): [] for who in ("direct", "proxied") for what in ("no-op", "inline")}
        for _ in range(requests):
            for who, c in (("direct", direct), ("proxied", proxied)):
                ms[who, "no-op"].append(await timed(c.text_document_hover_async(hover)))
                ms[who, "inline"].append(await timed(c.text_document_inline_completion_async(inline)))
        for c in (direct, proxied):
            await stop_server(c)
        lines = len(out.read_text().splitlines())
    print(f"requests: {requests} of each kind per connection, interleaved; trace: {lines} lines")
    for what in ("no-op", "inline"):
        d, p = statistics.median(ms["direct", what]), statistics.median(ms["proxied", what])
        print(f"{what:7s} p50 direct {d:6.3f} ms   via record {p:6.3f} ms   added {p - d:+6.3f} ms   ratio {p / d:5.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    asyncio.run(main(parser.parse_args().requests))
