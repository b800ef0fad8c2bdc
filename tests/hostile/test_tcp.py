"""`serve --tcp` and `--socket`: one authenticated editor; browsers and strangers get nothing."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time

import pytest

from hostile_client import SERVE, spawn
from sparkls.server.framing import Frame, Framer, encode

pytestmark = pytest.mark.e2e


class Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.framer = Framer()
        self.pending: list = []

    def send(self, msg: dict) -> None:
        self.sock.sendall(encode(msg))

    def recv(self, timeout: float = 10.0):
        """The next message, or None when the server closed the connection."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.pending += [e.message for e in self.framer.feed(data) if isinstance(e, Frame)]
        return self.pending.pop(0)

    def response(self, msg_id, timeout: float = 10.0):
        while (msg := self.recv(timeout)) is not None:
            if msg.get("id") == msg_id and "method" not in msg:
                return msg
        return None


def initialize(token: str | None, msg_id=1) -> dict:
    options = {"token": token} if token is not None else None
    return {"jsonrpc": "2.0", "id": msg_id, "method": "initialize",
            "params": {"processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": options}}


@pytest.fixture
def tcp_server():
    proc = spawn(SERVE + ["--tcp", "127.0.0.1:0"])
    line = proc.stdout.readline()
    info = json.loads(line)
    yield proc, info
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def connect(info) -> Conn:
    return Conn(socket.create_connection((info["host"], info["port"]), timeout=10))


def test_browser_post_is_refused(tcp_server) -> None:
    """Ensure a browser's cross-site POST carrying LSP frames is closed unanswered and changes nothing."""
    proc, info = tcp_server
    config = encode({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration",
                     "params": {"settings": {"model": {"engine": "remote"}, "remote": {"url": "http://evil.example"}}}})
    lsp = encode(initialize(info["token"])) + config  # even a page that somehow knew the token
    post = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: http://evil.example\r\n"
            b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (info["port"], len(lsp))) + lsp
    c = connect(info)
    c.sock.sendall(post)
    assert c.recv() is None  # closed without an answer
    assert proc.poll() is None
    for header in (b"Host: 127.0.0.1\r\n", b"Origin: null\r\n"):  # an HTTP header alone is enough
        c = connect(info)
        c.sock.sendall(header + encode(initialize(info["token"])))
        assert c.recv() is None
    editor = connect(info)  # the real editor still gets in
    editor.send(initialize(info["token"]))
    assert "capabilities" in editor.response(1)["result"]


def test_token_is_required(tcp_server) -> None:
    """Ensure a connection whose initialize lacks the token (or has a wrong one) is refused."""
    proc, info = tcp_server
    for token in (None, "wrong", info["token"][:-1]):
        c = connect(info)
        c.send(initialize(token))
        reply = c.response(1)
        assert reply is not None and reply["error"]["code"] == -32002
        assert c.recv() is None
    c = connect(info)
    c.send({"jsonrpc": "2.0", "id": 5, "method": "shutdown"})
    assert c.response(5)["error"]["code"] == -32002
    assert proc.poll() is None


def test_second_connection_neither_replaces_nor_ends_the_editor(tcp_server) -> None:
    """Ensure a later connection is closed while the editor keeps being served, and its close ends nothing."""
    proc, info = tcp_server
    editor = connect(info)
    editor.send(initialize(info["token"]))
    assert "result" in editor.response(1)
    intruder = connect(info)
    intruder.send(initialize(info["token"], msg_id=2))
    assert intruder.recv() is None
    intruder.sock.close()
    editor.send({"jsonrpc": "2.0", "id": 3, "method": "sparkls/ping", "params": None})
    assert editor.response(3)["error"]["code"] == -32601
    assert proc.poll() is None
    editor.send({"jsonrpc": "2.0", "id": 4, "method": "shutdown", "params": None})
    assert editor.response(4)["result"] is None
    editor.send({"jsonrpc": "2.0", "method": "exit", "params": None})
    assert proc.wait(10) == 0


def test_non_loopback_bind_needs_a_flag() -> None:
    """Ensure binding a non-loopback address fails without --allow-remote, and warns with it."""
    refused = subprocess.run(SERVE + ["--tcp", "0.0.0.0:0"], capture_output=True, timeout=60, text=True)
    assert refused.returncode != 0 and "--allow-remote" in refused.stderr
    proc = spawn(SERVE + ["--tcp", "0.0.0.0:0", "--allow-remote"])
    try:
        assert json.loads(proc.stdout.readline())["port"] > 0
        deadline = time.monotonic() + 10
        err = b""
        while b"reachable from other machines" not in err and time.monotonic() < deadline:
            err += os.read(proc.stderr.fileno(), 4096)
        assert b"reachable from other machines" in err
    finally:
        proc.kill()
        proc.wait()


def test_unix_socket_is_private(tmp_path) -> None:
    """Ensure --socket creates a mode-0600 socket that serves one editor."""
    path = tmp_path / "sparkls.sock"
    proc = spawn(SERVE + ["--socket", str(path)])
    try:
        assert json.loads(proc.stdout.readline()) == {"socket": str(path)}
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(path))
        c = Conn(s)
        c.send(initialize(None))
        assert "capabilities" in c.response(1)["result"]
        c.send({"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None})
        c.response(2)
        c.send({"jsonrpc": "2.0", "method": "exit", "params": None})
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
