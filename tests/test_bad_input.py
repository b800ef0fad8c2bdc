"""Bad input gets a clear error or an empty result, and the server keeps serving."""

from __future__ import annotations

import asyncio
import json

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from clients import FIXTURE_PROJECT
from sparkls.server.testing.client import stop_server

pytestmark = pytest.mark.e2e

URI = (FIXTURE_PROJECT / "pkg" / "bad.py").as_uri()
TEXT = "def handle_read(request, store):\n    payload = request.json()\n    return\n"


@pytest.fixture
async def client(sparkls_server):
    client, _ = await sparkls_server()
    await asyncio.wait_for(client.index_done.wait(), 30)
    await client.open(URI, TEXT)
    yield client
    assert await stop_server(client) == 0


async def still_serving(client) -> None:
    result = await client.text_document_inline_completion_async(client.inline_params(URI, 2, 10))
    assert result.items and result.items[0].insert_text.startswith("return")


async def test_column_past_the_end_of_a_line_means_its_end(client) -> None:
    """Ensure a column past the line's end completes at the end of the line, as LSP specifies."""
    result = await client.text_document_inline_completion_async(client.inline_params(URI, 2, 500))
    assert result.items[0].range.end == types.Position(2, 10)


async def test_line_past_the_end_is_a_clear_error(client) -> None:
    """Ensure a line past the document's end is InvalidParams naming the problem."""
    with pytest.raises(JsonRpcException, match="past the end"):
        await client.text_document_inline_completion_async(client.inline_params(URI, 99, 0))
    await still_serving(client)


async def test_unknown_document_gets_an_empty_list(client) -> None:
    """Ensure a request for a document that was never opened is empty and logged."""
    other = (FIXTURE_PROJECT / "nowhere.py").as_uri()
    result = await client.text_document_inline_completion_async(client.inline_params(other, 0, 0))
    assert list(result.items) == []
    await asyncio.sleep(0.1)
    assert any("not open" in m.message for m in client.log_messages)
    await still_serving(client)


async def test_malformed_params_and_json(client) -> None:
    """Ensure malformed params get an error response and broken JSON-RPC frames are survived."""
    # The client library refuses to send such params, so the frame goes onto the wire by hand,
    # with a future registered for its id so the response is matched.
    reply = client.expect_response("bad-1")
    body = json.dumps(
        {"jsonrpc": "2.0", "id": "bad-1", "method": types.TEXT_DOCUMENT_INLINE_COMPLETION,
         "params": {"textDocument": 5, "position": "x"}}
    ).encode()
    stdin = client.process.stdin
    stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with pytest.raises(JsonRpcException):
        await asyncio.wait_for(asyncio.wrap_future(reply), 10)
    for frame in (b"Content-Length: 9\r\n\r\n{garbage}", b'Content-Length: 20\r\n\r\n{"jsonrpc": "2.0"}  '):
        stdin.write(frame)
    await stdin.drain()
    await still_serving(client)


async def test_huge_document(client) -> None:
    """Ensure a 10 MB document opens, edits and completes without stalling the server."""
    uri = (FIXTURE_PROJECT / "pkg" / "huge.py").as_uri()
    line = "result = compute(alpha, beta)  # filler\n"
    text = line * (10_000_000 // len(line)) + TEXT
    await client.open(uri, text)
    last = text.count("\n")
    client.edit(uri, 2, last - 1, 10, last - 1, 10, " ")
    result = await asyncio.wait_for(
        client.text_document_inline_completion_async(client.inline_params(uri, last - 1, 11)), 20
    )
    # Too large to count itself, the document still completes from the workspace's patterns.
    assert [i.insert_text for i in result.items] == ['{"status": "ok", "id": record.id}']
    await still_serving(client)
