"""pytest fixtures for replaying sparkls traces (registered through the ``pytest11`` entry point,
so installing sparkls is enough; see docs/traces.md).

- ``sparkls_replay``: an async function; ``await sparkls_replay(path, server=None | "inprocess" |
  [cmd…], timing="fast", root=None)`` replays a trace against a server subprocess (default:
  this sparkls) or a fresh in-process server on the test's event loop, and returns a
  :class:`~sparkls.server.testing.replay.Result`.
- ``sparkls_replay_virtual``: the same, synchronous, in-process on a virtual clock (use it from
  plain ``def`` tests): sleeps, debounces and a backend's pacing take no wall time, and the
  times in the result are exact, so a stream's cadence can be asserted to the millisecond.
- :func:`assert_replay_ok` fails a test with the readable diff; :func:`stream_schedule` gives
  a stream's ``(elapsedMs, text)`` steps; :func:`assert_cadence` compares them with a schedule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pytest

from sparkls.server.testing import replay as _replay
from sparkls.server.testing import trace as _trace


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sparkls")
    group.addoption("--sparkls-timing", choices=["recorded", "compressed", "fast"], default=None,
                    help="timing for sparkls trace replays (default: what each test asks for)")


def _timing(config: pytest.Config, asked: str) -> str:
    return config.getoption("--sparkls-timing") or asked


def _transport(server: str | Sequence[str] | None, env: dict | None, factory=None):
    if server == "inprocess":
        return _replay.InProcess(factory)
    return _replay.Subprocess(list(server) if server else _replay.DEFAULT_SERVER, env=env)


@pytest.fixture
def sparkls_replay(request: pytest.FixtureRequest):
    """``await sparkls_replay(trace, server=None, timing="fast", root=None, rules=None, env=None)``."""

    async def run(recording: str | Path | _trace.Trace, server: str | Sequence[str] | None = None,
                  timing: str = "fast", root: str | Path | None = None, rules: _replay.Rules | None = None,
                  env: dict | None = None, factory=None, wait: float = 10.0) -> _replay.Result:
        return await _replay.replay(recording, timing=_timing(request.config, timing), root=root, rules=rules,
                                    transport=_transport(server, env, factory), wait=wait)

    return run


@pytest.fixture
def sparkls_replay_virtual(request: pytest.FixtureRequest):
    """``sparkls_replay_virtual(trace, timing="recorded", root=None, rules=None, factory=None)``:
    in-process on a virtual clock; call it from a synchronous test."""
    from sparkls.server.testing.clock import VirtualClock

    def run(recording: str | Path | _trace.Trace, timing: str = "recorded", root: str | Path | None = None,
            rules: _replay.Rules | None = None, factory=None, wait: float = 10.0) -> _replay.Result:
        coro = _replay.replay(recording, timing=_timing(request.config, timing), root=root, rules=rules,
                              transport=_replay.InProcess(factory), wait=wait)
        return VirtualClock().run(coro)

    return run


def assert_replay_ok(result: _replay.Result) -> None:
    """Fail with the replay's diff when it found mismatches."""
    __tracebackhide__ = True
    if not result.ok:
        stderr = b"".join(result.stderr[-20:]).decode(errors="replace")
        pytest.fail(result.report() + (f"\n--- server stderr (tail) ---\n{stderr}" if stderr else ""), pytrace=False)


def stream_schedule(result: _replay.Result, request_id: Any) -> list[tuple[float, str]]:
    """``(elapsedMs, text)`` of each ``sparkls/inlineCompletionStream`` notification of a request."""
    return [(p.get("elapsedMs"), p.get("text")) for p in result.streams().get(request_id, [])]


def assert_cadence(result: _replay.Result, request_id: Any, expected_ms: Sequence[float], tolerance_ms: float = 0.5) -> None:
    """The stream of ``request_id`` emitted at ``expected_ms`` (its ``elapsedMs``), within the tolerance."""
    __tracebackhide__ = True
    got = [ms for ms, _ in stream_schedule(result, request_id)]
    ok = len(got) == len(expected_ms) and all(abs(a - b) <= tolerance_ms for a, b in zip(got, expected_ms))
    if not ok:
        pytest.fail(f"stream of request {request_id!r}: emitted at {got} ms, expected {list(expected_ms)} ms "
                    f"(± {tolerance_ms} ms)", pytrace=False)
