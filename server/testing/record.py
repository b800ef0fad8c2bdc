"""`sparkls record`: a transparent stdio proxy between an editor and a language server that
writes the session as a trace (see trace.py, docs/traces.md).

Bytes are forwarded unchanged, as soon as they are read, by one thread per direction; a third
thread cuts the copies into messages and writes the trace, so tracing never sits on the
forwarding path. Either side may die: when the editor closes our stdin the server's stdin is
closed too (and the server terminated if it does not exit on its own); when the server exits
its last output is forwarded, the trace gets an ``end`` line and is flushed, and the proxy
exits with the server's exit code (128 + signal number if it was killed).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import BinaryIO, Sequence

from sparkls.server.testing import trace

CHUNK = 1 << 16
GRACE = 3.0  # seconds a server may take to exit after the editor went away


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class TraceWriter(threading.Thread):
    """Turns forwarded chunks into trace lines, off the forwarding threads."""

    def __init__(self, out: BinaryIO, command: Sequence[str], redact: bool, t0: float) -> None:
        super().__init__(name="sparkls-record-trace", daemon=True)
        self.out, self.command, self.t0 = out, list(command), t0
        self.redactor = trace.Redactor() if redact else None
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.frames = {"c2s": trace.FrameReader(), "s2c": trace.FrameReader()}
        self.pending: dict[tuple[str, object], str] = {}  # (request's direction, id) -> method
        self.header_written = False
        self.held: list[bytes] = []  # server messages before the client's first one (normally none)

    def chunk(self, direction: str, t: float, data: bytes) -> None:
        self.queue.put((direction, t, data))

    def finish(self, exit_code: int | None, reason: str) -> None:
        self.queue.put(trace.End(round(time.monotonic() - self.t0, 6), exit_code, reason))
        self.queue.put(None)
        self.join(10)

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                break
            if isinstance(item, trace.End):
                self._header({})
                self.out.write(trace.encode(item))
            else:
                direction, t, data = item
                for body in self.frames[direction].feed(data):
                    self._record(trace.to_record(direction, round(t - self.t0, 6), body))
            if self.queue.empty():
                self.out.flush()
        self.out.flush()

    def _header(self, init_params: dict) -> None:
        """The header goes first, filled in from the client's first message if it is ``initialize``."""
        if not self.header_written:
            self.header_written = True
            header = trace.header_from_initialize(init_params, self.command, self.redactor is not None)
            self.out.write(trace.encode(header))
            self.out.writelines(self.held)
            self.held.clear()

    def _record(self, rec: trace.Message | trace.Invalid) -> None:
        if isinstance(rec, trace.Message):
            msg = rec.msg
            method = None
            if rec.is_request:
                self.pending[(rec.dir, _key(rec.id))] = msg["method"]
            elif rec.is_response:
                method = self.pending.pop(("s2c" if rec.dir == "c2s" else "c2s", _key(rec.id)), None)
            if self.redactor is not None:
                msg = self.redactor.message(msg, method)
                rec = trace.Message(rec.dir, rec.t, msg)
            if not self.header_written and msg.get("method") == "initialize":
                self._header(msg.get("params") or {})  # redacted too: its root and settings
        elif self.redactor is not None:  # an invalid frame may hold anything: code, settings, keys
            rec = trace.Invalid(rec.dir, rec.t, self.redactor.raw(rec.raw), rec.error)
        if not self.header_written and rec.dir == "s2c":
            self.held.append(trace.encode(rec))
            return
        self._header({})
        self.out.write(trace.encode(rec))


def _key(msg_id: object) -> object:
    return msg_id if isinstance(msg_id, (int, str)) else repr(msg_id)


def record(
    command: Sequence[str],
    out: BinaryIO,
    redact: bool = False,
    stdin_fd: int = 0,
    stdout_fd: int = 1,
    grace: float = GRACE,
) -> int:
    """Run ``command`` with its stdio proxied to ``stdin_fd``/``stdout_fd``, tracing into ``out``;
    returns the server's exit code. The server's stderr is inherited."""
    t0 = time.monotonic()
    proc = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    writer = TraceWriter(out, command, redact, t0)
    writer.start()
    reason = ["server exited"]

    def client_to_server() -> None:
        server_in = proc.stdin.fileno()
        try:
            while data := os.read(stdin_fd, CHUNK):
                t = time.monotonic()
                _write_all(server_in, data)
                writer.chunk("c2s", t, data)
        except OSError:  # the server's stdin is gone: it died, the main thread sees it
            return
        reason[0] = "client closed the connection"
        _close(proc.stdin)
        _reap_later(proc, grace)

    def server_to_client() -> None:
        server_out = proc.stdout.fileno()
        client_gone = False
        while data := os.read(server_out, CHUNK):
            t = time.monotonic()
            if not client_gone:
                try:
                    _write_all(stdout_fd, data)
                except OSError:  # the editor is gone; keep recording what the server says
                    client_gone = True
                    reason[0] = "client closed the connection"
                    _close(proc.stdin)
                    _reap_later(proc, grace)
            writer.chunk("s2c", t, data)

    threads = [
        threading.Thread(target=client_to_server, name="sparkls-record-c2s", daemon=True),
        threading.Thread(target=server_to_client, name="sparkls-record-s2c", daemon=True),
    ]
    for th in threads:
        th.start()
    previous = _forward_signals(proc)
    try:
        code = proc.wait()
    finally:
        _restore_signals(previous)
    threads[1].join(2.0)  # the server's last words (a grandchild may hold the pipe: bounded)
    code = 128 - code if code < 0 else code
    writer.finish(code, reason[0])
    return code


def _close(f) -> None:
    try:
        f.close()
    except OSError:
        pass


def _reap_later(proc: subprocess.Popen, grace: float) -> None:
    """Terminate, then kill, a server that outlives its editor."""

    def reap() -> None:
        for action in (proc.terminate, proc.kill):
            try:
                proc.wait(grace)
                return
            except subprocess.TimeoutExpired:
                action()
        proc.wait()

    threading.Thread(target=reap, name="sparkls-record-reap", daemon=True).start()


def _forward_signals(proc: subprocess.Popen) -> dict:
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        previous[sig] = signal.signal(sig, lambda s, _f: proc.poll() is None and proc.send_signal(s))
    return previous


def _restore_signals(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def main(out_path: str, command: Sequence[str], redact: bool) -> int:
    if not command:
        command = [sys.executable, "-m", "sparkls.server", "serve"]
    with open(out_path, "wb") as out:
        return record(command, out, redact)
