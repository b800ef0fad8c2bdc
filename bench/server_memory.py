"""Resident memory of `sparkls serve` with the neural core, as documents are opened, completed and closed.

    .venv/bin/python bench/server_memory.py [--docs 6]

Opens this repository's largest Python files one by one (index off, so only the
decode core grows), asks an inline completion at the end of each (a KV-cache session
per document, the server keeps at most a few), then closes them all. Prints the server
process's RSS (VmRSS) and peak (VmHWM) after each step, read from /proc. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from editor import start_server, stop_server


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def run(n_docs: int) -> None:
    client, init = await start_server(options={"index": {"enabled": False}})
    pid = client.process.pid
    ready = asyncio.Event()
    client.feature("sparkls/status")(lambda p: ready.set() if p.engine == "neural" else None)
    await asyncio.wait_for(ready.wait(), 300)
    rss, hwm = memory_mb(pid)
    print(f"neural core loaded                 RSS {rss:6.0f} MB   peak {hwm:6.0f} MB")
    files = sorted((p for folder in ("decode", "server", "tests") for p in (ROOT / folder).glob("*.py")), key=lambda p: -p.stat().st_size)
    opened = []
    for path in files[:n_docs]:
        text = path.read_text()
        uri = path.as_uri()
        await client.open(uri, text)
        opened.append(uri)
        lines = text.splitlines()
        await client.text_document_inline_completion_async(client.inline_params(uri, len(lines) - 1, len(lines[-1])))
        rss, hwm = memory_mb(pid)
        print(f"completed in {path.relative_to(ROOT)!s:28s} RSS {rss:6.0f} MB   peak {hwm:6.0f} MB")
    from lsprotocol import types

    for uri in opened:
        client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    await asyncio.sleep(1.0)
    rss, hwm = memory_mb(pid)
    print(f"all {len(opened)} documents closed            RSS {rss:6.0f} MB   peak {hwm:6.0f} MB")
    await stop_server(client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=6)
    asyncio.run(run(parser.parse_args().docs))


if __name__ == "__main__":
    main()
