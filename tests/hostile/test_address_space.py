"""The address-space cap every hostile test puts on its server leaves the real neural server working."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostile_client import AS_LIMIT, RawClient, spawn

from clients import FIXTURE_PROJECT


@pytest.mark.model
@pytest.mark.e2e
def test_neural_server_serves_under_the_cap() -> None:
    """Ensure the server loads SmolLM2 (Numba, LLVM) and completes under RLIMIT_AS, staying under 1 GB resident."""
    c = RawClient(spawn())  # marked model: the conftest leaves the engine choice to the server
    try:
        c.initialize(FIXTURE_PROJECT)
        c.wait_log("neural engine ready", timeout=300)
        uri = (FIXTURE_PROJECT / "pkg" / "cap.py").as_uri()
        c.open(uri, "def handle_read(request, store):\n    payload = request.json()\n    return\n")
        assert c.inline(uri, 2, 10, timeout=120)["result"]["items"]
        status = dict(line.split(":", 1) for line in Path(f"/proc/{c.proc.pid}/status").read_text().splitlines())
        assert int(status["VmPeak"].split()[0]) * 1024 <= AS_LIMIT
        assert int(status["VmHWM"].split()[0]) < 1 << 20  # kB: under 1 GB resident
    finally:
        assert c.close() == 0
