"""The pytest plugin's in-process replay on a virtual clock: a streaming server's cadence is
asserted exactly, the stream rules ignore what varies and catch what matters."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.lsp.server import LanguageServer

from sparkls.server.testing import trace
from sparkls.server.testing.replay import Rules
from sparkls.server.testing.pytest_plugin import assert_cadence, assert_replay_ok, stream_schedule

HERE = Path(__file__).parent
URI = "file:///w/a.py"
STEPS_MS = [0.0, 20.0, 40.0, 60.0]  # the emission schedule the fake backend produces
RULES = Rules()
RULES.ignore_paths["initialize"] = {"capabilities", "serverInfo"}  # the recording below is hand-written


def streaming_server(text: str = "return x"):
    """A tiny server streaming `text` in 4 parts, 20 ms apart, as docs/protocol.md describes."""
    server = LanguageServer("fake", "1")

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline(ls: LanguageServer, params: types.InlineCompletionParams):
        loop, t0, rid = asyncio.get_running_loop(), asyncio.get_running_loop().time(), ls.protocol.msg_id

        async def stream():
            for i, ms in enumerate(STEPS_MS):
                await asyncio.sleep(max(0.0, t0 + ms / 1000 - loop.time()))
                ls.protocol.notify("sparkls/inlineCompletionStream", {
                    "streamId": f"s{loop.time()}", "requestId": rid, "uri": URI, "version": 1, "index": 0,
                    "text": text[: 2 * (i + 1)], "done": i == len(STEPS_MS) - 1, "cancelled": False,
                    "backend": "fake", "elapsedMs": round((loop.time() - t0) * 1000, 3)})

        asyncio.ensure_future(stream())
        return types.InlineCompletionList(items=[types.InlineCompletionItem(insert_text=text[:2])])

    return server


def recorded(final: str = "return x") -> trace.Trace:
    def m(d, t, msg):
        return trace.Message(d, t, {"jsonrpc": "2.0", **msg})

    stream = [m("s2c", 1.0 + 0.5 * i, {"method": "sparkls/inlineCompletionStream", "params": {
        "streamId": "recorded", "requestId": 2, "uri": URI, "version": 1, "index": 0, "text": final[: 2 * (i + 1)],
        "done": i == 3, "cancelled": False, "backend": "fake", "elapsedMs": 500.0 * i}}) for i in range(4)]
    return trace.Trace(trace.Header(), [
        m("c2s", 0.0, {"id": 1, "method": "initialize", "params": {"capabilities": {}}}),
        m("s2c", 0.1, {"id": 1, "result": {"capabilities": {}, "serverInfo": {"name": "fake", "version": "0"}}}),
        m("c2s", 0.2, {"method": "initialized", "params": {}}),
        m("c2s", 0.3, {"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": URI, "languageId": "python", "version": 1, "text": "x = 1\n"}}}),
        m("c2s", 0.9, {"id": 2, "method": "textDocument/inlineCompletion", "params": {
            "textDocument": {"uri": URI}, "position": {"line": 1, "character": 0}, "context": {"triggerKind": 2}}}),
        m("s2c", 1.0, {"id": 2, "result": {"items": [{"insertText": "re"}]}}),
        *stream,
        m("c2s", 60.0, {"id": 3, "method": "shutdown"}),  # a minute later: no wall time on a virtual clock
        m("s2c", 60.1, {"id": 3, "result": None}),
    ])


def test_cadence_on_a_virtual_clock(sparkls_replay_virtual) -> None:
    """Ensure that an in-process replay on the virtual clock sees the backend's exact schedule."""
    import time

    t = time.monotonic()
    result = sparkls_replay_virtual(recorded(), timing="recorded", rules=RULES, factory=streaming_server)
    assert time.monotonic() - t < 5  # the recorded minute took no wall time
    assert_replay_ok(result)  # elapsedMs and streamId differ from the recording: ignored by the rules
    assert_cadence(result, 2, STEPS_MS, tolerance_ms=0.01)
    assert [text for _, text in stream_schedule(result, 2)] == ["re", "retu", "return", "return x"]


def test_stream_final_text_is_compared(sparkls_replay_virtual) -> None:
    """Ensure that a stream ending in other text than recorded is a mismatch."""
    result = sparkls_replay_virtual(recorded(), timing="fast", rules=RULES,
                                    factory=lambda: streaming_server("return y"))
    assert [m.what for m in result.mismatches] == ["sparkls/inlineCompletionStream final text of request 2"]
    with pytest.raises(pytest.fail.Exception, match='"text": "return x"'):
        assert_replay_ok(result)


def test_sparkls_in_process(sparkls_replay_virtual) -> None:
    """Ensure that a real-client trace replays against a fresh in-process sparkls on the virtual clock."""
    result = sparkls_replay_virtual(HERE / "traces" / "nvim-0.12.jsonl", root=HERE / "fixtures" / "project")
    assert_replay_ok(result)
    assert result.compared >= 5


def test_replay_root_that_contains_the_recorded_root(sparkls_replay_virtual, tmp_path) -> None:
    """Ensure that a clone whose path contains the recording's path (CI's /check/work/main replaying
    a trace made at /work/main) gets each recorded path rewritten once, not twice."""
    recorded_root = trace.read(HERE / "traces" / "nvim-0.12.jsonl").header.root_uri
    nested = tmp_path / Path(recorded_root.removeprefix("file:///"))
    shutil.copytree(HERE / "fixtures" / "project", nested)
    result = sparkls_replay_virtual(HERE / "traces" / "nvim-0.12.jsonl", root=nested)
    assert_replay_ok(result)
    assert result.compared >= 5
