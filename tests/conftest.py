"""Shared test setup: servers started by tests use the deterministic n-gram core unless a test asks
otherwise, and every server a test starts is ended when the test ends, however it ends."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from clients import FIXTURE_PROJECT, VSCODE
from sparkls.server.testing.client import EditorClient, close_server, start_server


@pytest.fixture(autouse=True)
def _ngram_engine(request, monkeypatch):
    # Editors started by tests (Neovim, code-server) pass this on to the server they spawn.
    # Tests marked `model` exercise the neural core and leave the choice to the server.
    if request.node.get_closest_marker("model") is None:
        monkeypatch.setenv("SPARKLS_ENGINE", "ngram")


@pytest.fixture
async def sparkls_server():
    """``client, init = await sparkls_server(capabilities=VSCODE, options=None, root=FIXTURE_PROJECT, setup=None)``
    starts `sparkls serve` as an editor would. At teardown every server the test started and did not
    stop is shut down, or killed with its whole process group: a failed assert leaves no process."""
    started: list[EditorClient] = []

    async def start(
        capabilities: types.ClientCapabilities = VSCODE,
        options: dict | None = None,
        root: Path = FIXTURE_PROJECT,
        setup=None,
    ) -> tuple[EditorClient, types.InitializeResult]:
        client, init = await start_server(capabilities, root, options, setup=setup)
        started.append(client)
        return client, init

    yield start
    for client in started:
        await close_server(client)
