"""The `remote` engine setting: when the remote server fails, the local decode core answers."""

from __future__ import annotations

import asyncio
import socket

import pytest

from clients import FIXTURE_PROJECT
from sparkls.server.testing.client import stop_server

pytestmark = pytest.mark.e2e

URI = (FIXTURE_PROJECT / "pkg" / "remote.py").as_uri()
TEXT = "def handle_delete(request, store):\n    payload = request.json()\n    return\n"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


async def test_unreachable_remote_falls_back_to_the_local_core(monkeypatch, sparkls_server) -> None:
    """Ensure a refused connection is logged and the same request is answered by the local core."""
    # Where a remote engine is comes from the user's environment or config, never the editor's settings.
    monkeypatch.setenv("SPARKLS_REMOTE_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("SPARKLS_REMOTE_MODEL", "smollm2")
    options = {"model": {"engine": "remote"}, "remote": {"connect_timeout_s": 2}}
    # The autouse fixture pins the local core behind the remote to the n-gram core.
    client, init = await sparkls_server(options=options)
    assert init.server_info.version.split("(engine: ")[1].startswith("remote: smollm2")
    await asyncio.wait_for(client.index_done.wait(), 30)
    await client.open(URI, TEXT)
    result = await client.text_document_inline_completion_async(client.inline_params(URI, 2, 10))
    assert [i.insert_text for i in result.items] == ['return {"status": "ok", "id": record.id}']
    await asyncio.sleep(0.2)
    assert any("remote engine failed" in m.message and "local decode core takes over" in m.message for m in client.log_messages)
    assert await stop_server(client) == 0


async def test_remote_settings_with_a_key_are_refused(monkeypatch, sparkls_server) -> None:
    """Ensure an API key written into the settings is refused (keys come from a named variable)."""
    monkeypatch.setenv("SPARKLS_REMOTE_URL", "http://127.0.0.1:9")
    options = {"model": {"engine": "remote"}, "remote": {"model": "m", "api_key": "sk-x"}}
    client, init = await sparkls_server(options=options)
    assert "remote" in init.server_info.version  # the key is dropped, the user's remote still serves
    await asyncio.sleep(0.2)
    assert any("ignored remote.api_key" in m.message for m in client.log_messages)
    assert not any("sk-x" in m.message for m in client.log_messages)
    assert await stop_server(client) == 0
