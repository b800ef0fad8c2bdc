"""The remote backend's failure handling and stream reading, against loopback fault injectors.

The real-engine tests (llama.cpp's server) are in test_remote_engine.py; here tiny stdlib
servers on 127.0.0.1 misbehave on purpose: refuse, accept and never answer, stall mid-stream,
drop the connection, send an error event or garbage. Every failure must end the stream with a
RemoteError of the right kind, quickly, after the text already received.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from sparkls.backends.remote import RemoteBackend, request_of, timeline_of
from sparkls.decode.remote.remote_engine import (
    Measurement,
    RemoteConfig,
    RemoteEngine,
    RemoteError,
    prompt_of,
    stream_completion,
)
from sparkls.decode.remote.sse import Event, events
from sparkls.decode.engine import CompletionContext
from sparkls.plugins.api import Request, check_timeline
from sparkls.plugins.api import load_model


@contextmanager
def loopback(handler):
    """A one-connection-at-a-time TCP server on 127.0.0.1 running ``handler(conn)`` per client."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve():
        srv.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            conns.append(conn)
            threading.Thread(target=_run, args=(handler, conn), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join(2)
        srv.close()
        for c in conns:
            c.close()


def _run(handler, conn):
    try:
        handler(conn)
    except OSError:
        pass


def read_request(conn: socket.socket) -> tuple[dict, str]:
    """Read one HTTP request (headers and a Content-Length body): its JSON body and its head."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
    while len(body) < length:
        body += conn.recv(65536)
    return json.loads(body), head.decode()


SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def sse(text: str, finish: str | None = None) -> bytes:
    doc = {"id": "x", "object": "text_completion", "model": "m",
           "choices": [{"index": 0, "text": text, "finish_reason": finish}]}
    return f"data: {json.dumps(doc)}\n\n".encode()


def config(url: str, **kw) -> RemoteConfig:
    return RemoteConfig.from_settings(dict(url=url, model="m", **kw))


def ctx_at(prefix: str, suffix: str = "", max_tokens: int = 16) -> CompletionContext:
    return CompletionContext(prefix=prefix, suffix=suffix, max_tokens=max_tokens)


# -- settings --------------------------------------------------------------------------------


def test_settings_never_hold_the_key_and_name_its_variable(monkeypatch):
    """Ensure a key in the settings is refused and a missing key variable is a clear config error."""
    with pytest.raises(RemoteError, match="api_key_env") as e:
        RemoteConfig.from_settings(dict(url="http://127.0.0.1:1", model="m", api_key="sk-123"))
    assert e.value.kind == "config" and "sk-123" not in str(e.value)
    with pytest.raises(RemoteError, match="http") as e:
        RemoteConfig.from_settings(dict(url="ftp://x", model="m"))
    with pytest.raises(RemoteError, match="connect_timeout_s"):
        RemoteConfig.from_settings(dict(url="http://127.0.0.1:1", model="m", connect_timeout_s=0))
    monkeypatch.delenv("SPARKLS_TEST_KEY", raising=False)
    cfg = config("http://127.0.0.1:1", api_key_env="SPARKLS_TEST_KEY")
    with pytest.raises(RemoteError, match="SPARKLS_TEST_KEY") as e:
        list(stream_completion(cfg, "x", 4))
    assert e.value.kind == "config"


@pytest.mark.parametrize("url, endpoint", [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/completions"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1/completions"),
    ("https://api.example.com/v1", "https://api.example.com/v1/completions"),
    ("http://h:1/v1/completions", "http://h:1/v1/completions"),
])
def test_endpoint_from_url(url, endpoint):
    """Ensure a base URL, a /v1 URL or the full completions URL all reach /v1/completions."""
    assert config(url).endpoint == endpoint


def test_sse_parser_follows_the_format():
    """Ensure comments are skipped, multi-line data joins, CRLF and a missing final blank line work."""
    lines = [b": keep-alive\r\n", b"event: x\r\n", b"data: a\r\n", b"data:b\r\n", b"\r\n", b"\n", b"data: [DONE]"]
    assert list(events(lines)) == [Event("a\nb", "x"), Event("[DONE]")]


def test_prompt_is_the_prefix_tail_from_a_line_start():
    """Ensure a long prefix is cut to the budget at a line start, and a short one is sent whole."""
    prefix = "".join(f"line {i}\n" for i in range(100)) + "x = "
    p = prompt_of(ctx_at(prefix), 40)
    assert len(p) <= 40 and p.endswith("x = ") and prefix.endswith(p) and p.startswith("line ")
    assert prompt_of(ctx_at("short"), 40) == "short"


# -- failures --------------------------------------------------------------------------------


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_connection_refused_is_a_connect_error():
    """Ensure nothing listening ends the stream at once with kind 'connect' and says so."""
    engine = RemoteEngine(dict(url=f"http://127.0.0.1:{free_port()}", model="m"))
    t = time.perf_counter()
    with pytest.raises(RemoteError, match="refused") as e:
        list(engine.complete(ctx_at("x = "), lambda: False))
    assert e.value.kind == "connect" and time.perf_counter() - t < 2
    assert engine.last.error is e.value and engine.last.tokens == 0


def test_server_that_never_answers_times_out():
    """Ensure an engine that accepts but never answers ends the stream after the first-token timeout."""
    def silent(conn):
        read_request(conn)
        time.sleep(5)

    with loopback(silent) as url:
        engine = RemoteEngine(dict(url=url, model="m", first_token_timeout_s=0.3))
        t = time.perf_counter()
        with pytest.raises(RemoteError, match="timed out waiting for the first token") as e:
            list(engine.complete(ctx_at("x = "), lambda: False))
        assert e.value.kind == "timeout" and 0.25 < time.perf_counter() - t < 2


def test_stall_mid_stream_times_out_after_the_tokens_received():
    """Ensure a stall between tokens ends the stream with the text so far already yielded."""
    def stall(conn):
        read_request(conn)
        conn.sendall(SSE_HEAD + sse("foo") + sse("bar"))
        time.sleep(5)

    with loopback(stall) as url:
        engine = RemoteEngine(dict(url=url, model="m", read_timeout_s=0.3))
        got = []
        with pytest.raises(RemoteError, match="next token") as e:
            for text in engine.complete(ctx_at("x = "), lambda: False):
                got.append(text)
        assert e.value.kind == "timeout" and got == ["foo", "foobar"]
        assert engine.last.tokens == 2 and engine.last.ttft_s is not None


def test_dropped_connection_is_reported():
    """Ensure a connection closed before [DONE] and without a finish reason is an error."""
    def drop(conn):
        read_request(conn)
        conn.sendall(SSE_HEAD + sse("foo"))
        conn.shutdown(socket.SHUT_RDWR)

    with loopback(drop) as url:
        with pytest.raises(RemoteError, match="closed mid-stream") as e:
            list(RemoteEngine(dict(url=url, model="m")).complete(ctx_at("x = "), lambda: False))
        assert e.value.kind == "connection"


@pytest.mark.parametrize("reply, kind, match", [
    (b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 45\r\n\r\n"
     b'{"error": {"message": "invalid api key xyz"}}', "http", "HTTP 401 Unauthorized: invalid api key"),
    (SSE_HEAD + sse("a") + b'data: {"error": {"message": "overloaded"}}\n\n', "stream", "engine error: overloaded"),
    (SSE_HEAD + b"data: {not json\n\n", "protocol", "not JSON"),
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello", "protocol", "text/html"),
])
def test_bad_answers_are_clear_errors(reply, kind, match):
    """Ensure HTTP errors, error events and non-SSE answers each end the stream with a clear kind."""
    def answer(conn):
        read_request(conn)
        conn.sendall(reply)
        conn.shutdown(socket.SHUT_WR)

    with loopback(answer) as url:
        with pytest.raises(RemoteError, match=match) as e:
            list(stream_completion(config(url), "x", 4))
        assert e.value.kind == kind
        if kind == "http":
            assert e.value.status == 401


# -- a well-behaved stream -------------------------------------------------------------------


def test_engine_sends_the_request_applies_stop_rules_and_measures(monkeypatch):
    """Ensure the request carries model, prompt, budget, stop and the key; the stop rules cut the
    text and end reading early; the measurement has one time per token."""
    seen = {}

    def stream(conn):
        body, seen["head"] = read_request(conn)
        seen.update(body)
        conn.sendall(SSE_HEAD)
        for piece in ["quantity", ")", ")\n", "    more", "\n"]:
            conn.sendall(sse(piece))
            time.sleep(0.01)
        conn.sendall(sse("", "stop") + b"data: [DONE]\n\n")

    monkeypatch.setenv("SPARKLS_TEST_KEY", "sk-test")
    with loopback(stream) as url:
        measured: list[Measurement] = []
        engine = RemoteEngine(dict(url=url, model="m", api_key_env="SPARKLS_TEST_KEY"), on_measure=measured.append)
        out = list(engine.complete(ctx_at("log.append((name, ", "))\n"), lambda: False))
    assert out == ["quantity"]  # the "))" already after the cursor are not repeated, and end the line
    assert seen["model"] == "m" and seen["prompt"] == "log.append((name, " and seen["stream"] is True
    assert seen["max_tokens"] == 16 and seen["stop"] == ["\n"]
    assert "Authorization: Bearer sk-test" in seen["head"]
    m = measured[0]
    assert m is engine.last and m.tokens == 2 and m.error is None  # reading stopped at the cut
    assert m.ttft_s > 0 and len(m.gaps_s) == 1 and m.gaps_s[0] > 0.005
    tl = timeline_of(m)
    assert tl.as_produced and tl.ttft_s == m.ttft_s
    req = request_of(m, load_model("smollm2-135m"))
    assert req.new_tokens == 2 and req.prompt_tokens >= 1


def test_cancel_closes_the_stream():
    """Ensure cancelled() stops reading within one token and closes the connection."""
    closed = threading.Event()

    def endless(conn):
        read_request(conn)
        conn.sendall(SSE_HEAD)
        try:
            for i in range(1000):
                conn.sendall(sse(f"t{i} "))
                time.sleep(0.005)
        except OSError:
            closed.set()

    with loopback(endless) as url:
        engine = RemoteEngine(dict(url=url, model="m"))
        got = []
        for text in engine.complete(ctx_at("x = "), lambda: len(got) >= 3):
            got.append(text)
        assert len(got) == 3 and engine.last.cancelled and engine.last.error is None
        assert closed.wait(3)


def test_registry_entry_is_as_produced_and_follows_measurements():
    """Ensure `remote` is a registered backend whose timeline is as produced and follows update()."""
    from sparkls.plugins.registry import Host

    h = Host(autoload=False)
    assert h.entries["remote"].available and h.entries["remote"].dist.startswith("sparkls ")
    assert h.names()[0] == "local"
    backend = h.get("remote")
    req = Request(model=load_model("smollm2-135m"), prompt_tokens=100, new_tokens=8)
    tl = check_timeline(backend.timeline(req), req)
    assert tl.as_produced and tl.backend == "remote"
    m = Measurement("e", "m", token_times=[0.5, 0.6, 0.7])
    fresh = RemoteBackend()
    fresh.update(m)
    tl = fresh.timeline(req)
    assert tl.ttft_s == pytest.approx(0.5) and tl.tokens_per_s == pytest.approx(10)


def test_total_timeout_caps_a_slow_stream():
    """Ensure a stream that keeps trickling tokens is cut at the total timeout, and says so."""
    def trickle(conn):
        read_request(conn)
        conn.sendall(SSE_HEAD)
        for i in range(100):
            conn.sendall(sse(f"t{i} "))
            time.sleep(0.1)

    with loopback(trickle) as url:
        t = time.perf_counter()
        with pytest.raises(RemoteError, match="total timeout of 0.5s") as e:
            list(stream_completion(config(url, total_timeout_s=0.5), "x", 100))
        assert e.value.kind == "timeout" and time.perf_counter() - t < 1.5
