"""`sparkls record` is a transparent stdio proxy: bytes unchanged both ways, a trace written,
either side may die."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from sparkls.server.testing import trace

FAKE = r'''
import os, sys, time
mode = sys.argv[1]
out = sys.stdout.buffer
# a greeting whose second frame is split across two writes
first = b'{"jsonrpc":"2.0","method":"hello","params":"\xc3\xa9"}'
second = b'{"jsonrpc":"2.0","method":"again"}'
out.write(b"Content-Length: %d\r\n\r\n%s" % (len(first), first)); out.flush()
wire = b"Content-Length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n%s" % (len(second), second)
out.write(wire[:20]); out.flush(); time.sleep(0.05); out.write(wire[20:]); out.flush()
while data := os.read(0, 7):  # small reads: the proxy must not depend on how we read
    if mode == "die":
        sys.exit(3)
    out.write(data); out.flush()  # echo
if mode == "ignore-eof":
    time.sleep(60)
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
'''


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / "fake_server.py"
    path.write_text(FAKE)
    return path


def proxy(tmp_path, fake, mode: str, *extra: str, env=None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "sparkls.server", "record", "--out", str(tmp_path / "t.jsonl"), *extra,
           "--", sys.executable, str(fake), mode]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, **(env or {})})


def read_exactly(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = os.read(stream.fileno(), n - len(data))
        assert chunk, f"EOF after {data!r}"
        data += chunk
    return data


FIRST = b'{"jsonrpc":"2.0","method":"hello","params":"\xc3\xa9"}'
SECOND = b'{"jsonrpc":"2.0","method":"again"}'
GREETING_LEN = len(frame(FIRST)) + len(frame(SECOND)) + len(b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n")


def test_bytes_forwarded_unchanged_and_traced(tmp_path, fake) -> None:
    """Ensure that bytes pass unchanged both ways, frames split across reads included, and the trace holds every message."""
    p = proxy(tmp_path, fake, "echo", env={"FAKE_EXIT": "0"})
    greeting = read_exactly(p.stdout, GREETING_LEN)
    assert greeting.endswith(b'{"jsonrpc":"2.0","method":"again"}') and "é".encode() in greeting
    req = frame(b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientInfo":{"name":"t\xc3\xa9st"},"capabilities":{}}}')
    note = frame(b'{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"text":"x = 1\\n"}}}')
    p.stdin.write(req[:31]); p.stdin.flush(); time.sleep(0.05)  # a frame split mid-header
    rest = req[31:] + note[:10]
    p.stdin.write(rest); p.stdin.flush(); time.sleep(0.05)
    p.stdin.write(note[10:]); p.stdin.flush()
    assert read_exactly(p.stdout, len(req) + len(note)) == req + note  # echoed back unchanged
    p.stdin.close()
    assert p.wait(10) == 0
    t = trace.read(tmp_path / "t.jsonl")
    assert t.header.client.name == "tést" and t.header.server[-1] == "echo"
    got = [(m.dir, m.msg.get("method"), m.msg.get("id")) for m in t.messages]
    assert sorted(got, key=str) == sorted([("s2c", "hello", None), ("s2c", "again", None), ("c2s", "initialize", 1),
                                           ("c2s", "textDocument/didOpen", None), ("s2c", "initialize", 1),
                                           ("s2c", "textDocument/didOpen", None)], key=str)
    assert t.end.exit == 0 and t.end.reason == "client closed the connection"


def test_server_death_propagates_exit_code(tmp_path, fake) -> None:
    """Ensure that when the server dies the proxy exits with its code and the trace is complete."""
    p = proxy(tmp_path, fake, "die")
    read_exactly(p.stdout, GREETING_LEN)
    p.stdin.write(frame(b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}')); p.stdin.flush()
    assert p.wait(10) == 3
    assert p.stdout.read() == b""
    t = trace.read(tmp_path / "t.jsonl")
    assert t.end.exit == 3 and t.end.reason == "server exited"
    assert [m.msg["method"] for m in t.messages if m.dir == "s2c"] == ["hello", "again"]


def test_server_that_outlives_its_editor_is_terminated(tmp_path, fake) -> None:
    """Ensure that a server ignoring EOF is terminated after the grace period and the signal is reported."""
    code = f"""
import sys
from sparkls.server.testing.record import record
with open({str(tmp_path / 't.jsonl')!r}, 'wb') as out:
    sys.exit(record([sys.executable, {str(fake)!r}, 'ignore-eof'], out, grace=0.3))
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    read_exactly(p.stdout, GREETING_LEN)
    p.stdin.close()  # the editor goes away
    assert p.wait(10) == 128 + 15  # SIGTERM
    assert trace.read(tmp_path / "t.jsonl").end.exit == 143


def test_redacted_trace(tmp_path, fake) -> None:
    """Ensure that --redact keeps code out of the trace but forwards it unchanged."""
    p = proxy(tmp_path, fake, "echo", "--redact")
    read_exactly(p.stdout, GREETING_LEN)
    body = b'{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///a.py","text":"password_value = 42\\n"}}}'
    p.stdin.write(frame(body)); p.stdin.flush()
    assert read_exactly(p.stdout, len(frame(body))) == frame(body)
    p.stdin.close()
    assert p.wait(10) == 0
    t = trace.read(tmp_path / "t.jsonl")
    text = t.messages[-1].msg["params"]["textDocument"]["text"]
    assert t.header.redacted and "password" not in text and len(text) == len("password_value = 42\n")
