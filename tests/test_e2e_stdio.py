"""End to end: `sparkls serve` as a subprocess over stdio, driven the way an editor drives it."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from clients import FIXTURE_PROJECT, NVIM_011
from sparkls.server.testing.client import stop_server

pytestmark = pytest.mark.e2e

URI = (FIXTURE_PROJECT / "pkg" / "delete.py").as_uri()
DRAFT = (
    "def handle_delete(request, store):\n"
    "    payload = request.json()\n"
    "    record = store.delete(payload)\n"
    '    log.info("deleted %s", record.id)\n'
    "    ret\n"
)


async def test_inline_completion_session(sparkls_server) -> None:
    """Ensure a whole editor session works: open, edit incrementally, complete, cancel, shut down."""
    client, init = await sparkls_server(options={"debounce_ms": 400})
    caps = init.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is None
    assert caps.position_encoding == types.PositionEncodingKind.Utf16
    assert caps.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    assert init.server_info.name == "sparkls"
    await asyncio.wait_for(client.index_done.wait(), 30)
    assert [v["kind"] for v in client.progress][:1] == ["begin"]
    assert client.progress[-1]["kind"] == "end"

    await client.open(URI, DRAFT)
    client.edit(URI, 2, 4, 7, 4, 7, "urn")  # the user types "urn" after "ret"
    result = await client.text_document_inline_completion_async(client.inline_params(URI, 4, 10))
    [item] = result.items
    # The pattern repeated in pkg/handlers.py, healed from the word already typed.
    assert item.insert_text == 'return {"status": "ok", "id": record.id}'
    assert item.range == types.Range(types.Position(4, 4), types.Position(4, 10))

    # Typing along the suggestion is answered from the same stream, without a new decode.
    client.edit(URI, 3, 4, 10, 4, 10, " {")
    along = await client.text_document_inline_completion_async(client.inline_params(URI, 4, 12, automatic=True))
    assert [i.insert_text for i in along.items] == ['"status": "ok", "id": record.id}']
    assert along.items[0].range == types.Range(types.Position(4, 12), types.Position(4, 12))

    # Elsewhere, automatic requests wait for a pause (debounce_ms): a cancel in that pause wins.
    pending = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, client.inline_params(URI, 2, 11, automatic=True), msg_id="typing-1"
    )
    await asyncio.sleep(0.05)
    client.cancel_request(types.CancelParams(id="typing-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wrap_future(pending)

    # A newer request for the same document stops the older one.
    older = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, client.inline_params(URI, 2, 11, automatic=True)
    )
    await asyncio.sleep(0.05)
    newer = await client.text_document_inline_completion_async(client.inline_params(URI, 4, 12))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wrap_future(older)
    assert newer.items[0].insert_text == along.items[0].insert_text

    assert await stop_server(client) == 0


async def test_completion_fallback_for_clients_without_inline(sparkls_server) -> None:
    """Ensure a client without inline completion gets `textDocument/completion` items with a textEdit."""
    client, init = await sparkls_server(NVIM_011)
    assert init.capabilities.inline_completion_provider is None
    assert init.capabilities.completion_provider is not None
    assert init.capabilities.position_encoding == types.PositionEncodingKind.Utf8
    await asyncio.wait_for(client.index_done.wait(), 30)
    text = DRAFT.replace("    ret\n", "    résumé = 1  # é\n    return\n")
    await client.open(URI, text)
    line = "    return"
    result = await client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(URI), types.Position(5, len(line)))
    )
    [item] = result.items
    # A snippet with "}" escaped, so that every client inserts the whole text literally.
    assert item.insert_text_format == types.InsertTextFormat.Snippet
    assert item.text_edit.new_text == 'return {"status": "ok", "id": record.id\\}$0'
    assert item.text_edit.range == types.Range(types.Position(5, 4), types.Position(5, 10))
    assert await stop_server(client) == 0


async def test_next_line_at_a_line_end_inline_and_completion(sparkls_server) -> None:
    """Ensure that at the end of a header line both methods suggest the line break and the body:
    the inline item's range is at the cursor, the completion item's label names its first line."""
    header = "def handle_update(request, store):"
    for caps in (None, NVIM_011):
        client, _ = await sparkls_server(caps) if caps else await sparkls_server()
        await asyncio.wait_for(client.index_done.wait(), 30)
        await client.open(URI, DRAFT + "\n" + header + "\n\n")
        at = types.Position(DRAFT.count("\n") + 1, len(header))
        if caps is None:
            [item] = (await client.text_document_inline_completion_async(client.inline_params(URI, at.line, at.character))).items
            text = item.insert_text
            assert item.range == types.Range(at, at)
        else:
            result = await client.text_document_completion_async(
                types.CompletionParams(types.TextDocumentIdentifier(URI), at))
            [item] = result.items
            assert item.text_edit.range == types.Range(at, at) and item.text_edit.new_text.endswith("$0")
            text = item.text_edit.new_text[:-2].replace("\\}", "}")
            assert item.label.startswith("↵ payload = request.json()"), item.label
        assert text.startswith("\n    payload = request.json()\n    record = store."), text
        assert await stop_server(client) == 0


async def test_excluded_files_never_reach_a_prompt(sparkls_server, tmp_path) -> None:
    """Ensure a .env document gets no suggestion, and gitignored or `exclude`d files are not indexed
    (their unique text is never suggested) while other files are."""
    (tmp_path / ".gitignore").write_text("private/\n")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "keys.py").write_text("TOKEN_PRIVATE = 'zq-ignored-secret-value'\n" * 3)
    (tmp_path / "hidden.py").write_text("TOKEN_HIDDEN = 'zq-excluded-secret-value'\n" * 3)
    (tmp_path / "public.py").write_text("TOKEN_PUBLIC = 'zq-public-value'\n" * 3)
    client, _ = await sparkls_server(options={"exclude": ["hidden.py"]}, root=tmp_path)
    await asyncio.wait_for(client.index_done.wait(), 30)
    indexed = next(m.message for m in client.log_messages if m.message.startswith("indexed "))
    assert indexed.startswith("indexed 1 files"), indexed  # public.py only
    uri = (tmp_path / "new.py").as_uri()
    for name, want in (("TOKEN_PUBLIC = ", "'zq-public-value'"), ("TOKEN_PRIVATE = ", None), ("TOKEN_HIDDEN = ", None)):
        await client.open(uri, name)
        result = await client.text_document_inline_completion_async(client.inline_params(uri, 0, len(name)))
        got = result.items[0].insert_text if result.items else None
        assert (got == want) if want else (got is None or "secret" not in got), (name, got)
        client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    env = (tmp_path / ".env").as_uri()
    await client.open(env, "TOKEN_PUBLIC = 'zq-public-value'\nTOKEN_PUBLIC = ")
    result = await client.text_document_inline_completion_async(client.inline_params(env, 1, 15))
    assert not result.items
    assert await stop_server(client) == 0
