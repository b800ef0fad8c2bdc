"""`sparkls race FILE:LINE:COL`: one completion, decoded once, played at each backend's cadence.

`--json` prints one object per lane when the race is done, which is what most of these tests read.
The `remote` row against a real engine is tested in test_remote_engine.py.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparkls.plugins.api import load_model
from sparkls.server.cli import main, race, race_view
from sparkls.plugins.api import Request
from sparkls.plugins.registry import Host

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "examples" / "demo" / "inventory.py"
POSITION = f"{DEMO}:37:25"


def summary_rows(out: str) -> dict[str, list[str]]:
    """The plain summary table's rows by backend name (the lines after the 'backend  TTFT s' header)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("backend") and "TTFT s" in line)
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows[line.split()[0]] = line.split()
    return rows


def race_json(capsys, *argv: str) -> tuple[int, dict[str, dict]]:
    """Run `sparkls race --json` and return its exit code and lanes by backend."""
    rc = main(["race", *argv, "--json"])
    lanes = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return rc, {lane["backend"]: lane for lane in lanes}


def test_race_plays_each_lane_at_its_modelled_timeline(capsys):
    """Ensure modelled lanes show the same completion at their own, different, modelled times."""
    names = ["local", "cerebras-wse3", "nvidia-hopper"]
    rc, lanes = race_json(capsys, POSITION, "--backends", ",".join(names))
    assert rc == 0 and list(lanes) == names
    assert "add" in lanes["local"]["text"] and "quantity" in lanes["local"]["text"]
    assert len({lane["text"] for lane in lanes.values()}) == 1  # one completion, decoded once
    tokens = lanes["cerebras-wse3"]["tokens"]
    assert tokens == lanes["nvidia-hopper"]["tokens"] == lanes["local"]["tokens"] > 1
    assert lanes["cerebras-wse3"]["kind"] == lanes["nvidia-hopper"]["kind"] == "modelled"
    assert lanes["local"]["kind"] == "measured" and "this machine" in lanes["local"]["note"]
    assert all(lane["answered_by"] == name for name, lane in lanes.items())
    # Never gated by the decode core: each modelled lane shows its timeline, and they differ.
    h = Host(autoload=False)
    for name in ("cerebras-wse3", "nvidia-hopper"):
        lane = lanes[name]
        predicted = h.timeline(name, Request(model=load_model("smollm2-135m"), prompt_tokens=lane_prompt(lanes),
                                             new_tokens=tokens))
        assert predicted.ttft_s - 0.002 <= lane["ttft_s"] <= predicted.ttft_s + 0.25, name
        assert predicted.total_s - 0.002 <= lane["total_s"] <= predicted.total_s + 0.25, name
        assert lane["ttft_s_p10"] <= lane["ttft_s_p50"] <= lane["ttft_s_p90"]
    assert lanes["cerebras-wse3"]["tokens_per_s"] > 2 * lanes["nvidia-hopper"]["tokens_per_s"]


def lane_prompt(lanes: dict) -> int:
    return PROMPT_TOKENS[0]


PROMPT_TOKENS: list[int] = []


@pytest.fixture(autouse=True)
def _record_prompt(monkeypatch):
    """Remember the prompt length the race used, to rebuild its request shape."""
    real = race._prepare

    def spy(*a, **kw):
        out = real(*a, **kw)
        PROMPT_TOKENS[:] = [out[2]]
        return out

    monkeypatch.setattr(race, "_prepare", spy)


def test_race_plain_output_lists_updates_and_summary(capsys):
    """Ensure the plain view prints a header, time-ordered updates per lane and a summary."""
    names = ["local", "cerebras-wse3"]
    assert main(["race", POSITION, "--backends", ",".join(names)]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert "SmolLM2-135M" in header and "prompt ≈" in header and "decoded once" in header
    rows = summary_rows(out)
    assert list(rows) == names and "modelled" in " ".join(rows["cerebras-wse3"])
    assert "p10-p90 TTFT" in " ".join(rows["cerebras-wse3"])  # the modelled range, not one number
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


def test_a_slow_decode_core_does_not_hold_back_modelled_lanes(monkeypatch, capsys):
    """Ensure a decode core slower than the hardware still shows the hardware's cadence in its lane,
    while the local lane replays this machine's own ~10 tokens/s."""
    from sparkls.decode.engine import CompletionContext

    monkeypatch.setattr(race, "_prepare", lambda *a: (SlowEngine(), CompletionContext("x = ", "", max_tokens=8), 3))
    rc, lanes = race_json(capsys, "x.py:1:5", "--backends", "cerebras-wse3,local")
    assert rc == 0
    tl = Host(autoload=False).timeline("cerebras-wse3", Request(model=load_model("smollm2-135m"), prompt_tokens=3,
                                                                 new_tokens=4))
    assert tl.total_s < 0.3  # the hardware finishes before the decode core did (0.4 s)...
    assert tl.total_s - 0.002 <= lanes["cerebras-wse3"]["total_s"] < 0.4  # ...and its lane shows that
    assert lanes["local"]["tokens_per_s"] < 15 and lanes["local"]["total_s"] >= 0.3
    assert lanes["local"]["text"] == lanes["cerebras-wse3"]["text"] == "alpha beta gamma delta"


def test_race_live_view_renders_lanes(monkeypatch, capsys):
    """Ensure the terminal view runs and its table holds every backend with its text."""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["race", POSITION, "--backends", "local,nvidia-blackwell"]) == 0
    out = capsys.readouterr().out
    assert "nvidia-blackwell" in out and "local" in out and "quantity" in out

    from rich.console import Console

    tl = Host(autoload=False).timeline("cerebras-wse3", Request(model=load_model("smollm2-135m"), prompt_tokens=10,
                                                                 new_tokens=3))
    lane = race_view.Lane("cerebras-wse3", "modelled", tl, text="x = 1", tokens=3, first=0.2, last=0.3)
    buf = io.StringIO()
    Console(file=buf, width=140, force_terminal=False).print(race_view.render([lane], "demo", 0.5, True))
    text = buf.getvalue()
    assert "cerebras-wse3" in text and "x = 1" in text and "0.200s" in text and "modelled" in text


@pytest.mark.parametrize("argv, message", [
    (["--backends", "no-such-backend"], "no-such-backend"),
    (["--backends", "remote"], "needs --remote URL --remote-model NAME"),
    (["--remote", "http://127.0.0.1:9"], "--remote-model"),
    (["--model", "no-such-model"], "no-such-model"),
])
def test_race_usage_errors(argv, message, capsys):
    """Ensure a bad backend, model or remote option is a usage error naming the problem."""
    assert main(["race", POSITION, *argv]) == 2
    assert message in capsys.readouterr().err


def test_race_remote_failure_ends_only_its_row(capsys):
    """Ensure a refused remote engine shows an error in its row while the others finish."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc, lanes = race_json(capsys, POSITION, "--backends", "local", "--remote", f"http://127.0.0.1:{port}",
                          "--remote-model", "m")
    assert rc == 1
    assert "connection refused" in lanes["remote"]["error"] and lanes["local"]["tokens"] > 1


def test_race_from_the_command_line_without_a_terminal():
    """Ensure `sparkls race` piped to another program prints plain lines (no terminal control codes)."""
    exe = Path(sys.executable).parent / "sparkls"
    r = subprocess.run([str(exe), "race", POSITION, "--backends", "local,cerebras-wse3"], capture_output=True,
                       text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout and "cerebras-wse3" in summary_rows(r.stdout)
