"""Warming a document's KV cache when it is opened, so its first completion is not a cold prefill."""

from __future__ import annotations

import asyncio

import pytest
from clients import FIXTURE_PROJECT
from sparkls.server.testing.client import stop_server
from tiny_gguf import write_tiny_llama

from sparkls.decode.engine import CompletionContext, Snippet
from sparkls.decode.neural.llama import LlamaModel
from sparkls.decode.neural.neural_engine import NeuralEngine

TEXT = "".join(f"def f{i}(a, b):\n    return a + b * {i}\n\n" for i in range(12))  # ~400 characters


def counting(session) -> list[int]:
    """Record the number of tokens of every forward pass the session runs."""
    computed: list[int] = []
    run = session._run
    session._run = lambda tokens, n_logits: (computed.append(len(tokens)), run(tokens, n_logits))[1]
    return computed


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> NeuralEngine:
    path = write_tiny_llama(tmp_path_factory.mktemp("warm") / "tiny.gguf", qtype="Q8_0", context_length=1024)
    return NeuralEngine(LlamaModel.load(path), prompt_tokens=256, n_ctx=1024)


def test_a_warmed_document_completes_without_a_cold_prefill(engine) -> None:
    """Ensure that after warm() at a document's end, a completion in its middle computes only
    its last prompt tokens, where a cold one computes the whole prompt."""
    path = "file:///w/warm.py"
    cached = engine.warm(CompletionContext(TEXT, "", path=path, max_tokens=8), lambda: False)
    assert cached > 100
    cursor = TEXT.index("return", len(TEXT) // 2)
    ctx = CompletionContext(TEXT[:cursor], TEXT[cursor:], path=path, max_tokens=4)
    computed = counting(engine.sessions.get(path))
    list(engine.complete(ctx, lambda: False))
    assert computed and computed[0] <= 4, f"the first pass recomputed {computed[0]} prompt tokens"

    cold = "file:///w/cold.py"
    computed = counting(engine.sessions.get(cold))
    list(engine.complete(CompletionContext(TEXT[:cursor], TEXT[cursor:], path=cold, max_tokens=4), lambda: False))
    assert sum(computed[:2]) > 50, "without warming, the prompt is prefilled at the first request"


def test_warming_never_changes_what_a_completion_sees(engine) -> None:
    """Ensure that a completion after warm() gets the prompt it would get without warming:
    the snippets warm() picked for the document's end are replaced by the cursor's own."""
    path = "file:///w/snippets.py"
    cursor = TEXT.index("return", len(TEXT) // 2)
    near_end = (Snippet("other.py", "def g(x):\n    return x * 11\n"),)
    near_cursor = (Snippet("helpers.py", "def h(a, b):\n    return a - b\n"),)
    engine.warm(CompletionContext(TEXT, "", path=path, snippets=near_end), lambda: False)
    ctx = CompletionContext(TEXT[:cursor], TEXT[cursor:], path=path, snippets=near_cursor)
    warmed = engine.prompt(ctx)
    assert "helpers.py" in warmed and "other.py" not in warmed
    assert engine.prompt(ctx) == warmed, "the header stays put once a completion chose it"

    long_path, long_text = "file:///w/long.py", TEXT * 8  # longer than the prompt window
    engine.warm(CompletionContext(long_text, "", path=long_path), lambda: False)
    warm_start = engine._anchors[long_path][0]
    assert warm_start > 0
    cursor = long_text.index("return", warm_start) + 7  # just inside the warmed window: little code before it
    ctx = CompletionContext(long_text[:cursor], long_text[cursor:], path=long_path)
    fresh = NeuralEngine(engine.model, prompt_tokens=engine.prompt_tokens, n_ctx=engine.n_ctx)
    assert engine.prompt(ctx) == fresh.prompt(ctx), "a warmed window must not cut the cursor's context short"


def test_warming_yields_to_requests(engine) -> None:
    """Ensure that warming stops between chunks when cancelled and skips a session a request holds."""
    path = "file:///w/busy.py"
    session = engine.sessions.get(path)
    with session.lock:
        assert engine.warm(CompletionContext(TEXT, "", path=path), lambda: False) == 0
    assert session.n_cached == 0
    asked: list[int] = []
    cached = engine.warm(CompletionContext(TEXT * 3, "", path=path), lambda: asked.append(1) or len(asked) > 2)
    assert 0 < cached < len(engine.prompt_ids(CompletionContext(TEXT * 3, "", path=path))[0])


@pytest.mark.e2e
@pytest.mark.model
async def test_server_prefills_an_opened_document(monkeypatch, sparkls_server) -> None:
    """Ensure that `sparkls serve` with the neural core prefills a document when it is opened
    (and says so in the log), and that the document then completes as usual."""
    monkeypatch.delenv("SPARKLS_ENGINE", raising=False)
    client, _ = await sparkls_server()
    ready = asyncio.Event()
    client.feature("sparkls/status")(lambda p: ready.set() if p.engine == "neural" else None)
    await asyncio.wait_for(ready.wait(), 120)
    uri = (FIXTURE_PROJECT / "pkg" / "warm_me.py").as_uri()
    await client.open(uri, TEXT)
    for _ in range(300):
        if any(m.message.startswith(f"prefilled {uri}") for m in client.log_messages):
            break
        await asyncio.sleep(0.1)
    [line] = [m.message for m in client.log_messages if m.message.startswith(f"prefilled {uri}")]
    assert int(line.split(": ")[1].split()[0]) > 100, line
    n = TEXT.count("\n")
    result = await asyncio.wait_for(client.text_document_inline_completion_async(client.inline_params(uri, n - 2, 4)), 60)
    assert result.items and result.items[0].insert_text.strip()
    assert await stop_server(client) == 0
