"""Every trace recorded from a real client in tests/traces/ replays against today's server, and
a replay catches a server whose answer changed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sparkls.server.testing.pytest_plugin import assert_replay_ok

HERE = Path(__file__).parent
TRACES = sorted((HERE / "traces").glob("*.jsonl"))
ROOT = HERE / "fixtures" / "project"

# A server that is sparkls except for one thing: the first inline completion (or completion item)
# it answers gets " # changed" appended — the kind of regression a replay must catch.
WRAPPER = r'''
import subprocess, sys
from sparkls.server.testing import trace
child = subprocess.Popen([sys.executable, "-m", "sparkls.server", "serve"], stdout=subprocess.PIPE)
frames, changed, out = trace.FrameReader(), False, sys.stdout.buffer
while data := child.stdout.read1(65536):
    for body in frames.feed(data):
        msg = trace.to_record("s2c", 0, body).msg
        result = msg.get("result")
        items = result.get("items") if isinstance(result, dict) else None
        if items and not changed:
            changed = True
            item = items[0]
            if "insertText" in item:
                item["insertText"] += " # changed"
            else:
                item["textEdit"]["newText"] += " # changed"
        out.write(trace.frame(msg)); out.flush()
sys.exit(child.wait())
'''


@pytest.mark.parametrize("path", TRACES, ids=[p.stem for p in TRACES])
async def test_trace_replays(sparkls_replay, path: Path) -> None:
    """Ensure that the server answers a recorded real-client session as it did when recorded."""
    result = await sparkls_replay(path, timing="fast", root=ROOT)
    assert_replay_ok(result)
    assert result.compared >= 5 and result.exit_code == 0


def test_traces_cover_the_clients() -> None:
    """Ensure that the recorded traces include a VS Code-shaped client and both Neovims."""
    assert {p.stem for p in TRACES} >= {"vscode", "nvim-0.11", "nvim-0.12"}


def test_replay_catches_a_changed_completion(tmp_path) -> None:
    """Ensure that `sparkls replay` against a server whose completion changed prints the diff and exits 1."""
    import subprocess

    wrapper = tmp_path / "changed_server.py"
    wrapper.write_text(WRAPPER)
    cmd = [sys.executable, "-m", "sparkls.server", "replay", str(HERE / "traces" / "nvim-0.11.jsonl"), "--timing", "fast",
           "--root", str(ROOT), "--", sys.executable, str(wrapper)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert run.stdout.startswith("✗ response to textDocument/completion (id 2)\n--- recorded\n+++ replayed\n")
    diff = [line[0] + line[1:].strip().rstrip(",") for line in run.stdout.splitlines() if line.startswith(("-", "+")) and "newText" in line]
    recorded = '"newText": "return {\\"status\\": \\"ok\\", \\"id\\": record.id\\\\}$0'
    assert diff == ["-" + recorded + '"', "+" + recorded + ' # changed"']
    assert "1 mismatch(es)" in run.stdout
