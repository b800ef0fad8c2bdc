"""pygls's LSP protocol, adjusted: sparkls owns its document store and picks what to advertise."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from sparkls.server import messages


log = logging.getLogger("sparkls")


class SparklsProtocol(LanguageServerProtocol):
    """Skips pygls's own document bookkeeping (sparkls keeps documents itself, see documents.py),
    trims the advertised completion methods to what the client can use, and answers a request
    whose params do not parse with InvalidParams (pygls would leave the client waiting).

    It also keeps the LSP lifecycle: before ``initialize`` a request is answered
    ServerNotInitialized (-32002) and a notification dropped; a second ``initialize`` and any
    request after ``shutdown`` are InvalidRequest (pygls would re-initialize, or never answer);
    ``exit`` is always obeyed."""

    initialize_seen = False

    def handle_message(self, message):
        method = getattr(message, "method", None)
        refusal = self._refusal(method, claim=True)
        if refusal is not None:
            if hasattr(message, "id"):
                self._send_response(message.id, error=refusal.to_response_error())
            else:
                log.debug("dropped %s: %s", method, refusal.message)
            return
        super().handle_message(message)

    def _refusal(self, method: str | None, claim: bool = False) -> JsonRpcException | None:
        """Why the lifecycle forbids ``method`` now, if it does (``claim``: this is the real initialize)."""
        if method is None or method == types.EXIT:
            return None
        if self._shutdown:
            return JsonRpcInvalidRequest(f"{method}: the server is shutting down (shutdown was received)")
        if not self.initialize_seen:
            if method == types.INITIALIZE:
                self.initialize_seen = claim
                return None
            return JsonRpcServerNotInitialized(f"{method}: the server is not initialized yet")
        if method == types.INITIALIZE:
            return JsonRpcInvalidRequest("initialize: the server is already initialized")
        return None

    def structure_message(self, data: dict):
        if "method" in data and "params" not in data:
            data = {**data, "params": None}  # params may be omitted (JSON-RPC); pygls's fallback types need it
        try:
            return super().structure_message(data)
        except JsonRpcException:
            if not ("id" in data and "method" in data and data.get("jsonrpc") == "2.0"):
                raise
            method = data["method"]
            error = self._refusal(method)
            if error is None:
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
        result.capabilities.experimental = {"sparkls": messages.result(messages.ServerCapabilities())}
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
