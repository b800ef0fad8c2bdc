"""pygls's LSP protocol, adjusted: sparkls owns its document store and picks what to advertise."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method


log = logging.getLogger("sparkls")


class SparklsProtocol(LanguageServerProtocol):
    """Skips pygls's own document bookkeeping (sparkls keeps documents itself, see documents.py),
    trims the advertised completion methods to what the client can use, and answers a request
    whose params do not parse with InvalidParams (pygls would leave the client waiting)."""

    def structure_message(self, data: dict):
        try:
            return super().structure_message(data)
        except JsonRpcException:
            if not ("id" in data and "method" in data and data.get("jsonrpc") == "2.0"):
                raise
            method = data["method"]
            log.warning("invalid params for %s (request %r)", method, data["id"])
            error = JsonRpcInvalidParams(f"invalid params for {method}: they do not match the LSP schema")
            self._send_response(data["id"], error=error.to_response_error())
            return SimpleNamespace(jsonrpc="answered")  # handle_message drops it

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        result = yield from super().lsp_initialize(params)
        inline, completion = self._server.advertised(params.capabilities)
        if not inline:
            result.capabilities.inline_completion_provider = None
        if not completion:
            result.capabilities.completion_provider = None
        # Streamed ghost text (docs/protocol.md) is offered to every client; it is used only
        # by those that opt in through their own experimental capability.
        result.capabilities.experimental = {"sparkls": {"inlineCompletionStream": True, "inlineEdit": True}}
        engine = getattr(self._server, "engine_label", "?")
        result.server_info = types.ServerInfo(name="sparkls", version=f"{self._server.version} (engine: {engine})")
        return result

    def _user_handler(self, method: str, params):
        if (handler := self.fm.features.get(method)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        yield from self._user_handler(types.TEXT_DOCUMENT_DID_CLOSE, params)
