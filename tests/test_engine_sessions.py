"""A closed document's KV-cache session is freed at once, not when three other documents evict it."""

from __future__ import annotations

from tiny_gguf import write_tiny_llama

from sparkls.decode.engine import CompletionContext
from sparkls.decode.neural.llama import LlamaModel
from sparkls.decode.ngram.ngram_engine import NgramEngine
from sparkls.decode.ngram.ngram_model import CodeModel
from sparkls.decode.neural.neural_engine import NeuralEngine


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
    engine.release("file:///a.py")
    engine.release("file:///never-opened.py")
    assert len(engine.sessions) == 1 and engine.sessions.get("file:///b.py") is kept


def test_release_document_ignores_engines_without_sessions():
    """Ensure that the n-gram core (no sessions) is left alone."""
    engine = NgramEngine(CodeModel())
    engine.release("file:///a.py")
    assert engine.warm(CompletionContext("x = ", "", path="file:///a.py"), lambda: False) == 0


def test_engines_answer_the_contract_abilities(tmp_path):
    """Ensure that each engine counts tokens in its own vocabulary, describes its kernels, and that the
    copy choice hands every ability to the neural engine (the server calls these, never probes)."""
    from sparkls.decode.copy_choice import CopyChoice
    from sparkls.decode.engine import Engine

    model = LlamaModel.load(write_tiny_llama(tmp_path / "tiny.gguf", qtype="Q8_0"))
    neural = NeuralEngine(model, prompt_tokens=64, n_ctx=200)
    ngram = NgramEngine(CodeModel())
    chooser = CopyChoice(neural, ngram)
    text = "def the(x):\n    return x\n"
    assert neural.count_tokens(text) == len(model.tokenizer.encode(text)) > 0
    assert ngram.count_tokens(text) == len(ngram.model.lexer.split(text)) == 12
    assert neural.describe() == {"kernelPath": model.kernel_path} and ngram.describe() == {}
    assert chooser.name == "neural" and chooser.describe() == neural.describe()
    assert chooser.count_tokens(text) == neural.count_tokens(text)
    ctx = CompletionContext(prefix=text, suffix="", path="file:///c.py", max_tokens=4)
    assert chooser.warm(ctx, lambda: False) > 0 and len(neural.sessions) == 1
    chooser.release("file:///c.py")
    assert len(neural.sessions) == 0
    assert all(isinstance(e, Engine) and e.executor is None for e in (neural, ngram, chooser))
