"""The LSP face of next edits and of the suggestions' life (docs/protocol.md, "Next edits" and "Feedback").

`textDocument/copilotInlineEdit` and `textDocument/didShowInlineEdit` have the shapes of GitHub
Copilot's language server, so clients written for it (sidekick.nvim, copilot-lsp-nvim, copilot.el)
work unchanged; `textDocument/didShowCompletion` and `textDocument/didPartiallyAcceptCompletion`
too. Params of these non-LSP methods arrive as pygls namedtuples (or dicts, inside a command's
arguments): :func:`field` reads either.
"""

from __future__ import annotations

import itertools
import logging

from pygls.exceptions import JsonRpcInvalidParams

from sparkls.server.documents import PositionError

log = logging.getLogger("sparkls")

INLINE_EDIT = "textDocument/copilotInlineEdit"
DID_SHOW_INLINE_EDIT = "textDocument/didShowInlineEdit"
ACCEPT_INLINE_EDIT = "sparkls.acceptInlineEdit"
DID_SHOW_COMPLETION = "textDocument/didShowCompletion"
DID_PARTIALLY_ACCEPT = "textDocument/didPartiallyAcceptCompletion"

_ids = itertools.count(1)


def field(obj, *path, default=None):
    """``obj.a.b`` for namedtuples, ``obj["a"]["b"]`` for dicts; ``default`` when absent."""
    for name in path:
        if obj is None:
            return default
        if isinstance(obj, dict):
            obj = obj.get(name)
        elif isinstance(obj, (list, tuple)) and isinstance(name, int) and not hasattr(obj, "_fields"):
            obj = obj[name] if -len(obj) <= name < len(obj) else None
        else:
            obj = getattr(obj, name, None)
    return default if obj is None else obj


def item_id(item) -> str | None:
    """The suggestion id an item carries in its command's first argument (``streamId`` or ``id``)."""
    arg = field(item, "command", "arguments", 0)
    return field(arg, "streamId") or field(arg, "id")


def _range(start, end) -> dict:
    return {"start": {"line": start.line, "character": start.character}, "end": {"line": end.line, "character": end.character}}


def inline_edits(ls, params) -> dict:
    """Next edits for the document at the client's version; none when that version is not the server's."""
    uri = field(params, "textDocument", "uri")
    version = field(params, "textDocument", "version")
    line, character = field(params, "position", "line"), field(params, "position", "character")
    if not isinstance(uri, str) or not isinstance(line, int) or not isinstance(character, int):
        raise JsonRpcInvalidParams(f"{INLINE_EDIT} needs textDocument.uri and position")
    doc = ls.documents.get(uri)
    if doc is None:
        log.warning("next edits asked for a document that is not open: %s", uri)
        return {"edits": []}
    if version is not None and version != doc.version:
        return {"edits": []}  # stale: edits computed for another text must never be applied
    try:
        from lsprotocol import types

        cursor = doc.offset_at(types.Position(line, character), ls.encoding)
    except PositionError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    sites = ls.next_edits.suggest(uri, doc.text, doc.version, cursor, doc.language_id)
    edits = []
    for site in sites:
        again = ls.next_edits.offered.get(uri)
        if not edits and again is not None and again[:2] == (doc.version, site):
            sid = again[2]  # asked again for the same text: the same suggestion, not a new one
        else:
            sid = f"e{next(_ids)}"
        edits.append(
            {
                "text": site.new,
                "range": _range(doc.position_at(site.start, ls.encoding), doc.position_at(site.end, ls.encoding)),
                "textDocument": {"uri": uri, "version": doc.version},
                "command": {"title": "sparkls: accept next edit", "command": ACCEPT_INLINE_EDIT, "arguments": [{"id": sid}]},
            }
        )
        if len(edits) == 1 and (again is None or again[2] != sid):  # the one an editor shows; the rest follow
            ls.suggestions.offer(sid, "nextEdit", uri)
            ls.next_edits.offered[uri] = (doc.version, site, sid)
    return {"edits": edits}


def register(server) -> None:
    """Add the handlers to ``server`` (called by server.register)."""

    @server.feature(INLINE_EDIT)
    def copilot_inline_edit(ls, params) -> dict:
        return inline_edits(ls, params)

    @server.feature(DID_SHOW_INLINE_EDIT)
    def did_show_inline_edit(ls, params) -> None:
        ls.suggestions.show(item_id(field(params, "item")) or item_id(params))

    @server.command(ACCEPT_INLINE_EDIT)
    def accept_inline_edit(ls, *args) -> None:
        ls.suggestions.accept(field(args[0] if args else None, "id"), "full")
        ls.send_status()

    @server.feature(DID_SHOW_COMPLETION)
    def did_show_completion(ls, params) -> None:
        ls.suggestions.show(item_id(field(params, "item")))

    @server.feature(DID_PARTIALLY_ACCEPT)
    def did_partially_accept(ls, params) -> None:
        length = field(params, "acceptedLength", default=0)
        ls.suggestions.accept(item_id(field(params, "item")), "partial", length if isinstance(length, int) else 0)
        ls.send_status()
