"""`sparkls serve` over stdio: next edits (textDocument/copilotInlineEdit) and the suggestions' life in sparkls/status."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from sparkls.server.testing.client import stop_server

pytestmark = pytest.mark.e2e

SRC = "def total_of(items):\n    count = 0\n    for item in items:\n        count += item\n    return count\n"
URI = "file:///tmp/sparkls-next-edit/mod.py"
INLINE_EDIT = "textDocument/copilotInlineEdit"


async def ask(client, version, line, character):
    params = {"textDocument": {"uri": URI, "version": version}, "position": {"line": line, "character": character}}
    return await client.protocol.send_request_async(INLINE_EDIT, params)


async def test_rename_next_edits_over_the_wire(sparkls_server) -> None:
    client, init = await sparkls_server(options={"index": {"enabled": False}, "model": {"engine": "ngram"}})
    statuses = []
    client.feature("sparkls/status")(lambda p: statuses.append(p))
    try:
        assert init.capabilities.experimental["sparkls"]["inlineEdit"] is True
        await client.open(URI, SRC)
        assert (await ask(client, 1, 1, 4)).edits == []  # nothing edited yet
        # rename `count` on line 1, keystroke by keystroke: five backspaces, five letters
        version = 1
        for i in range(5):
            version += 1
            client.edit(URI, version, 1, 9 - i - 1, 1, 9 - i, "")
        for i, ch in enumerate("total"):
            version += 1
            client.edit(URI, version, 1, 4 + i, 1, 4 + i, ch)
        result = await ask(client, version, 1, 9)
        edits = result.edits
        assert [(e.range.start.line, e.range.start.character, e.range.end.character, e.text) for e in edits] == [
            (3, 8, 13, "total"),
            (4, 11, 16, "total"),
        ]
        assert edits[0].textDocument.version == version and edits[0].textDocument.uri == URI
        assert edits[0].command.command == "sparkls.acceptInlineEdit"
        again = (await ask(client, version, 1, 9)).edits
        assert again[0].command.arguments[0].id == edits[0].command.arguments[0].id  # the same suggestion
        # a stale version never gets edits
        assert (await ask(client, version - 1, 1, 9)).edits == []
        # the editor draws the first, the user applies it (an edit like any other) and accepts
        client.protocol.notify("textDocument/didShowInlineEdit", {"item": {"command": {"arguments": [{"id": edits[0].command.arguments[0].id}]}}})
        version += 1
        client.edit(URI, version, 3, 8, 3, 13, "total")
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams("sparkls.acceptInlineEdit", [{"id": edits[0].command.arguments[0].id}])
        )
        chained = (await ask(client, version, 3, 13)).edits
        assert [(e.range.start.line, e.range.start.character, e.text) for e in chained] == [(4, 11, "total")]
        for _ in range(100):
            if statuses and statuses[-1].suggestions.nextEdit.accepted == 1:
                break
            await asyncio.sleep(0.02)
        counts = statuses[-1].suggestions.nextEdit
        assert (counts.shown, counts.accepted, counts.acceptRate) == (1, 1, 1.0)
        # bad params get an error, and the server keeps serving
        with pytest.raises(Exception, match="position"):
            await client.protocol.send_request_async(INLINE_EDIT, {"textDocument": {"uri": URI}})
        with pytest.raises(Exception, match="past the end"):
            await ask(client, version, 99, 0)
        assert (await ask(client, version, 4, 0)).edits[0].text == "total"
    finally:
        await stop_server(client)
