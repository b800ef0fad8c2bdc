"""An in-process replay leaves nothing running behind it, whether or not the trace shuts the server down."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from sparkls.server.lsp_log import LspLogHandler
from sparkls.server.testing import trace
from sparkls.server.testing.pytest_plugin import assert_replay_ok
from sparkls.server.server import make_server

HERE = Path(__file__).parent
TRACE = HERE / "traces" / "nvim-0.12.jsonl"
ROOT = HERE / "fixtures" / "project"
WORKERS = ("sparkls-decode", "sparkls-io", "ThreadPoolExecutor")


def workers() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith(WORKERS))


def without_shutdown(recording: trace.Trace) -> trace.Trace:
    """The session cut just before the client's ``shutdown``: no shutdown, no exit, no end."""
    cut = next(i for i, r in enumerate(recording.records) if isinstance(r, trace.Message) and r.method == "shutdown")
    return trace.Trace(recording.header, recording.records[:cut])


@pytest.mark.parametrize("cut", [False, True], ids=["whole", "no-shutdown"])
def test_replay_stops_every_worker_thread(sparkls_replay_virtual, cut: bool) -> None:
    """Ensure that after an in-process replay of a real session, with or without `shutdown`, no decode, I/O or pygls
    worker thread is left and the log no longer goes to the replayed client."""
    recording = trace.read(TRACE)
    if cut:
        recording = without_shutdown(recording)
    made = []
    before = workers()
    result = sparkls_replay_virtual(recording, root=ROOT, factory=lambda: made.append(make_server()) or made[-1])
    assert_replay_ok(result)
    assert len(made) == 1 and made[0].counts["requests"] > 0  # completions ran: the decode pool was used
    assert set(workers()) - set(before) == set()
    assert not [h for h in logging.getLogger("sparkls").handlers if isinstance(h, LspLogHandler)]


def test_make_server_builds_independent_servers() -> None:
    """Ensure that each make_server() is a new server with every handler and command, sharing no state with another."""
    import sparkls.server.server as module

    a, b = make_server(), make_server()
    try:
        assert not hasattr(module, "SERVER")  # no process-wide server to reload
        assert set(a.protocol.fm.features) == set(b.protocol.fm.features) >= {"initialize", "textDocument/inlineCompletion"}
        assert list(a.protocol.fm.commands) == list(b.protocol.fm.commands) and "sparkls.accept" in a.protocol.fm.commands
        assert a.documents is not b.documents and a.pool is not b.pool and a.protocol is not b.protocol
    finally:
        a.shutdown()
        b.shutdown()
