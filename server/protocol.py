"""Every place sparkls reaches into pygls beyond its public API, in one file.

- :class:`SparklsProtocol` overrides protocol hooks: message handling (the LSP lifecycle,
  unparsable params), ``initialize``'s result, and the document notifications (sparkls keeps
  its own documents).
- :func:`shutdown_received` reads the lifecycle flag pygls keeps private.
- :func:`serve_streams` runs pygls's read loop on in-memory streams (the in-process replay).
- :func:`client_process` is the subprocess behind a pygls client, and :func:`expect_response`
  matches a request the test client wrote by hand (the test client).

tests/test_pygls_internals.py pins the pygls sources these rely on (checked with pygls 2.1.1):
when pygls changes any of them, that test fails and names what to re-check here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from types import SimpleNamespace

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcServerNotInitialized,
)
from pygls.io_ import run_async
from pygls.protocol import JsonRPCProtocol, LanguageServerProtocol
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


def shutdown_received(protocol: LanguageServerProtocol) -> bool:
    """The client sent ``shutdown`` (pygls keeps this private)."""
    return protocol._shutdown


def serve_streams(server, reader: asyncio.StreamReader, writer, stop: threading.Event):
    """A coroutine serving ``server`` on this event loop: frames read from ``reader``, answers
    written to ``writer``, until ``stop`` is set or ``reader`` ends. ``stop`` becomes the
    server's stop event, so ``server.shutdown()`` ends the loop too."""
    server.protocol.set_writer(writer)
    server._stop_event = stop
    return run_async(stop, reader, server.protocol, log, server.report_server_error)


def client_process(client) -> asyncio.subprocess.Process | None:
    """The server process a pygls ``LanguageClient`` started with ``start_io``."""
    return client._server


def expect_response(protocol: JsonRPCProtocol, msg_id: str | int) -> Future:
    """A future that ``protocol`` (a client's) resolves with the response to ``msg_id``, for a
    request written to the wire by hand (pygls only matches responses to requests it sent)."""
    future: Future = Future()
    protocol._request_futures[msg_id] = future
    return future
