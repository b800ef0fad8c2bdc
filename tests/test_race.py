"""`sparkls race FILE:LINE:COL`: one completion from the decode core, streamed at each backend's cadence.

Off a terminal the race prints one line per update and a summary, which is what these tests read.
The `remote` row against a real engine is tested in test_remote_engine.py.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparkls.backends.stream import load_model
from sparkls.plugins import cli
from sparkls.plugins.api import Request
from sparkls.plugins.registry import Host

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "examples" / "demo" / "inventory.py"
POSITION = f"{DEMO}:37:25"


def summary_rows(out: str) -> dict[str, list[str]]:
    """The summary table's rows by backend name (the lines after the 'backend  TTFT s' header)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("backend") and "TTFT s" in line)
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows[line.split()[0]] = line.split()
    return rows


def test_race_prints_each_backend_at_its_cadence(capsys):
    """Ensure every row shows the decode core's completion, never before its backend's timeline says."""
    names = ["local", "cerebras-wse3", "nvidia-hopper"]
    assert cli.main(["race", POSITION, "--backends", ",".join(names)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert "SmolLM2-135M" in header and "prompt ≈" in header
    rows = summary_rows(out)
    assert list(rows) == names
    final = next(line for line in out.splitlines() if line.startswith("completion (local decode core): "))
    assert "add" in final and "quantity" in final  # the demo's completion: ("add", name, quantity))
    prompt_tokens = int(header.split("prompt ≈ ")[1].split()[0])
    tokens = int(rows["cerebras-wse3"][3])
    assert tokens == int(rows["nvidia-hopper"][3]) > 1
    # The request shape is the completion's own: the modelled TTFT is when the first token showed.
    h = Host(autoload=False)
    req = Request(model=load_model("smollm2-135m"), prompt_tokens=prompt_tokens, new_tokens=tokens)
    for name in ("cerebras-wse3", "nvidia-hopper"):
        predicted = h.timeline(name, req)
        shown_ttft, shown_total = float(rows[name][1]), float(rows[name][4])
        assert predicted.ttft_s - 0.002 <= shown_ttft <= predicted.ttft_s + 0.25, name
        assert predicted.total_s - 0.002 <= shown_total <= predicted.total_s + 0.25, name
    assert "as produced" in " ".join(rows["local"])
    # One line per update: "<t>s <backend> <tokens> +<json delta>", times never going back per row.
    updates = [line.split() for line in out.splitlines() if line[:10].strip().endswith("s") and "+" in line]
    for name in names:
        times = [float(u[0][:-1]) for u in updates if u[1] == name]
        assert times and times == sorted(times)


class SlowEngine:
    """A decode core slower than the modelled hardware: one token every 100 ms."""

    name = "slow"

    def complete(self, ctx, cancelled):
        text = ""
        for piece in ["alpha", " beta", " gamma", " delta"]:
            time.sleep(0.1)
            if cancelled():
                return
            text += piece
            yield text


def test_race_notes_where_local_decode_could_not_keep_up(monkeypatch, capsys):
    """Ensure a decode core slower than the hardware is shown late, with a note saying so."""
    from sparkls.decode.engine import CompletionContext

    monkeypatch.setattr(cli, "_prepare", lambda *a: (SlowEngine(), CompletionContext("x = ", "", max_tokens=8), 3))
    assert cli.main(["race", "x.py:1:5", "--backends", "cerebras-wse3,local"]) == 0
    rows = summary_rows(capsys.readouterr().out)
    assert "could not keep up" in " ".join(rows["cerebras-wse3"])
    assert float(rows["cerebras-wse3"][4]) >= 0.4  # the last token shown when produced, not when due
    assert "could not keep up" not in " ".join(rows["local"])
    assert float(rows["local"][2]) < 15  # the decode core's own rate: ~10 tokens/s


def test_race_live_view_renders_rows(monkeypatch, capsys):
    """Ensure the terminal view runs and its table holds every backend with its text."""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli.main(["race", POSITION, "--backends", "local,nvidia-blackwell"]) == 0
    out = capsys.readouterr().out
    assert "nvidia-blackwell" in out and "local" in out and "quantity" in out

    from rich.console import Console

    from sparkls.decode.engine import CompletionContext

    feed = cli._Feed.__new__(cli._Feed)
    feed.times = []
    shape = cli._Shape(Host(autoload=False), "cerebras-wse3", Host(autoload=False).get("cerebras-wse3"),
                       lambda n: Request(model=load_model("smollm2-135m"), prompt_tokens=10, new_tokens=n), 0, 8)
    row = cli._Row("cerebras-wse3", shape, feed, text="x = 1", tokens=3, first=0.2, last=0.3, lag=0.01)
    buf = io.StringIO()
    Console(file=buf, width=140, force_terminal=False).print(cli._render([row], "demo", 0.5, True))
    text = buf.getvalue()
    assert "cerebras-wse3" in text and "x = 1" in text and "0.200s" in text and "could not keep" in text
    assert CompletionContext  # imported for the shape of the engine contract


@pytest.mark.parametrize("argv, message", [
    (["--backends", "no-such-backend"], "no-such-backend"),
    (["--backends", "remote"], "needs --remote URL --remote-model NAME"),
    (["--remote", "http://127.0.0.1:9"], "--remote-model"),
    (["--model", "no-such-model"], "no-such-model"),
])
def test_race_usage_errors(argv, message, capsys):
    """Ensure a bad backend, model or remote option is a usage error naming the problem."""
    assert cli.main(["race", POSITION, *argv]) == 2
    assert message in capsys.readouterr().err


def test_race_remote_failure_ends_only_its_row(capsys):
    """Ensure a refused remote engine shows an error in its row while the others finish."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc = cli.main(["race", POSITION, "--backends", "local", "--remote", f"http://127.0.0.1:{port}",
                   "--remote-model", "m"])
    out = capsys.readouterr().out
    assert rc == 1
    rows = summary_rows(out)
    assert "connection refused" in " ".join(rows["remote"]) and int(rows["local"][3]) > 1


def test_race_from_the_command_line_without_a_terminal():
    """Ensure `sparkls race` piped to another program prints plain lines (no terminal control codes)."""
    exe = Path(sys.executable).parent / "sparkls"
    r = subprocess.run([str(exe), "race", POSITION, "--backends", "local,cerebras-wse3"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout and "cerebras-wse3" in summary_rows(r.stdout)
