"""`sparkls replay`: play a trace's client side against a fresh server and compare what the
server says with what was recorded (the rules are in :class:`Rules` and docs/traces.md).

Causality first, then timing: a client message is sent only once the server has said
everything the recording shows it said before that message (responses, server requests,
compared notifications; at most ``wait`` seconds each), and then after the recorded gap
(``recorded``), the gap capped at ``max_gap`` (``compressed``), or at once (``fast``). So a
replay never races ahead of the server, e.g. asks for a completion before the workspace is
indexed, whatever the timing mode. Requests keep their recorded ids; the server's own requests
(``workspace/configuration``, ``window/workDoneProgress/create`` …) are matched by method and
order and answered with the recorded answers.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence

from sparkls.server.protocol import serve_streams, shutdown_received
from sparkls.server.testing import trace

Timing = Literal["recorded", "compressed", "fast"]
DEFAULT_SERVER = [sys.executable, "-m", "sparkls.server", "serve"]
STREAM = "sparkls/inlineCompletionStream"
log = logging.getLogger("sparkls.replay")


# --- the rule set ------------------------------------------------------------------------


@dataclass
class Rules:
    """What may legitimately differ between a recording and a replay."""

    # Keys dropped wherever they occur, in every compared message.
    ignore_keys: set[str] = field(
        default_factory=lambda: {
            "elapsedMs", "streamId", "ttftMs", "measuredTokensPerSecond", "keptUp", "workDoneToken",
        }
    )
    # Dotted paths dropped per method (in the request's params or the response's result).
    ignore_paths: dict[str, set[str]] = field(
        default_factory=lambda: {
            "initialize": {"serverInfo.version"},
            "$/progress": {"token", "value.message", "value.percentage"},
            "window/workDoneProgress/create": {"token"},
        }
    )
    # Server notifications never compared (and never waited for).
    ignore_methods: set[str] = field(
        default_factory=lambda: {
            "window/logMessage", "window/showMessage", "$/logTrace", "telemetry/event", "sparkls/status",
        }
    )
    # Error responses: only the code is compared (messages name ids, paths, timings).
    error_fields: tuple[str, ...] = ("code",)

    def normalize(self, method: str | None, value: Any) -> Any:
        value = _drop_keys(value, self.ignore_keys)
        for path in self.ignore_paths.get(method or "", ()):
            _drop_path(value, path.split("."))
        return value

    def response(self, method: str | None, msg: dict) -> dict:
        if "error" in msg:
            err = msg["error"] or {}
            return {"error": {k: err.get(k) for k in self.error_fields}}
        return {"result": self.normalize(method, msg.get("result"))}


def _drop_keys(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _drop_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_drop_keys(v, keys) for v in value]
    return value


def _drop_path(value: Any, parts: list[str]) -> None:
    if not isinstance(value, dict) or not parts:
        return
    if len(parts) == 1:
        value.pop(parts[0], None)
    else:
        _drop_path(value.get(parts[0]), parts[1:])


def _rewrite(value: Any, pairs: list[tuple[str, str]]) -> Any:
    """Every string with the recorded root replaced by the replay's, in one pass: the new root may
    contain the old one (a clone at /check/work/main replaying a trace recorded at /work/main)."""
    if isinstance(value, str):
        if not pairs:
            return value
        olds = sorted((old for old, _ in pairs), key=len, reverse=True)
        news = dict(pairs)
        return re.sub("|".join(map(re.escape, olds)), lambda m: news[m.group(0)], value)
    if isinstance(value, dict):
        return {k: _rewrite(v, pairs) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, pairs) for v in value]
    return value


# --- transports --------------------------------------------------------------------------


class Subprocess:
    """The server as a child process over stdio."""

    def __init__(self, command: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.command, self.env, self.cwd = list(command), env, cwd
        self.stderr: list[bytes] = []

    async def start(self) -> asyncio.StreamReader:
        self.proc = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env, cwd=self.cwd,
        )
        self._drain = asyncio.ensure_future(self._read_stderr())
        return self.proc.stdout

    async def _read_stderr(self) -> None:
        while line := await self.proc.stderr.readline():
            self.stderr.append(line)
            del self.stderr[:-200]

    def send(self, msg: dict) -> None:
        if self.proc.stdin.is_closing():
            return
        self.proc.stdin.write(trace.frame(msg))

    async def close(self, timeout: float) -> int | None:
        """Close stdin and wait for the exit code; a server that lingers is killed (None)."""
        if not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            code = await _wall_timeout(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            code = None
        self._drain.cancel()
        return code


class InProcess:
    """A fresh server object in this process and event loop (so it runs on the loop's clock,
    virtual or not). ``factory`` builds the server; the default is sparkls's ``make_server``.
    Closing it stops the server's work and worker threads even when the trace has no
    ``shutdown``."""

    def __init__(self, factory: Callable[[], Any] | None = None) -> None:
        self.factory = factory or _make_sparkls_server
        self.stderr: list[bytes] = []
        self.exit_code: int | None = None

    async def start(self) -> asyncio.StreamReader:
        self.server = self.factory()
        self.to_server, to_client = asyncio.StreamReader(), asyncio.StreamReader()

        class Writer:
            def write(self, data: bytes) -> None:
                to_client.feed_data(data)

            def close(self) -> None:
                to_client.feed_eof()

        self.stop = threading.Event()
        self.task = asyncio.ensure_future(serve_streams(self.server, self.to_server, Writer(), self.stop))
        self.to_client = to_client
        return to_client

    def send(self, msg: dict) -> None:
        if msg.get("method") == "exit":  # pygls's exit calls sys.exit: end the session here instead
            self.exit_code = 0 if shutdown_received(self.server.protocol) else 1
            self.to_server.feed_eof()
            self.to_client.feed_eof()
            return
        self.to_server.feed_data(trace.frame(msg))

    async def close(self, timeout: float) -> int | None:
        if not self.to_server.at_eof():
            self.to_server.feed_eof()
        self.stop.set()
        try:
            await _wall_timeout(asyncio.shield(self.task), timeout)
        except TimeoutError:
            self.task.cancel()
        if not self.to_client.at_eof():
            self.to_client.feed_eof()
        self.server.shutdown()  # pygls's; sparkls's also stops its tasks, streams and pools
        return self.exit_code


def _make_sparkls_server():
    from sparkls.server.server import make_server

    return make_server()


async def _wall_timeout(aw, timeout: float):
    """``asyncio.wait_for`` measured in wall time: on a virtual clock, loop timers jump ahead
    whenever the loop would wait, so a loop-time timeout would fire at once."""
    loop = asyncio.get_running_loop()
    fut = asyncio.ensure_future(aw)
    timer = threading.Timer(timeout, lambda: loop.call_soon_threadsafe(lambda: fut.done() or fut.cancel()))
    timer.daemon = True
    timer.start()
    try:
        return await fut
    except asyncio.CancelledError:
        if asyncio.current_task().cancelling():
            raise
        raise TimeoutError from None
    finally:
        timer.cancel()


# --- results -----------------------------------------------------------------------------


@dataclass
class Mismatch:
    what: str  # e.g. "response to textDocument/inlineCompletion (id 3)"
    expected: Any
    actual: Any

    def diff(self) -> str:
        a = _pretty(self.expected).splitlines()
        b = _pretty(self.actual).splitlines()
        body = "\n".join(difflib.unified_diff(a, b, "recorded", "replayed", lineterm="", n=3))
        return f"✗ {self.what}\n{body}"


def _pretty(value: Any) -> str:
    if value is MISSING:
        return "<nothing>"
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


MISSING = type("Missing", (), {"__repr__": lambda self: "<nothing>"})()


@dataclass
class Received:
    t: float  # seconds since the replay started, on the loop's clock
    msg: dict


@dataclass
class Result:
    mismatches: list[Mismatch] = field(default_factory=list)
    compared: int = 0
    received: list[Received] = field(default_factory=list)  # everything the server sent, in order
    sent: list[Received] = field(default_factory=list)  # everything sent to the server
    exit_code: int | None = None
    stderr: list[bytes] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def responses(self) -> dict[Any, dict]:
        return {r.msg["id"]: r.msg for r in self.received if "method" not in r.msg and "id" in r.msg}

    def notifications(self, method: str) -> list[Received]:
        return [r for r in self.received if r.msg.get("method") == method and "id" not in r.msg]

    def streams(self) -> dict[Any, list[dict]]:
        """``sparkls/inlineCompletionStream`` params by requestId, in arrival order."""
        out: dict[Any, list[dict]] = {}
        for r in self.notifications(STREAM):
            out.setdefault(_key(r.msg["params"].get("requestId")), []).append(r.msg["params"])
        return out

    def report(self, verbose: bool = True) -> str:
        lines = [m.diff() for m in self.mismatches]
        if verbose or self.mismatches:
            verdict = "OK" if self.ok else f"{len(self.mismatches)} mismatch(es)"
            lines.append(f"replay: {self.compared} compared, {verdict}; server exit code {self.exit_code}")
        return "\n".join(lines)


def _key(x: Any) -> Any:
    return x if isinstance(x, (int, str)) or x is None else json.dumps(x, sort_keys=True)


# --- the replay --------------------------------------------------------------------------


class Replayer:
    def __init__(
        self,
        recording: trace.Trace,
        transport,
        timing: Timing = "recorded",
        root: str | Path | None = None,
        rules: Rules | None = None,
        wait: float = 10.0,
        max_gap: float = 0.2,
    ) -> None:
        self.trace, self.transport, self.timing = recording, transport, timing
        self.rules, self.wait, self.max_gap = rules or Rules(), wait, max_gap
        self.pairs: list[tuple[str, str]] = []
        old = recording.header.root_uri
        if root is not None and old:
            new = Path(root).resolve().as_uri()
            from pygls.uris import to_fs_path

            self.pairs = [(old, new), (to_fs_path(old) or old, str(Path(root).resolve()))]
        msgs = sorted(recording.messages, key=lambda m: m.t)  # lines follow the proxy's threads
        self.msgs = [trace.Message(m.dir, m.t, _rewrite(m.msg, self.pairs)) for m in msgs]
        self.result = Result()
        self.events: dict[Any, asyncio.Future] = {}  # expected server events by key
        self.counters: dict[Any, int] = {}
        self.got_by_key: dict[Any, dict] = {}
        self.methods = {_key(m.id): m.method for m in self.msgs if m.dir == "c2s" and m.is_request}
        self._plan()

    # Each recorded server message gets a key; the replayed one with the same key is its counterpart.
    def _event_key(self, msg: dict, methods: dict, counters: dict, tokens: dict) -> Any:
        method = msg.get("method")
        if method is None:
            return ("response", _key(msg.get("id")))
        if "id" in msg:
            n = counters[("request", method)] = counters.get(("request", method), -1) + 1
            return ("request", method, n)
        if method in self.rules.ignore_methods:
            return None
        params = msg.get("params") or {}
        if method == "$/progress":
            kind = (params.get("value") or {}).get("kind")
            if kind not in ("begin", "end"):
                return None  # how many reports depends on timing
            tok = tokens.setdefault(_key(params.get("token")), len(tokens))
            return ("progress", tok, kind)
        if method == STREAM:
            return ("stream", _key(params.get("requestId"))) if params.get("done") else None
        n = counters[("notify", method)] = counters.get(("notify", method), -1) + 1
        return ("notify", method, n)

    def _plan(self) -> None:
        counters, tokens = {}, {}
        self.expected: dict[Any, trace.Message] = {}
        self.before: list[list[Any]] = []  # per client message: the server events recorded before it
        self.answers: dict[tuple, dict] = {}  # recorded client answers to server requests, by event key
        s2c_req_key: dict[Any, Any] = {}
        pending: list[Any] = []
        self.plan: list[trace.Message] = []
        for m in self.msgs:
            if m.dir == "s2c":
                key = self._event_key(m.msg, self.methods, counters, tokens)
                if m.is_request:
                    s2c_req_key[_key(m.id)] = key
                if key is not None and key not in self.expected:
                    self.expected[key] = m
                    pending.append(key)
            elif m.is_response:  # the client's answer to a server request: sent when asked
                key = s2c_req_key.get(_key(m.id))
                if key is not None:
                    self.answers[key] = m.msg
            else:
                self.plan.append(m)
                self.before.append(pending)
                pending = []
        self.tail = pending

    def _future(self, key: Any) -> asyncio.Future:
        if key not in self.events:
            self.events[key] = asyncio.get_running_loop().create_future()
        return self.events[key]

    async def run(self) -> Result:
        loop = asyncio.get_running_loop()
        self.t0 = loop.time()
        stdout = await self.transport.start()
        self.counters, self.tokens = {}, {}
        reader = asyncio.ensure_future(self._read(stdout))
        prev_t, prev_sent, exited = None, None, False
        try:
            for m, before in zip(self.plan, self.before):
                await self._await_events(before)
                if prev_t is not None and self.timing != "fast":
                    gap = m.t - prev_t
                    if self.timing == "compressed":
                        gap = min(gap, self.max_gap)
                    delay = prev_sent + gap - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                msg = dict(m.msg)
                if msg.get("method") == "initialize" and isinstance(msg.get("params"), dict):
                    msg["params"] = {**msg["params"], "processId": os.getpid()}
                self.transport.send(msg)
                self.result.sent.append(Received(loop.time() - self.t0, msg))
                prev_t, prev_sent = m.t, loop.time()
                exited = msg.get("method") == "exit"
            await self._await_events(self.tail)
        finally:
            code = await self.transport.close(self.wait if exited else 2.0)
            reader.cancel()
        self.result.exit_code = code
        self.result.stderr = list(self.transport.stderr)
        end = self.trace.end
        if exited and end is not None and end.exit is not None and code != end.exit:
            self.result.mismatches.append(Mismatch("server exit code", end.exit, code))
        self._compare()
        return self.result

    async def _await_events(self, keys: Iterable[Any]) -> None:
        for key in keys:
            fut = self._future(key)
            if not fut.done():
                try:
                    await _wall_timeout(asyncio.shield(fut), self.wait)
                except TimeoutError:
                    log.warning("replay: gave up waiting for %s after %.0fs", key, self.wait)

    async def _read(self, stdout: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        frames = trace.FrameReader()
        while data := await stdout.read(1 << 16):
            for body in frames.feed(data):
                rec = trace.to_record("s2c", loop.time() - self.t0, body)
                if isinstance(rec, trace.Message):
                    self._on_message(rec.msg, rec.t)

    def _on_message(self, msg: dict, t: float) -> None:
        self.result.received.append(Received(t, msg))
        key = self._event_key(msg, self.methods, self.counters, self.tokens)
        if "method" in msg and "id" in msg:  # a server request: answer as the client did
            answer = self.answers.get(key)
            reply = {"jsonrpc": "2.0", "id": msg["id"]}
            if answer is None:
                reply["error"] = {"code": -32601, "message": "not in the recording"}
            else:
                reply.update({k: v for k, v in answer.items() if k in ("result", "error")})
            self.transport.send(reply)
        if key is None:
            return
        if key in self.got_by_key:
            key = ("extra", key, len(self.got_by_key))
        self.got_by_key[key] = msg
        fut = self._future(key)
        if not fut.done():
            fut.set_result(msg)

    def _compare(self) -> None:
        rules, res = self.rules, self.result
        for key, rec in self.expected.items():
            got = self.got_by_key.get(key, MISSING)
            method, what = self._describe(key, rec.msg)
            res.compared += 1
            if key[0] == "response":
                exp = rules.response(method, rec.msg)
                act = MISSING if got is MISSING else rules.response(method, got)
            elif key[0] == "stream":
                exp, act = _stream_final(rec.msg, rules), MISSING if got is MISSING else _stream_final(got, rules)
            else:
                exp = rules.normalize(method, rec.msg.get("params"))
                act = MISSING if got is MISSING else rules.normalize(method, got.get("params"))
            if exp != act:
                res.mismatches.append(Mismatch(what, exp, act))
        for key, msg in self.got_by_key.items():
            if key not in self.expected:
                method, what = self._describe(key[1] if key[0] == "extra" else key, msg)
                res.mismatches.append(Mismatch(f"unexpected {what}", MISSING, msg))

    def _describe(self, key: Any, msg: dict) -> tuple[str | None, str]:
        if key[0] == "response":
            method = self.methods.get(key[1])
            return method, f"response to {method} (id {key[1]!r})"
        if key[0] == "stream":
            return STREAM, f"{STREAM} final text of request {key[1]!r}"
        if key[0] == "progress":
            return "$/progress", f"$/progress {key[2]} (token #{key[1]})"
        return key[1], f"{'server request' if key[0] == 'request' else 'notification'} {key[1]} #{key[2] + 1}"


def _stream_final(msg: dict, rules: Rules) -> Any:
    params = rules.normalize(STREAM, msg.get("params") or {})
    if params.get("cancelled"):  # how far a cancelled stream got depends on timing
        params = {k: v for k, v in params.items() if k not in ("text",)}
    return params


async def replay(
    recording: trace.Trace | str | Path,
    server: Sequence[str] | None = None,
    *,
    timing: Timing = "recorded",
    root: str | Path | None = None,
    rules: Rules | None = None,
    transport=None,
    env: dict[str, str] | None = None,
    wait: float = 10.0,
) -> Result:
    """Replay ``recording`` against ``transport`` (default: ``server`` as a subprocess)."""
    if not isinstance(recording, trace.Trace):
        recording = trace.read(recording)
    transport = transport or Subprocess(server or DEFAULT_SERVER, env=env)
    return await Replayer(recording, transport, timing, root, rules, wait).run()


def main(path: str, server: Sequence[str], timing: Timing, root: str | None, quiet: bool) -> int:
    try:
        recording = trace.read(path)
    except (OSError, trace.TraceError) as exc:
        print(f"sparkls replay: {exc}", file=sys.stderr)
        return 2
    result = asyncio.run(replay(recording, list(server) or None, timing=timing, root=root))
    print(result.report(verbose=not quiet))
    return 0 if result.ok else 1
