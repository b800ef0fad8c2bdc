"""A raw LSP client for hostile tests: bytes in, frames out, a server capped in address space.

Every server a hostile test starts runs under ``RLIMIT_AS`` (:data:`AS_LIMIT`), so a regression
that allocates without bound fails the test with a dead server instead of taking the machine.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sparkls.server.framing import Frame, Framer, encode

# Numba/LLVM reserve address space far beyond what they touch; 3 GiB is what the server
# starts with comfortably (tests/hostile/test_framing.py checks it serves under it).
AS_LIMIT = 3 << 30
SERVE = [sys.executable, "-m", "sparkls.server", "serve"]


def cap_address_space(limit: int = AS_LIMIT) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def spawn(args: list[str] | None = None, env: dict | None = None, **kw) -> subprocess.Popen:
    """A sparkls server process under the address-space cap."""
    return subprocess.Popen(
        args or SERVE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})}, preexec_fn=cap_address_space, **kw,
    )


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RawClient:
    """Writes whatever bytes a test wants; a thread cuts the server's output into messages."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.messages: queue.Queue = queue.Queue()
        self.stderr: list[bytes] = []
        self.log: list[str] = []  # window/logMessage texts
        self._ids = iter(range(1, 1 << 30))
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    def _read(self) -> None:
        framer = Framer()
        while data := os.read(self.proc.stdout.fileno(), 1 << 16):
            for event in framer.feed(data):
                if isinstance(event, Frame):
                    msg = event.message
                    if msg.get("method") == "window/logMessage":
                        self.log.append(msg["params"]["message"])
                    self.messages.put(msg)
        self.messages.put(None)

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            del self.stderr[:-500]

    def write(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, msg: dict) -> None:
        self.write(encode(msg))

    def request(self, method: str, params: Any = None, msg_id: Any = None) -> Any:
        msg_id = next(self._ids) if msg_id is None else msg_id
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def response(self, msg_id: Any, timeout: float = 10.0) -> dict:
        """The response to ``msg_id`` (other messages are skipped); AssertionError on timeout or death."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                msg = self.messages.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(f"no response to {msg_id!r} within {timeout}s") from None
            if msg is None:
                raise AssertionError(f"server ended before answering {msg_id!r}: {self.tail()}")
            if msg.get("id") == msg_id and "method" not in msg:
                return msg

    def call(self, method: str, params: Any = None, timeout: float = 10.0) -> dict:
        return self.response(self.request(method, params), timeout)

    def initialize(self, root: Path | None = None, options: dict | None = None, caps: dict | None = None) -> dict:
        params = {
            "processId": None,
            "rootUri": root.as_uri() if root else None,
            "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}] if root else None,
            "capabilities": caps or {"textDocument": {"inlineCompletion": {}}},
            "initializationOptions": options,
        }
        reply = self.call("initialize", params, timeout=60)
        self.notify("initialized", {})
        return reply

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": version, "text": text}})

    def inline(self, uri: str, line: int, character: int, timeout: float = 20.0) -> dict:
        params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 1}}
        return self.call("textDocument/inlineCompletion", params, timeout)

    def alive(self, timeout: float = 10.0) -> bool:
        """The server answers a request (an unknown method: MethodNotFound is an answer)."""
        reply = self.call("sparkls/ping", None, timeout)
        return "error" in reply or "result" in reply

    def wait_log(self, needle: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log + [b.decode("utf-8", "replace") for b in self.stderr]:
                if needle in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no log line with {needle!r}: {self.tail()}")

    def tail(self) -> str:
        return b"".join(self.stderr[-20:]).decode("utf-8", "replace")

    def close(self, timeout: float = 10.0) -> int:
        """shutdown → exit; the exit code (the process is killed if it lingers, and that fails)."""
        if self.proc.poll() is None:
            try:
                self.call("shutdown", None, timeout)
                self.notify("exit")
            except (AssertionError, OSError):
                pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the server outlived exit") from None
        finally:
            for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    f.close()
                except OSError:
                    pass
