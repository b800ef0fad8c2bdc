"""The show/no-show gate (server/gate.py), the suggestion log that feeds it, and the engine's per-token log-probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sparkls.server import gate
from sparkls.server.suggestion_log import SuggestionLog


def situation(**kw) -> gate.Situation:
    base = dict(text="x + 1)", logprobs=(-0.1, -0.2), prefix_line="    y = f(", suffix_line="", invoked=False,
                language="python", since_key=0.1, accept_rate=None)
    return gate.Situation(**{**base, **kw})


def test_features_describe_the_situation():
    x = dict(zip(gate.FEATURES, gate.features(situation())))
    assert x["mean_logprob"] == pytest.approx(-0.15) and x["first_logprob"] == -0.1 and x["min_logprob"] == -0.2
    assert x["after_open"] == 1 and x["after_word"] == 0 and x["at_line_end"] == 1 and x["python"] == 1
    assert x["accept_rate"] == gate.PRIOR_RATE and x["has_rate"] == 0
    x = dict(zip(gate.FEATURES, gate.features(situation(logprobs=(), prefix_line="    ", text="\n    return x\n    y"))))
    assert x["has_logprobs"] == 0 and x["blank_line"] == 1 and x["multiline"] == 1
    assert x["ngram_agrees"] == x["ngram_differs"] == 0  # the n-gram core was not asked
    x = dict(zip(gate.FEATURES, gate.features(situation(ngram="x + 1)  # ok\n"))))
    assert (x["ngram_agrees"], x["ngram_differs"]) == (1, 0)
    x = dict(zip(gate.FEATURES, gate.features(situation(ngram="y)"))))
    assert (x["ngram_agrees"], x["ngram_differs"]) == (0, 1)
    assert x["ngram_common"] == 0 and x["ngram_same_line"] == 0 and x["first_margin"] == x["min_margin"] == 0
    x = dict(zip(gate.FEATURES, gate.features(situation(ngram="x + 2", margins=(0.4, 30.0, -0.2)))))
    assert x["ngram_common"] == pytest.approx(np.log1p(4)) and x["ngram_same_line"] == 0  # agrees past "x"
    assert x["first_margin"] == 0.4 and x["min_margin"] == -0.2
    x = dict(zip(gate.FEATURES, gate.features(situation(ngram="x + 1)", margins=(30.0,)))))
    assert x["ngram_same_line"] == 1 and x["first_margin"] == 10  # clipped
    assert gate.features(situation())[gate.FEATURES.index("repeats_context")] == 0
    again = situation(text="x + 1)", previous_line="    z = f(x + 1)")
    assert gate.features(again)[gate.FEATURES.index("repeats_context")] == 1
    x = dict(zip(gate.FEATURES, gate.features(situation(prefix_line="    if ready:", text="\n        go()"))))
    assert x["header_end"] == 1 and dict(zip(gate.FEATURES, gate.features(situation())))["header_end"] == 0


def test_prose_and_code_seen_elsewhere():
    def x(**kw) -> dict:
        return dict(zip(gate.FEATURES, gate.features(situation(**kw))))

    assert x(text="# compute")["opens_prose"] == 1 and x(text='"""Return')["opens_prose"] == 1
    assert x()["opens_prose"] == 0
    doc = "def f(a):\n    y = f(x + 1) * 2\n"
    assert x(elsewhere=doc)["seen_elsewhere"] == 1  # "  y = f(" + "x + 1)": 8 characters of context match
    assert x(elsewhere=doc, previous_line="def f(a):")["seen_elsewhere"] == 2  # 16 too, across the line break
    assert x(elsewhere=doc, text="x + 2)")["seen_elsewhere"] == 0
    assert x(elsewhere="", text="x + 1)")["seen_elsewhere"] == 0  # nothing else to look in
    assert x(elsewhere=doc, prefix_line="def f(a):", text="\n    y = f")["seen_elsewhere"] == 1  # a next line


def test_fit_separates_confident_from_unsure_and_learning_follows_the_user():
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for _ in range(400):
        lp = rng.uniform(-3, 0)
        good = rng.random() < 1 / (1 + np.exp(-(3 * lp + 2)))  # confident suggestions are right more often
        rows.append(gate.features(situation(logprobs=(lp, lp))))
        labels.append(float(good))
    w = gate.fit(np.array(rows), np.array(labels))
    g = gate.Gate(w, 0.5)
    sure, unsure = gate.features(situation(logprobs=(-0.05,))), gate.features(situation(logprobs=(-2.5,)))
    assert g.score(sure) > 0.6 > 0.2 > g.score(unsure)
    assert g.shows(sure) and not g.shows(unsure)
    before = g.score(unsure)
    for _ in range(30):  # this user accepts even the unsure ones
        g.learn(unsure, True)
    assert g.score(unsure) > before + 0.2


def test_gate_file_round_trip_and_fallback(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"features": list(gate.FEATURES), "weights": {f: 0.0 for f in gate.FEATURES}, "threshold": 0.7}))
    g = gate.Gate.load(path)
    assert g.threshold == 0.7 and g.score(gate.features(situation())) == 0.5 and not g.shows(gate.features(situation()))
    path.write_text(json.dumps({"features": ["bias"], "weights": {"bias": 1}, "threshold": 0.5}))
    assert gate.Gate.load(path).shows(gate.features(situation()))  # other features: show everything
    shipped = json.loads(gate.WEIGHTS.read_text())
    assert tuple(shipped["features"]) == gate.FEATURES  # the shipped file was fitted for these features
    assert gate.Gate.load().threshold == shipped["threshold"] > 0


def test_suggestion_log_counts_each_life():
    log = SuggestionLog()
    outcomes = []
    log.listeners.append(lambda life, ok: outcomes.append((life.id, ok)))
    log.offer("s1", "completion", "u", features=np.ones(2))
    log.show("s1")
    log.alias("s2", "s1")  # typed along: same suggestion
    log.accept("s2", "word", 3)
    log.accept("s2", "full", 5)
    log.offer("s3", "completion", "u")
    log.show("s3")
    log.offer("s4", "completion", "u")  # s3 was shown and left open: superseded
    log.show("s4")
    log.end("s4", "typedPast")
    log.offer("s5", "completion", "u", gated=True)
    c = log.status()["completion"]
    assert (c.offered, c.gated, c.shown, c.accepted, c.partially_accepted) == (4, 1, 3, 1, 0)
    assert (c.superseded, c.typed_past, c.accepted_chars, c.accept_rate) == (1, 1, 8, round(1 / 3, 3))
    assert outcomes == [("s1", True), ("s3", False), ("s4", False)]
    assert log.accept_rate("u") == pytest.approx(1 / 3)


@pytest.mark.model
def test_neural_engine_yields_token_logprobs():
    """Ensure the neural core's snapshots carry one log-probability and one margin per decoded token, the first
    equal to a log-softmax of the logits it was chosen from and to its gap to the runner-up."""
    from sparkls.decode.engine import CompletionContext
    from sparkls.decode.neural.llama import LlamaModel
    from sparkls.decode.neural.neural_engine import NeuralEngine

    model = LlamaModel.load()
    engine = NeuralEngine(model)
    ctx = CompletionContext(prefix="def add(a, b):\n    return a", suffix="\n", max_tokens=8)
    snaps = list(engine.complete(ctx, lambda: False))
    assert snaps and all(isinstance(s, str) for s in snaps)
    lps = snaps[-1].logprobs
    assert len(lps) >= 1 and all(lp <= 0 for lp in lps)
    ids, healed = engine.prompt_ids(ctx)
    session = model.new_session(2048)
    logits = session.feed(ids).astype(np.float64)
    allowed = engine._allowed(healed) if healed else np.arange(len(logits))
    first = int(allowed[np.argmax(logits[allowed])])
    want = logits[first] - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
    assert lps[0] == pytest.approx(want, abs=1e-4)
    margins = snaps[-1].margins
    assert len(margins) == len(lps)
    runner_up = np.max(np.delete(logits, first))
    assert margins[0] == pytest.approx(logits[first] - runner_up, abs=1e-4)


@pytest.mark.model
@pytest.mark.e2e
async def test_gate_over_stdio_hides_below_its_threshold(sparkls_server):
    """Ensure the served neural suggestion is scored from its token log-probabilities, shown at threshold 0, kept back
    (an empty answer, recorded as gated) at threshold 1 when it comes as you type, still answered when invoked, and
    that sparkls/status counts it."""
    import asyncio

    from lsprotocol import types
    from sparkls.server.testing.client import engine_ready, stop_server

    uri = "file:///tmp/sparkls-gate/area.py"
    text = "import math\n\n\ndef area(radius):\n    return math.pi * radius * \n"
    client, _ = await sparkls_server(options={"index": {"enabled": False}, "gate": {"threshold": 0.0}})
    try:
        statuses = await engine_ready(client)
        await client.open(uri, text)
        shown = await client.text_document_inline_completion_async(client.inline_params(uri, 4, 30))
        [item] = shown.items
        info = await client.protocol.send_request_async("sparkls/suggestionInfo", {"streamId": item.command.arguments[0]["streamId"]})
        assert info.features.has_logprobs == 1 and info.features.mean_logprob < 0 and 0 < info.score < 1
        assert info.gated is False
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams({"sparkls": {"gate": {"threshold": 1.0}}}))
        other = uri.replace("area.py", "area2.py")  # a new suggestion (the same document would be typed along)
        await client.open(other, text)
        hidden = await client.text_document_inline_completion_async(client.inline_params(other, 4, 30, automatic=True))
        assert list(hidden.items) == []
        third = uri.replace("area.py", "area3.py")
        await client.open(third, text)
        asked = await client.text_document_inline_completion_async(client.inline_params(third, 4, 30))
        assert len(asked.items) == 1  # an explicit request is always answered
        for _ in range(100):
            if statuses[-1].suggestions.completion.gated:
                break
            await asyncio.sleep(0.05)
        assert statuses[-1].suggestions.completion.gated == 1
    finally:
        await stop_server(client)


def test_saved_weights_load_back(tmp_path):
    """Ensure Gate.save writes what Gate.load reads, and a file for other features is refused (show-all fallback)."""
    import numpy as np
    from sparkls.server import gate

    w = np.linspace(-1, 1, len(gate.FEATURES))
    path = tmp_path / "w.json"
    gate.Gate.save(path, "test", gate.FEATURES, w, 0.625, tune={"n": 3})
    loaded = gate.Gate.load(path, gate.FEATURES)
    assert np.allclose(loaded.w, w, atol=1e-5) and loaded.threshold == 0.625
    other = gate.Gate.load(path, gate.FEATURES[:-1])
    assert other.threshold == 0.5 and other.w[0] == 10.0
