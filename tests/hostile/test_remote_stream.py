"""The remote engine alone against a hostile engine: each stream ends by its limits, in bounded memory.

Each stream runs in a child process under the address-space cap, so a regression (an unbounded line
read into memory) fails here instead of exhausting the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hostile_client import cap_address_space
from hostile_engine import HostileEngine

CHILD = r"""
import json, sys, time
from sparkls.decode.remote.remote_engine import RemoteEngine, RemoteError
from sparkls.decode.engine import CompletionContext
cfg = dict(url=sys.argv[1], model="m", connect_timeout_s=2, first_token_timeout_s=3, read_timeout_s=2, total_timeout_s=4)
engine = RemoteEngine(cfg)
t0, text, error = time.monotonic(), "", None
try:
    for text in engine.complete(CompletionContext(prefix="x = ", suffix="", max_tokens=16), lambda: False):
        pass
except RemoteError as e:
    error = f"{e.kind}: {e}"
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) // 1024
print(json.dumps({"seconds": time.monotonic() - t0, "chars": len(text), "error": error, "rss_mb": rss}))
"""


@pytest.mark.parametrize("mode, expect", [
    ("endless_line", "protocol: "), ("big_line", "protocol: "), ("drip", "timeout: "),
    ("endless_tokens", None), ("drop", "connection: "),
])
def test_remote_stream_is_bounded(mode, expect) -> None:
    """Ensure an endless or 50 MB line, a drip, endless tokens and a drop each end in seconds and megabytes."""
    engine = HostileEngine(mode)
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, engine.url], capture_output=True, text=True,
                              timeout=30, preexec_fn=cap_address_space)
    finally:
        engine.close()
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["seconds"] < 4 + 1 and result["rss_mb"] < 400
    if expect is None:
        assert result["error"] is None and result["chars"] <= 16 * 64
    else:
        assert result["error"] and result["error"].startswith(expect), result
        assert "line over" in result["error"] or expect != "protocol: "  # refused by length, not read whole
