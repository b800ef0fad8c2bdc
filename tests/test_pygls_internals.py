"""The pygls internals server/protocol.py relies on are those of the pygls it was checked against.

Each entry is a pygls function sparkls overrides, calls or reads private state through, with a
digest of its source in pygls 2.1.1. When pygls changes one of them this test fails and names
it: re-check the matching part of server/protocol.py, then update the digest.
"""

from __future__ import annotations

import hashlib
import inspect
from importlib.metadata import version

import pytest
from pygls.client import JsonRPCClient
from pygls.feature_manager import FeatureManager
from pygls.io_ import run_async
from pygls.protocol import JsonRPCProtocol, LanguageServerProtocol, lsp_method
from pygls.server import JsonRPCServer

from sparkls.server.protocol import SparklsProtocol

CHECKED_WITH = "2.1.1"
# what sparkls relies on → sha256 of its source (first 16 hex digits)
INTERNALS = {
    JsonRPCProtocol.__init__: ("sets _shutdown = False and _request_futures = {}", "5cce12d1c378a085"),
    JsonRPCProtocol._handle_response: ("matches _request_futures, which expect_response fills", "65a45fcee629c61b"),
    JsonRPCProtocol.handle_message: ("SparklsProtocol.handle_message wraps it", "d46f22474082c0cf"),
    JsonRPCProtocol.structure_message: ("SparklsProtocol.structure_message wraps it", "ac66b961a32acb07"),
    JsonRPCProtocol._send_response: ("answers refused requests", "b799bb966ca7ebb1"),
    JsonRPCProtocol._get_handler: ("finds our lsp_* overrides by method name", "ae85700c07339389"),
    lsp_method: ("marks our lsp_* overrides", "c35cfbfed156ebcb"),
    LanguageServerProtocol.lsp_initialize: ("SparklsProtocol.lsp_initialize extends its result", "25d45da16abef004"),
    LanguageServerProtocol.lsp_shutdown: ("sets _shutdown, read by shutdown_received", "86ec7ca1055cb177"),
    LanguageServerProtocol.lsp_exit: ("calls sys.exit: the in-process replay never sends exit", "229d16e062e3b9d4"),
    LanguageServerProtocol.lsp_text_document__did_open: ("replaced: sparkls keeps documents", "6771d1483cdf0338"),
    LanguageServerProtocol.lsp_text_document__did_change: ("replaced: sparkls keeps documents", "81a0591b8fdf9793"),
    LanguageServerProtocol.lsp_text_document__did_close: ("replaced: sparkls keeps documents", "1308de1125767d78"),
    FeatureManager.features.fget: ("SparklsProtocol._user_handler looks handlers up here", "e0976e073fdad8a8"),
    JsonRPCServer.shutdown: ("sets _stop_event, which serve_streams assigns", "2900e9bb22f7f7b1"),
    run_async: ("serve_streams runs it", "f488270939ce916b"),
    JsonRPCClient.start_io: ("sets _server, read by client_process", "bac3d644cdd6a2cb"),
}


def digest(fn) -> str:
    return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]


@pytest.mark.parametrize("fn", list(INTERNALS), ids=[f.__qualname__ for f in INTERNALS])
def test_pygls_internal_unchanged(fn) -> None:
    """Ensure that a pygls function sparkls relies on has the source it was checked against."""
    why, expected = INTERNALS[fn]
    assert digest(fn) == expected, (
        f"pygls {version('pygls')} changed {fn.__module__}.{fn.__qualname__} (checked with {CHECKED_WITH}; "
        f"sparkls: {why}): re-check server/protocol.py"
    )


def test_overrides_replace_pygls_handlers() -> None:
    """Ensure that every lsp_* method SparklsProtocol defines replaces one pygls has (a renamed one would be skipped)."""
    ours = [n for n in vars(SparklsProtocol) if n.startswith("lsp_")]
    assert ours and all(hasattr(LanguageServerProtocol, n) for n in ours), ours
