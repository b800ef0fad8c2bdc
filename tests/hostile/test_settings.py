"""Editor settings choose neither where completions go nor which key goes with them; bounds hold."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hostile_client import RawClient, spawn
from hostile_engine import HostileEngine

from clients import FIXTURE_PROJECT

pytestmark = pytest.mark.e2e
URI = (FIXTURE_PROJECT / "pkg" / "settings.py").as_uri()
TEXT = "def handle_read(request, store):\n    payload = request.json()\n    return\n"
SECRET = "sk-do-not-send-me"


@pytest.fixture
def engine():
    e = HostileEngine("ok")
    yield e
    e.close()


def server(tmp_path: Path, config: str | None = None, **env) -> RawClient:
    home = tmp_path / "xdg"
    (home / "sparkls").mkdir(parents=True, exist_ok=True)
    if config is not None:
        (home / "sparkls" / "config.toml").write_text(config)
    return RawClient(spawn(env={"XDG_CONFIG_HOME": str(home), "SPARKLS_SECRET": SECRET, **env}))


def hostile_remote(url: str) -> dict:
    return {"model": {"engine": "remote"}, "remote": {"url": url, "model": "m", "api_key_env": "SPARKLS_SECRET"}}


def test_settings_cannot_point_the_remote_engine_anywhere(tmp_path, engine) -> None:
    """Ensure remote.url / api_key_env from initializationOptions or didChangeConfiguration are refused and reported."""
    c = server(tmp_path)
    try:
        init = c.initialize(FIXTURE_PROJECT, options=hostile_remote(engine.url))
        assert "remote" not in init["result"]["serverInfo"]["version"]
        c.wait_log("ignored remote.url, remote.api_key_env")
        c.send({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": {"sparkls": hostile_remote(engine.url)}}})
        c.open(URI, TEXT)
        c.inline(URI, 2, 10)
        time.sleep(0.3)
        assert engine.requests == []  # nothing (no code, no key) reached the collector
        assert all(SECRET not in line for line in c.log)
    finally:
        assert c.close() == 0


def test_user_config_chooses_the_remote_and_allow_lists_its_key(tmp_path, engine) -> None:
    """Ensure a remote from the user's config works, with the key only from an allow-listed variable."""
    config = f'[remote]\nurl = "{engine.url}"\nmodel = "m"\napi_key_env = "SPARKLS_SECRET"\n'
    c = server(tmp_path, config)  # not allow-listed: refused
    try:
        assert "remote" not in c.initialize(FIXTURE_PROJECT, {"model": {"engine": "remote"}})["result"]["serverInfo"]["version"]
        c.wait_log("is not allow-listed")
    finally:
        c.close()
    c = server(tmp_path, 'allowed_key_envs = ["SPARKLS_SECRET"]\n' + config)
    try:
        init = c.initialize(FIXTURE_PROJECT, {"model": {"engine": "remote"}})
        assert "remote: m" in init["result"]["serverInfo"]["version"]
        c.open(URI, TEXT)
        items = c.inline(URI, 2, 10)["result"]["items"]
        assert items and items[0]["insertText"].startswith("return")
        assert engine.requests[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"
    finally:
        assert c.close() == 0


def test_remote_url_must_be_https_unless_loopback(tmp_path) -> None:
    """Ensure a plain-http URL to another host is refused, even from the user's config."""
    c = server(tmp_path, SPARKLS_REMOTE_URL="http://collector.example:8080/v1", SPARKLS_REMOTE_MODEL="m")
    try:
        assert "remote" not in c.initialize(None, {"model": {"engine": "remote"}})["result"]["serverInfo"]["version"]
        line = c.wait_log("must be https")
        assert "collector.example" in line
    finally:
        c.close()


def test_unbounded_settings_are_refused(tmp_path) -> None:
    """Ensure out-of-bounds settings are refused with a clear message and the previous settings stay."""
    c = server(tmp_path)
    try:
        c.initialize(FIXTURE_PROJECT)
        c.open(URI, TEXT)
        for setting, name in (({"max_tokens": 10**12}, "max_tokens"), ({"debounce_ms": 10**9}, "debounce_ms"),
                              ({"index": {"max_total_bytes": 10**15}}, "index.max_total_bytes")):
            c.send({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": {"sparkls": setting}}})
            assert "keeping the previous ones" in c.wait_log(f"$.{name}`")
            params = {"textDocument": {"uri": URI}, "position": {"line": 2, "character": 10}, "context": {"triggerKind": 2}}
            items = c.call("textDocument/inlineCompletion", params, timeout=10)["result"]["items"]
            assert items and len(items[0]["insertText"]) < 200
    finally:
        assert c.close() == 0
