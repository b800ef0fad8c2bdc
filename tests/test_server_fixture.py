"""The `sparkls_server` fixture ends every server it started, however the test ended."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from clients import FIXTURE_PROJECT, VSCODE
from sparkls.server.testing.client import close_server, start_server

pytest_plugins = ["pytester"]
HERE = Path(__file__).parent

INNER_CONFTEST = f"""
import importlib.util, sys
sys.path.insert(0, {str(HERE)!r})
spec = importlib.util.spec_from_file_location("sparkls_tests_conftest", {str(HERE / "conftest.py")!r})
outer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(outer)
sparkls_server = outer.sparkls_server


def pytest_sessionfinish(session):  # still in this process: the server's pipes are ours
    import os
    pid = int(open("pid").read())
    try:
        os.killpg(pid, 0)
        state = "running"
    except ProcessLookupError:
        state = "gone"
    open("after_teardown", "w").write(state)
"""

INNER_TEST = """
async def test_fails_with_a_server_running(sparkls_server):
    client, _ = await sparkls_server()
    open("pid", "w").write(str(client.process.pid))
    assert False, "a failing assert"
"""


def gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.e2e
def test_a_failing_test_leaves_no_server(pytester: pytest.Pytester) -> None:
    """Ensure that a test failing while its server runs leaves no process of that server's group behind."""
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(INNER_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "asyncio_mode=auto")
    result.assert_outcomes(failed=1)
    assert (pytester.path / "after_teardown").read_text() == "gone"


@pytest.mark.e2e
async def test_a_hung_server_is_killed_with_its_group() -> None:
    """Ensure that close_server ends a server that no longer answers (stopped by SIGSTOP) within its grace period."""
    client, _ = await start_server(VSCODE, FIXTURE_PROJECT)
    pid = client.process.pid
    os.kill(pid, signal.SIGSTOP)
    await close_server(client, grace=0.5)
    assert client.process.returncode == -signal.SIGKILL
    assert gone(pid)
