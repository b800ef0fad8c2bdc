"""Request → response latency of inlineCompletion over stdio, against an LSP no-op in the same run.

    .venv/bin/python bench/latency.py [--requests 400]

The reference is a request the server rejects at once (`textDocument/hover`, which
sparkls does not serve): the cost of the stdio + JSON-RPC round trip itself. The two
are interleaved so machine noise hits both alike. Target: the n-gram path adds
≤ 2 ms p50 over the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from editor import FIXTURE_PROJECT, start_server, stop_server

URI = (FIXTURE_PROJECT / "pkg" / "bench.py").as_uri()
TEXT = (FIXTURE_PROJECT / "pkg" / "handlers.py").read_text() + "\n\ndef handle_delete(request, store):\n    payload = request.json()\n    record = store.\n"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def main(requests: int) -> None:
    client, _ = await start_server()
    await asyncio.wait_for(client.index_done.wait(), 60)
    await client.open(URI, TEXT)
    line = TEXT.count("\n") - 1
    params = client.inline_params(URI, line, len("    record = store."))
    hover = types.HoverParams(types.TextDocumentIdentifier(URI), types.Position(0, 0))
    first = await client.text_document_inline_completion_async(params)
    print("suggestion:", [i.insert_text for i in first.items])
    inline, noop = [], []
    for _ in range(requests):
        t = time.perf_counter()
        await client.text_document_inline_completion_async(params)
        inline.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        try:
            await client.text_document_hover_async(hover)
        except JsonRpcException:
            pass
        noop.append((time.perf_counter() - t) * 1000)
    await stop_server(client)
    p50_i, p50_n = statistics.median(inline), statistics.median(noop)
    print(f"requests: {requests} each, interleaved")
    print(f"no-op round trip     p50 {p50_n:6.2f} ms   p99 {pct(noop, 0.99):6.2f} ms")
    print(f"inlineCompletion     p50 {p50_i:6.2f} ms   p99 {pct(inline, 0.99):6.2f} ms")
    print(f"added by completion  p50 {p50_i - p50_n:6.2f} ms   ratio {p50_i / p50_n:5.2f}x   (target ≤ 2 ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    asyncio.run(main(parser.parse_args().requests))
