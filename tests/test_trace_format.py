"""The trace format: round trips of every message shape, validation, framing, redaction."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkls.server.testing import trace

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
ids = st.integers(0, 2**31) | st.text(min_size=1, max_size=36)
methods = st.sampled_from(["initialize", "textDocument/didOpen", "textDocument/inlineCompletion", "sparkls/inlineCompletionStream", "$/progress"]) | st.text(min_size=1)
requests = st.builds(lambda i, m, p: {"jsonrpc": "2.0", "id": i, "method": m, "params": p}, ids, methods, json_values)
notifications = st.builds(lambda m, p: {"jsonrpc": "2.0", "method": m, "params": p}, methods, json_values)
results = st.builds(lambda i, r: {"jsonrpc": "2.0", "id": i, "result": r}, ids | st.none(), json_values)
errors = st.builds(lambda i, c, s: {"jsonrpc": "2.0", "id": i, "error": {"code": c, "message": s}}, ids | st.none(), st.integers(-32800, -32000), st.text())
messages = st.builds(trace.Message, st.sampled_from(["c2s", "s2c"]), st.floats(0, 1e6), requests | notifications | results | errors)


@settings(max_examples=200, deadline=None)
@given(messages)
def test_message_round_trip(message: trace.Message) -> None:
    """Ensure that every JSON-RPC message shape survives encode → decode unchanged, on one line."""
    line = trace.encode(message)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert trace.decode(line) == message


@settings(max_examples=100, deadline=None)
@given(st.lists(messages, max_size=6), st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_framing_split_anywhere(msgs: list[trace.Message], cuts: list[int]) -> None:
    """Ensure that Content-Length frames are cut back into the same bodies however the bytes are split."""
    wire = b"".join(trace.frame(m.msg) for m in msgs)
    reader, bodies, pos, i = trace.FrameReader(), [], 0, 0
    while pos < len(wire):
        step = cuts[i % len(cuts)]
        bodies += reader.feed(wire[pos : pos + step])
        pos, i = pos + step, i + 1
    assert [msgspec.json.decode(b) for b in bodies] == [m.msg for m in msgs]


def test_whole_trace_round_trip(tmp_path) -> None:
    """Ensure that a header, messages, an invalid frame and the end line read back as written."""
    header = trace.header_from_initialize(
        {"clientInfo": {"name": "Neovim", "version": "0.11.4"}, "capabilities": {"general": {}}, "rootUri": "file:///w",
         "initializationOptions": {"backend": "cerebras-wse3"}}, ["sparkls", "serve"], redacted=False)
    assert (header.client.name, header.backend, header.root_uri) == ("Neovim", "cerebras-wse3", "file:///w")
    t = trace.Trace(header, [trace.Message("c2s", 0.5, {"jsonrpc": "2.0", "id": 1, "method": "shutdown"}),
                             trace.Invalid("c2s", 0.6, "{oops", "not JSON"), trace.End(1.0, 0, "server exited")])
    trace.write(tmp_path / "t.jsonl", t)
    assert trace.read(tmp_path / "t.jsonl") == t


@pytest.mark.parametrize("line, error", [
    (b'{"type":"message","dir":"c2s","t":0,"msg":{"jsonrpc":"2.0","id":1,"method":"x"}}', "first line must be the header"),
    (b'{"type":"header","format":"other"}', "not a sparkls-trace"),
    (b'{"type":"header","version":99}', "newer"),
])
def test_bad_traces_name_the_line(line: bytes, error: str) -> None:
    """Ensure that a trace that is not one fails with the file and line named."""
    with pytest.raises(trace.TraceError, match=error) as info:
        trace.parse([line], "bad.jsonl")
    assert "bad.jsonl:1" in str(info.value)


@pytest.mark.parametrize("msg", [{"id": 1, "method": "x"}, {"jsonrpc": "2.0", "id": 1}, {"jsonrpc": "2.0", "id": 1, "result": 1, "error": {}}])
def test_message_validation(msg: dict) -> None:
    """Ensure that a message that is not JSON-RPC 2.0 is rejected."""
    with pytest.raises(msgspec.ValidationError):
        trace.decode(msgspec.json.encode({"type": "message", "dir": "c2s", "t": 0, "msg": msg}))


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_redaction_keeps_shape(text: str) -> None:
    """Ensure that redacted text has the same UTF-8 and UTF-16 length, line breaks and ASCII punctuation."""
    red = trace.Redactor(b"salt").text(text)
    assert len(red) == len(text)
    assert len(red.encode("utf-8", "surrogatepass")) == len(text.encode("utf-8", "surrogatepass"))
    assert len(red.encode("utf-16-le", "surrogatepass")) == len(text.encode("utf-16-le", "surrogatepass"))
    for a, b in zip(text, red):
        if a in "\r\n\t ()[]{}.,:;=+-*/<>'\"#":
            assert a == b


def test_redaction_replaces_identifiers_consistently() -> None:
    """Ensure that identifiers are replaced (the same way each time), keywords and layout kept."""
    r = trace.Redactor(b"k")
    src = "def handle_delete(request, store):\n    return store.delete(request)  # é\n"
    out = r.text(src)
    assert out.startswith("def ") and "\n    return " in out
    assert "handle_delete" not in out and "request" not in out and "store" not in out
    assert out.count(r.text("request")) == 2 and len(r.text("handle_delete")) == 13


def test_redaction_of_messages() -> None:
    """Ensure that code in documents, edits and completions is redacted, and other text keeps its words."""
    r = trace.Redactor(b"k")
    did_open = {"jsonrpc": "2.0", "method": "textDocument/didOpen",
                "params": {"textDocument": {"uri": "file:///a.py", "languageId": "python", "version": 1, "text": "secret_name = 1\n"}}}
    out = r.message(did_open, None)
    assert "secret_name" not in out["params"]["textDocument"]["text"]
    assert out["params"]["textDocument"]["uri"] == r.scrub("file:///a.py") != "file:///a.py"  # paths too, consistently
    assert out["params"]["textDocument"]["uri"].endswith(".py")
    answer = {"jsonrpc": "2.0", "id": 3, "result": {"items": [{"insertText": {"kind": "snippet", "value": "secret_name"}, "range": {}}]}}
    assert "secret" not in msgspec.json.encode(r.message(answer, "textDocument/inlineCompletion")).decode()
    hover = {"jsonrpc": "2.0", "id": 4, "result": {"contents": "secret_name"}}
    assert r.message(hover, "textDocument/hover") == hover
