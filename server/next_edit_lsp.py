"""The LSP face of next edits and of the suggestions' life (docs/protocol.md, "Next edits" and "Feedback").

`textDocument/copilotInlineEdit` and `textDocument/didShowInlineEdit` have the shapes of GitHub
Copilot's language server, so clients written for it (sidekick.nvim, copilot-lsp-nvim, copilot.el)
work unchanged; `textDocument/didShowCompletion` and `textDocument/didPartiallyAcceptCompletion`
too. Their params are the Structs of server/messages.py.
"""

from __future__ import annotations

import itertools
import logging

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from sparkls.server import messages as m
from sparkls.server.documents import PositionError
from sparkls.server.next_edit import MAX_CHARS
from sparkls.server.rewrite_lsp import Rewrites

log = logging.getLogger("sparkls")

_ids = itertools.count(1)


async def inline_edits(ls, params) -> dict:
    """Next edits for the document at the client's version; none when that version is not the server's.

    The rule-based kinds answer at once; when they have nothing, the model's rewrite of the lines after the edit
    (server/rewrite_lsp.py) is awaited (off the event loop; a newer version cancels it and gets its own)."""
    asked = m.receive(params, m.InlineEditParams)
    uri, version = asked.text_document.uri, asked.text_document.version
    doc = ls.documents.get(uri)
    if doc is None:
        log.warning("next edits asked for a document that is not open: %s", uri)
        return m.result(m.InlineEditList(edits=[]))
    if version is not None and version != doc.version:
        return m.result(m.InlineEditList(edits=[]))  # stale: edits computed for another text must never be applied
    try:
        cursor = doc.offset_at(types.Position(asked.position.line, asked.position.character), ls.encoding)
    except PositionError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    sites = ls.next_edits.suggest(uri, doc.text, doc.version, cursor, doc.language_id)
    proposal = None
    if not sites and len(doc.text) <= MAX_CHARS:
        history = ls.next_edits.histories.get(uri)
        asked_at = doc.version
        proposal = await ls.rewrites.suggest(ls, uri, doc, history.latest if history else None)
        if proposal is None or ls.documents.get(uri) is not doc or doc.version != asked_at:
            return m.result(m.InlineEditList(edits=[]))  # nothing, or typed on meanwhile
        sites = sorted(proposal.sites, key=lambda s: (s.start < cursor, s.start))
    edits = []
    for site in sites:
        again = ls.next_edits.offered.get(uri)
        if not edits and again is not None and again[:2] == (doc.version, site):
            sid = again[2]  # asked again for the same text: the same suggestion, not a new one
        else:
            sid = ls.rewrites.new_id() if proposal is not None else f"e{next(_ids)}"
        start, end = doc.position_at(site.start, ls.encoding), doc.position_at(site.end, ls.encoding)
        edits.append(
            m.InlineEdit(
                text=site.new,
                range=m.Range.of(types.Range(start, end)),
                text_document=m.VersionedDocument(uri=uri, version=doc.version),
                command=m.EditCommand(title="sparkls: accept next edit", command=m.AcceptInlineEdit.COMMAND,
                                      arguments=[m.AcceptInlineEdit(id=sid)]),
            )
        )
        if len(edits) == 1 and (again is None or again[2] != sid):  # the one an editor shows; the rest follow
            ls.suggestions.offer(sid, "nextEdit", uri, score=proposal.score if proposal else None)
            ls.next_edits.offered[uri] = (doc.version, site, sid)
            if proposal is not None:
                ls.rewrites.record(sid, proposal)
    return m.result(m.InlineEditList(edits=edits))


def register(server) -> None:
    """Add the handlers to ``server`` (called by server.register)."""

    server.rewrites = Rewrites()

    @server.feature(m.InlineEditParams.METHOD)
    async def copilot_inline_edit(ls, params) -> dict:
        return await inline_edits(ls, params)

    @server.feature(m.DidShowInlineEdit.METHOD)
    def did_show_inline_edit(ls, params) -> None:
        ls.suggestions.show(m.receive(params, m.DidShowInlineEdit).key)

    @server.command(m.AcceptInlineEdit.COMMAND)
    def accept_inline_edit(ls, *args) -> None:
        ls.suggestions.accept(m.receive(args[0] if args else None, m.AcceptInlineEdit).id, "full")
        ls.send_status()

    @server.feature(m.DidShowCompletion.METHOD)
    def did_show_completion(ls, params) -> None:
        ls.suggestions.show(m.receive(params, m.DidShowCompletion).item.key)

    @server.feature(m.DidPartiallyAcceptCompletion.METHOD)
    def did_partially_accept(ls, params) -> None:
        accepted = m.receive(params, m.DidPartiallyAcceptCompletion)
        ls.suggestions.accept(accepted.item.key, "partial", accepted.accepted_length)
        ls.send_status()
