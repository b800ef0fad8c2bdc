"""A closed document's KV-cache session is freed at once, not when three other documents evict it."""

from __future__ import annotations

from tiny_gguf import write_tiny_llama

from sparkls.decode.engine import CompletionContext
from sparkls.decode.neural.llama import LlamaModel
from sparkls.decode.ngram.ngram_engine import NgramEngine
from sparkls.decode.ngram.ngram_model import CodeModel
from sparkls.decode.neural.neural_engine import NeuralEngine
from sparkls.server.engines import release_document


def complete(engine, uri: str) -> None:
    ctx = CompletionContext(prefix="def the(x):\n    return x\n\ndef ", suffix="", path=uri, max_tokens=4)
    list(engine.complete(ctx, lambda: False))


def test_release_document_drops_only_its_session(tmp_path):
    """Ensure that releasing a document drops its session and leaves the others cached."""
    model = LlamaModel.load(write_tiny_llama(tmp_path / "tiny.gguf", qtype="Q8_0"))
    engine = NeuralEngine(model, prompt_tokens=64, n_ctx=200)
    complete(engine, "file:///a.py")
    complete(engine, "file:///b.py")
    kept = engine.sessions.get("file:///b.py")
    release_document(engine, "file:///a.py")
    release_document(engine, "file:///never-opened.py")
    assert len(engine.sessions) == 1 and engine.sessions.get("file:///b.py") is kept


def test_release_document_ignores_engines_without_sessions():
    """Ensure that the n-gram core (no sessions) is left alone."""
    release_document(NgramEngine(CodeModel()), "file:///a.py")
