"""A hostile or broken remote engine: every request ends in bounded time and memory, nothing failed is reused."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hostile_client import RawClient, spawn, vm_rss_mb
from hostile_engine import HostileEngine

from clients import FIXTURE_PROJECT

pytestmark = pytest.mark.e2e
TEXT = "def handle_read(request, store):\n    payload = request.json()\n    return\n"
LIMITS = {"connect_timeout_s": 2, "first_token_timeout_s": 3, "read_timeout_s": 2, "total_timeout_s": 4}


def remote_server(engine: HostileEngine, tmp_path: Path, max_tokens: int = 64, **limits) -> RawClient:
    env = {"SPARKLS_REMOTE_URL": engine.url, "SPARKLS_REMOTE_MODEL": "m", "XDG_CONFIG_HOME": str(tmp_path)}
    c = RawClient(spawn(env=env))
    init = c.initialize(FIXTURE_PROJECT, {"model": {"engine": "remote"}, "remote": {**LIMITS, **limits}, "max_tokens": max_tokens})
    assert "remote: m" in init["result"]["serverInfo"]["version"]
    return c


@pytest.fixture
def hostile(request, tmp_path):
    engine = HostileEngine(request.param)
    c = remote_server(engine, tmp_path)
    yield engine, c
    engine.close()
    assert c.close() == 0


def uri(name: str) -> str:
    return (FIXTURE_PROJECT / "pkg" / f"{name}.py").as_uri()


@pytest.mark.parametrize("hostile, log", [("endless_line", "line over"), ("big_line", "line over"),
                                          ("drip", "timed out")], indirect=["hostile"])
def test_stream_ends_in_bounded_time_and_memory(hostile, log) -> None:
    """Ensure an endless line, a 50 MB line or a one-byte drip ends by the limits, and is not offered again."""
    engine, c = hostile
    c.open(uri("a"), TEXT)
    started = time.monotonic()
    first = c.inline(uri("a"), 2, 10, timeout=15)["result"]["items"]
    assert time.monotonic() - started < LIMITS["total_timeout_s"] + 4
    c.wait_log(log)
    assert vm_rss_mb(c.proc.pid) < 1024
    second = c.inline(uri("a"), 2, 10, timeout=15)["result"]["items"]
    for items in (first, second):  # the local core may answer; the engine's junk never does
        assert all("x" * 10 not in i["insertText"] and "y" * 10 not in i["insertText"] for i in items)


@pytest.mark.parametrize("hostile", ["endless_tokens"], indirect=True)
def test_endless_tokens_are_capped(hostile) -> None:
    """Ensure an engine that never stops is cut at max_tokens (64 here), in characters too."""
    engine, c = hostile
    c.open(uri("b"), TEXT)
    items = c.inline(uri("b"), 2, 10, timeout=15)["result"]["items"]
    assert items and len(items[0]["insertText"]) <= 6 + 64 * 4
    assert vm_rss_mb(c.proc.pid) < 1024


@pytest.mark.parametrize("hostile", ["drop"], indirect=True)
def test_dropped_stream_is_not_cached(hostile) -> None:
    """Ensure a stream cut mid-way is a failure whose partial text is not offered again."""
    engine, c = hostile
    c.open(uri("c"), TEXT)
    first = c.inline(uri("c"), 2, 10)["result"]["items"]
    c.wait_log("connection closed mid-stream")
    assert all("partial" not in i["insertText"] for i in first)
    again = c.inline(uri("c"), 2, 10)["result"]["items"]
    assert all("partial" not in i["insertText"] for i in again)


def test_silent_engine_starves_nobody_and_exit_is_prompt(tmp_path) -> None:
    """Ensure documents waiting on a silent engine leave the others served, and exit does not wait for them."""
    engine = HostileEngine("silent_if", text="{'status': 'ok'}")
    c = remote_server(engine, tmp_path, first_token_timeout_s=60, total_timeout_s=120)
    try:
        for i in range(3):
            c.open(uri(f"s{i}"), f"# SILENT {i}\n" + TEXT)
            c.request("textDocument/inlineCompletion", {"textDocument": {"uri": uri(f"s{i}")},
                                                        "position": {"line": 3, "character": 10}, "context": {"triggerKind": 1}})
        time.sleep(0.5)
        c.open(uri("loud"), TEXT)
        started = time.monotonic()
        items = c.inline(uri("loud"), 2, 10, timeout=10)["result"]["items"]
        assert items and time.monotonic() - started < 5
        assert threading.active_count() >= 1
    finally:
        started = time.monotonic()
        code = c.close(timeout=10)
        engine.close()
    assert code == 0 and time.monotonic() - started < 10


def test_logs_hide_url_credentials(tmp_path) -> None:
    """Ensure a failing remote URL is logged without its user:password@ and ?query."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://alice:pw-in-url@127.0.0.1:{port}/v1?api_key=key-in-query"
    env = {"SPARKLS_REMOTE_URL": url, "SPARKLS_REMOTE_MODEL": "m", "XDG_CONFIG_HOME": str(tmp_path)}
    c = RawClient(spawn(env=env))
    try:
        c.initialize(FIXTURE_PROJECT, {"model": {"engine": "remote"}, "remote": LIMITS})
        c.open(uri("d"), TEXT)
        c.inline(uri("d"), 2, 10)
        c.wait_log("remote engine failed")
        logs = "\n".join(c.log) + b"".join(c.stderr).decode()
        assert f"127.0.0.1:{port}" in logs
        assert "pw-in-url" not in logs and "key-in-query" not in logs and "alice" not in logs
    finally:
        assert c.close() == 0
