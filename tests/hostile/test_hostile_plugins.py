"""A plugin that exits, interrupts or blocks costs the server one time budget, once, and nothing else."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hostile_client import RawClient, spawn

from clients import FIXTURE_PROJECT

pytestmark = pytest.mark.e2e
SITE = Path(__file__).parent / "plugins"
TEXT = "def handle_read(request, store):\n    payload = request.json()\n    return\n"


def test_misbehaving_plugins_never_end_or_freeze_the_server() -> None:
    """Ensure SystemExit / KeyboardInterrupt / a block in timeline() are survived, within the budget, and logged."""
    env = {"PYTHONPATH": os.pathsep.join([str(SITE), os.environ.get("PYTHONPATH", "")]),
           "SPARKLS_DISABLE_PLUGIN_AUTOLOAD": "0"}
    c = RawClient(spawn(env=env))
    try:
        c.initialize(FIXTURE_PROJECT)
        c.wait_log("hostile-block-start", timeout=30)  # its start blocked: unavailable, reported
        uri = (FIXTURE_PROJECT / "pkg" / "plug.py").as_uri()
        c.open(uri, TEXT)
        for backend in ("hostile-exit", "hostile-interrupt", "hostile-block"):
            c.notify("workspace/didChangeConfiguration", {"settings": {"sparkls": {"backend": backend}}})
            started = time.monotonic()
            items = c.inline(uri, 2, 10, timeout=15)["result"]["items"]
            assert items and time.monotonic() - started < 5, backend
            c.wait_log(f"backend {backend} marked unavailable")
            assert c.alive(2)
            started = time.monotonic()
            c.inline(uri, 1, 4, timeout=5)  # the next ones go to local at once
            assert time.monotonic() - started < 2
        assert c.proc.poll() is None
    finally:
        assert c.close() == 0
