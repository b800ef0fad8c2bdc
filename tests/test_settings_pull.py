"""Settings by `workspace/configuration`: asked for once initialized when the client sent no initializationOptions,
and again on a `didChangeConfiguration` without settings (the pull model)."""

from __future__ import annotations

import asyncio

import attrs
import pytest
from lsprotocol import types

from clients import VSCODE
from sparkls.server.testing.client import stop_server

pytestmark = pytest.mark.e2e

PULL_CAPS = attrs.evolve(VSCODE, workspace=attrs.evolve(VSCODE.workspace, configuration=True))
NO_PULL_CAPS = attrs.evolve(VSCODE, workspace=attrs.evolve(VSCODE.workspace, configuration=False))


async def pulling_session(start, caps, options=None):
    answers: list = [{"backend": "cerebras-wse3"}]
    asked: list = []
    statuses: list = []

    def configure(client):
        @client.feature(types.WORKSPACE_CONFIGURATION)
        def _configuration(params: types.ConfigurationParams):
            asked.append([i.section for i in params.items])
            return [answers[-1]]

        client.feature("sparkls/status")(lambda p: statuses.append(p))

    client, _ = await start(caps, options=options, setup=configure)
    return client, answers, asked, statuses


async def wait_for(check, what: str):
    for _ in range(250):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_settings_are_pulled_without_initialization_options(sparkls_server) -> None:
    """Ensure a client that sent no initializationOptions is asked for `sparkls`, and asked again on a null push."""
    client, answers, asked, statuses = await pulling_session(sparkls_server, PULL_CAPS)
    await wait_for(lambda: statuses and statuses[-1].backend == "cerebras-wse3", "the pulled backend")
    assert asked == [["sparkls"]]
    answers.append({"sparkls": {"backend": "nvidia-hopper"}})  # either shape: the section, or {"sparkls": …}
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await wait_for(lambda: statuses[-1].backend == "nvidia-hopper", "the re-pulled backend")
    assert asked == [["sparkls"], ["sparkls"]]
    assert await stop_server(client) == 0


async def test_no_pull_when_options_were_sent_or_not_supported(sparkls_server) -> None:
    """Ensure initializationOptions win (no pull), and a client without the capability is never asked."""
    client, _, asked, statuses = await pulling_session(sparkls_server, PULL_CAPS, options={"backend": "nvidia-blackwell"})
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"sparkls": {"max_tokens": 8}}))
    await wait_for(lambda: statuses, "a status")
    assert asked == [] and statuses[-1].backend == "nvidia-blackwell"
    assert await stop_server(client) == 0
    client, _, asked, statuses = await pulling_session(sparkls_server, NO_PULL_CAPS)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await asyncio.sleep(0.3)
    assert asked == []
    assert await stop_server(client) == 0
