"""The neural engine's decoding loop around the model: token healing and the snapshots it yields.

A scripted stand-in for the model keeps these exact: its "logits" rank tokens by the text
decoded so far, so a test can make the model prefer a token that would lead it astray.
"""

from __future__ import annotations

import threading

import numpy as np

from sparkls.decode.engine import CompletionContext
from sparkls.decode.neural.neural_engine import NeuralEngine

VOCAB = [
    b"<eos>", b"\n", b" ", b"from", b" ls", b"p", b"pro", b"protocol", b"rotocol", b".", b"x", b" import",
    b" types", b"def", b" f", b"():", b"\n   ", b"\n    ", b" return", b"return", b"pass", b" 1", b"foo", b"(",
    b")", b"a", b",", b" b", b"\n        ", b"    ", b" =",
]  # fmt: skip


class Tokenizer:
    """Greedy longest-match tokenizer over VOCAB (id 0 is the only special token)."""

    def encode(self, text: str) -> np.ndarray:
        data, ids = text.encode(), []
        while data:
            best = max((i for i, t in enumerate(VOCAB) if i and data.startswith(t)), key=lambda i: len(VOCAB[i]))
            ids.append(best)
            data = data[len(VOCAB[best]) :]
        return np.array(ids, np.int32)

    def token_bytes(self, i: int) -> bytes:
        return VOCAB[i]

    def decode_bytes(self, ids) -> bytes:
        return b"".join(VOCAB[int(i)] for i in ids)

    def is_special(self, i: int) -> bool:
        return i == 0

    def ids_with_prefix(self, prefix: bytes) -> np.ndarray:
        return np.array(sorted((i for i, t in enumerate(VOCAB) if i and t.startswith(prefix)), key=VOCAB.__getitem__), np.int32)


class ScriptedModel:
    """``script`` maps the end of the text so far to the tokens the model likes next, best first."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.tokenizer = Tokenizer()
        self.script = script

    def new_session(self, n_ctx: int) -> Session:
        return Session(self)

    def pick(self, ids: list[int], allowed) -> int:
        text = self.tokenizer.decode_bytes(ids).decode()
        key = max((k for k in self.script if text.endswith(k)), key=len, default=None)
        liked = [VOCAB.index(t.encode()) for t in self.script[key]] if key is not None else [0]
        ok = set(range(len(VOCAB))) if allowed is None else {int(i) for i in allowed}
        return next((i for i in liked if i in ok), min(ok))


class Session:
    """The parts of decode.neural.llama.Session the engine uses, with its cache semantics: a yielded
    token enters the cache when the next one is computed (or on step())."""

    def __init__(self, model: ScriptedModel) -> None:
        self.model = model
        self.ids: list[int] = []
        self.lock = threading.Lock()

    def feed(self, ids, cancelled=None) -> list[int]:
        self.ids = [int(i) for i in ids]
        return self.ids

    def step(self, token: int) -> None:
        self.ids.append(int(token))

    def generate(self, max_new, draft=None, cancelled=None, first_allowed=None, **_):
        allowed = first_allowed
        for n in range(max_new):
            token = self.model.pick(self.ids, allowed)
            allowed = None
            yield token
            if n == max_new - 1:
                return
            self.ids.append(token)


def complete(script: dict[str, list[str]], prefix: str, suffix: str = "\n") -> list[str]:
    engine = NeuralEngine(ScriptedModel(script), speculative=False)
    return list(engine.complete(CompletionContext(prefix, suffix, path="file:///w/a.py"), lambda: False))


def test_healing_never_splits_a_typed_word() -> None:
    """Ensure healing re-types the last word as whole tokens: a model that prefers "p" after
    "from ls" and then wanders off "protocol" still gets to complete the line."""
    script = {
        "from ls": ["p", "protocol"],
        "from lsp": ["."],  # off the typed text: the old healing ended with nothing here
        "from lsprotocol": [" import"],
        " import": [" types"],
        " types": ["\n"],
    }
    assert complete(script, "x\nfrom lsprotocol")[-1] == " import types"


def test_healing_goes_on_over_several_tokens() -> None:
    """Ensure indentation healed as "\\n   " + " return" is re-typed to its end: the token after
    "\\n   " must still start with the missing blank, though the model likes "pass" better."""
    script = {
        "def f():": ["\n   "],
        "():\n   ": ["pass", " return"],
        "return": [" 1"],
        " 1": ["\n"],
    }
    assert complete(script, "def f():\n    ", "")[-1] == "return 1"


def test_snapshots_extend_each_other() -> None:
    """Ensure a blank the stop rules will drop at the line's end is not shown first: each
    snapshot extends the one before."""
    snaps = complete({"a": [","], ",": [" "], ", ": ["\n"]}, "x = (a")
    assert snaps == [","]


def test_a_request_waits_for_the_documents_session_and_gives_up_when_cancelled() -> None:
    """Ensure that a completion does not touch a document's session while another request
    (superseded, finishing a prefill chunk) holds it, and stops waiting once cancelled."""
    engine = NeuralEngine(ScriptedModel({"x": ["p"]}), speculative=False)
    ctx = CompletionContext("x", "\n", path="file:///w/a.py")
    session = engine.sessions.get(ctx.path)
    session.lock.acquire()
    cancel = threading.Event()
    got: list[list[str]] = []
    waiter = threading.Thread(target=lambda: got.append(list(engine.complete(ctx, cancel.is_set))))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and session.ids == [], "the session was used while another request held it"
    cancel.set()
    waiter.join(2)
    assert not waiter.is_alive() and got == [[]]
    session.lock.release()
    assert list(engine.complete(ctx, lambda: False)), "the session should be free again"


def test_a_withheld_header_body_is_asked_again_with_its_indentation_typed() -> None:
    """Ensure that when the model's body after a header is withheld (its first line not indented
    under the header), the engine answers with the model's block after the header's indentation
    plus one step, instead of nothing; never the line already below; with the next line turned off,
    nothing."""
    script = {
        "def f():": ["\n"],
        "():\n": ["return", "    "],  # unindented first; the indentation is its second choice
        "():\n    ": ["return"],
        "return": [" 1"],
        " 1": ["\n"],
    }
    assert complete(script, "x = 1\ndef f():", "\n")[-1] == "\n    return 1"
    assert complete(script, "x = 1\ndef f():", "\n\nreturn 1\n") == [], "the line already below, again"
    assert complete(script, "x = 1\ndef f():", "\n\nreturn 1 + x\n") == ["\n    return 1"], "a start of it"
    off = NeuralEngine(ScriptedModel(script), speculative=False)
    ctx = CompletionContext("x = 1\ndef f():", "\n", path="file:///w/a.py", next_line=False)
    assert list(off.complete(ctx, lambda: False)) == [], "the next-line setting off: nothing"
