"""Bad frames and lifecycle violations get the LSP-specified answer, and the server keeps serving."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hostile_client import RawClient, spawn

pytestmark = pytest.mark.e2e


@pytest.fixture
def client():
    c = RawClient(spawn())
    yield c
    assert c.close() in (0, 1)


@pytest.fixture(scope="module")
def ready():
    """One initialized server shared by the tests that must leave it serving (each checks it still does)."""
    c = RawClient(spawn())
    c.initialize()
    yield c
    assert c.close() == 0


def frame(body: bytes, header: bytes = b"Content-Length") -> bytes:
    return header + b": %d\r\n\r\n" % len(body) + body


def body_of(method: str, msg_id) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method}).encode()


def test_lower_case_header_is_accepted(ready) -> None:
    """Ensure a lower-case Content-Length header is read (header names are case-insensitive)."""
    ready.write(frame(body_of("sparkls/ping", "lc"), b"content-length"))
    assert ready.response("lc")["error"]["code"] == -32601


@pytest.mark.parametrize("delta", [-7, -1, +1, +9])
def test_wrong_content_length_resynchronises(ready, delta) -> None:
    """Ensure a frame whose Content-Length is off leaves the following requests answered."""
    body = body_of("sparkls/ping", "bad")
    ready.write(b"Content-Length: %d\r\n\r\n" % (len(body) + delta) + body)
    for i in range(20):
        ready.write(frame(body_of("sparkls/ping", f"next-{i}")))
    for i in range(20):
        assert "error" in ready.response(f"next-{i}")


def test_huge_content_length_is_refused(ready) -> None:
    """Ensure Content-Length: 10**12 is answered InvalidRequest and does not kill the server."""
    ready.write(b"Content-Length: 1000000000000\r\n\r\n" + body_of("sparkls/ping", "huge"))
    assert ready.response("huge")["error"]["code"] == -32600
    assert ready.alive()


def test_unparseable_body_gets_parse_error(ready) -> None:
    """Ensure a body that is not JSON is answered -32700 with a null id."""
    ready.write(frame(b"{this is not json"))
    reply = ready.response(None)
    assert reply["error"]["code"] == -32700
    ready.write(frame(b"[" * 100_000))  # nesting deep enough to overflow a recursive parser
    assert ready.response(None)["error"]["code"] == -32700
    ready.write(frame(b'{"jsonrpc": "2.0", "id": 7, "method": 5}'))
    assert ready.response(7)["error"]["code"] == -32600
    assert ready.alive()


def test_requests_before_initialize_get_server_not_initialized(client) -> None:
    """Ensure requests before initialize are answered -32002 and notifications dropped."""
    client.notify("textDocument/didOpen", {"textDocument": {"uri": "file:///x.py", "languageId": "python", "version": 1, "text": "x"}})
    reply = client.call("textDocument/inlineCompletion", {
        "textDocument": {"uri": "file:///x.py"}, "position": {"line": 0, "character": 1}, "context": {"triggerKind": 1}})
    assert reply["error"]["code"] == -32002
    assert client.call("shutdown")["error"]["code"] == -32002
    assert "capabilities" in client.initialize()["result"]


def test_second_initialize_is_rejected(ready) -> None:
    """Ensure a second initialize is InvalidRequest and does not re-initialize."""
    reply = ready.call("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    assert reply["error"]["code"] == -32600


def test_requests_after_shutdown_are_invalid(client) -> None:
    """Ensure requests after shutdown get InvalidRequest and exit still ends the process with 0."""
    client.initialize()
    assert client.call("shutdown")["result"] is None
    assert client.call("sparkls/ping")["error"]["code"] == -32600
    assert client.call("textDocument/completion", {})["error"]["code"] == -32600
    client.notify("exit")
    assert client.proc.wait(10) == 0


# -- fuzzing: whatever arrives, a well-formed request afterwards is answered ---------------------

GOOD = [body_of("sparkls/ping", "fz"), b'{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":1}}']
_chunks = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"\r\n", b"\r\n\r\n", b"Content-Length: ", b"content-length:3\r\n\r\n", b"Content-Type: x\r\n",
                     b"Content-Length: 99999999999999\r\n\r\n", b"{", b"}", b'"', b"\\"]),
    st.builds(lambda b, d: b"Content-Length: %d\r\n\r\n" % max(0, len(b) + d) + b, st.sampled_from(GOOD), st.integers(-20, 20)),
    st.builds(lambda n: b'{"jsonrpc":"2.0","id":1,"method":"x","params":' + b"[" * n, st.integers(0, 3000)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_chunks, max_size=8))
def test_fuzzed_frames_never_deafen_the_server(ready, chunks) -> None:
    """Ensure random frames and garbage leave the server answering the next well-formed request."""
    c = ready
    for chunk in chunks:
        c.write(chunk)
    # Up to two requests may go to resynchronising after an unfinished header or body.
    marker = f"alive-{id(chunks)}"
    for attempt in range(3):
        c.write(frame(body_of("sparkls/ping", f"{marker}-{attempt}")))
    answered = 0
    for attempt in range(3):
        try:
            c.response(f"{marker}-{attempt}", timeout=5 if attempt == 2 else 2)
            answered += 1
        except AssertionError:
            pass
    assert answered >= 1 and c.proc.poll() is None, c.tail()
