"""`sparkls record --redact` keeps settings, keys, paths, URL queries and invalid frames out of the trace."""

from __future__ import annotations

import sys

import pytest

from hostile_client import RawClient, spawn

pytestmark = pytest.mark.e2e
SECRETS = ["sk-live-4f9a8b7c6d5e", "alice_home", "project_zebra", "qtoken_123456", "hunter2_frame"]


def test_redacted_trace_holds_no_secret(tmp_path) -> None:
    """Ensure settings (a pasted key), file paths, URL queries and invalid frames' bodies are redacted."""
    out = tmp_path / "trace.jsonl"
    root = tmp_path / "alice_home" / "project_zebra"
    root.mkdir(parents=True)
    proxy = [sys.executable, "-m", "sparkls.server", "record", "--out", str(out), "--redact", "--",
             sys.executable, "-m", "sparkls.server", "serve"]
    c = RawClient(spawn(proxy))
    try:
        options = {"backend": "cerebras-wse3", "max_tokens": 32, "api_key": SECRETS[0],
                   "remote": {"url": f"https://engine.example/v1?key={SECRETS[3]}", "api_key_env": SECRETS[0]}}
        c.initialize(root, options=options)
        c.send({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": {"sparkls": options}}})
        uri = (root / "pkg" / "mod.py").as_uri()
        c.open(uri, "x = 1\n")
        c.inline(uri, 0, 5)
        c.write(b'Content-Length: 40\r\n\r\n{"broken": "hunter2_frame", "api_key": ')
        c.write(b"                                           \r\n")
        assert c.alive()
    finally:
        assert c.close() == 0
    text = out.read_text()
    assert '"type":"invalid"' in text and '"cerebras-wse3"' in text and "max_tokens" in text
    for secret in SECRETS:
        assert secret not in text, secret
