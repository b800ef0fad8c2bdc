"""Streamed ghost text (docs/protocol.md): opt-in, paced at the backend's cadence, one `done`."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from clients import FIXTURE_PROJECT, VSCODE, VSCODE_STREAMING
from sparkls.server.testing.client import stop_server

pytestmark = pytest.mark.e2e

URI = (FIXTURE_PROJECT / "pkg" / "stream.py").as_uri()
TEXT = "def handle_delete(request, store):\n    payload = request.json()\n    return\n"
STREAM = "sparkls/inlineCompletionStream"


async def session(start, caps, backend: str):
    client, init = await start(caps, options={"backend": backend, "served_model": "llama-3.1-70b"})
    client.stream, client.status = [], []
    client.feature(STREAM)(lambda p: client.stream.append(p))
    client.feature("sparkls/status")(lambda p: client.status.append(p))
    await asyncio.wait_for(client.index_done.wait(), 30)
    await client.open(URI, TEXT)
    return client, init


async def wait_done(client, stream_id: str) -> list:
    for _ in range(200):
        mine = [n for n in client.stream if n.streamId == stream_id]
        if mine and mine[-1].done:
            return mine
        await asyncio.sleep(0.02)
    raise AssertionError(f"stream {stream_id} never finished: {client.stream}")


async def test_stream_grows_at_the_backend_cadence(sparkls_server) -> None:
    """Ensure an opted-in client gets the first text early, then growing notifications and one done."""
    client, init = await session(sparkls_server, VSCODE_STREAMING, "nvidia-hopper")
    assert init.capabilities.experimental["sparkls"]["inlineCompletionStream"] is True
    result = await client.text_document_inline_completion_async(client.inline_params(URI, 2, 10))
    [item] = result.items
    stream_id = item.command.arguments[0]["streamId"]
    notes = await wait_done(client, stream_id)
    final = 'return {"status": "ok", "id": record.id}'
    texts = [n.text for n in notes]
    assert texts[-1] == final
    assert final.startswith(item.insert_text) and item.insert_text != final  # the answer was a beginning
    assert all(b.startswith(a) and len(b) >= len(a) for a, b in zip(texts, texts[1:]))
    assert len(set(texts)) >= 3  # it visibly grew
    assert sum(n.done for n in notes) == 1
    assert {n.backend for n in notes} == {"nvidia-hopper"}
    assert notes[-1].keptUp is True  # the n-gram core is faster than any GPU
    # Hopper serving a 70B model: tens of milliseconds between tokens, so the stream takes a while.
    assert notes[-1].elapsedMs > 50
    await asyncio.sleep(0.1)
    assert client.status and client.status[-1].backend == "nvidia-hopper"
    assert await stop_server(client) == 0


async def test_clients_that_do_not_opt_in_get_the_whole_text(sparkls_server) -> None:
    """Ensure a client without the opt-in gets one complete answer and no stream notifications."""
    client, init = await session(sparkls_server, VSCODE, "nvidia-hopper")
    result = await client.text_document_inline_completion_async(client.inline_params(URI, 2, 10))
    assert [i.insert_text for i in result.items] == ['return {"status": "ok", "id": record.id}']
    await asyncio.sleep(0.2)
    assert client.stream == []
    assert await stop_server(client) == 0


async def test_select_backend_command(sparkls_server) -> None:
    """Ensure `sparkls.selectBackend` switches the cadence for the next request and rejects unknown names."""
    client, _ = await session(sparkls_server, VSCODE_STREAMING, "local")
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="sparkls.selectBackend", arguments=["cerebras-wse3"])
    )
    result = await client.text_document_inline_completion_async(client.inline_params(URI, 2, 10))
    notes = await wait_done(client, result.items[0].command.arguments[0]["streamId"])
    assert notes[-1].backend == "cerebras-wse3"
    listed = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="sparkls.listBackends"))
    names = {b["name"]: b for b in listed}
    assert {"local", "cerebras-wse3", "nvidia-blackwell", "nvidia-hopper"} <= set(names)
    assert names["cerebras-wse3"]["active"] and not names["local"]["active"]
    with pytest.raises(JsonRpcException, match="available"):
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="sparkls.selectBackend", arguments=["no-such-chip"])
        )
    assert await stop_server(client) == 0


async def test_auto_backend_follows_the_environment_and_the_disabled_list(sparkls_server, monkeypatch) -> None:
    """Ensure `backend` "auto" paces at $SPARKLS_BACKEND and `backends.disabled` takes a backend out until re-enabled."""
    monkeypatch.setenv("SPARKLS_BACKEND", "cerebras-wse3")
    client, _ = await sparkls_server(VSCODE_STREAMING, options={"backends": {"disabled": ["nvidia-hopper"]}})
    client.stream = []
    client.feature(STREAM)(lambda p: client.stream.append(p))
    await asyncio.wait_for(client.index_done.wait(), 30)
    await client.open(URI, TEXT)
    result = await client.text_document_inline_completion_async(client.inline_params(URI, 2, 10))
    notes = await wait_done(client, result.items[0].command.arguments[0]["streamId"])
    assert notes[-1].backend == "cerebras-wse3"

    async def listed() -> dict:
        rows = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="sparkls.listBackends"))
        return {b["name"]: b for b in rows}

    names = await listed()
    assert names["cerebras-wse3"]["active"]
    assert not names["nvidia-hopper"]["available"] and names["nvidia-hopper"]["reason"] == "disabled in settings"
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"sparkls": {"backends": {"disabled": []}}}))
    for _ in range(100):  # re-enabling starts the backend in the server's I/O pool
        if (await listed())["nvidia-hopper"]["available"]:
            break
        await asyncio.sleep(0.02)
    assert (await listed())["nvidia-hopper"]["available"]
    assert await stop_server(client) == 0
