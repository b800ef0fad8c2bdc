"""The gate in the request path: score a new completion, record it, say whether to show it; `sparkls/suggestionInfo`."""

from __future__ import annotations

from sparkls.decode.ngram.ngram_engine import NgramEngine
from sparkls.server import gate as gate_mod
from sparkls.server.completion import completion_context
from sparkls.server import messages as m

NGRAM_TOKENS = 16


def offer(ls, uri: str, position, view, invoked: bool, since_key: float | None) -> bool:
    """Record a new completion suggestion and return whether the gate lets it show.

    Only as-you-type suggestions with the model's log-probabilities are gated (the weights were fitted on them):
    the n-gram core's are always shown, and so is the answer to an explicit request (the user asked for one).
    """
    doc = ls.documents.get(uri)
    stream = view.stream
    if doc is None:
        return True
    line_start, line_end = doc.line_span(position.line) if position.line < doc.line_count else (0, 0)
    cursor = doc.offset_at(position, ls.encoding, clamp_line=True)
    situation = gate_mod.Situation(
        text=stream.text,
        logprobs=stream.logprobs,
        prefix_line=doc.text[line_start:cursor],
        suffix_line=doc.text[cursor:line_end],
        invoked=invoked,
        language=doc.language_id,
        since_key=since_key,
        accept_rate=ls.suggestions.accept_rate(uri),
        ngram=_ngram(ls, doc, cursor) if stream.logprobs else None,
        margins=stream.margins,
        previous_line=doc.text[slice(*doc.line_span(position.line - 1))] if 0 < position.line < doc.line_count else "",
        elsewhere=doc.text[:line_start] + doc.text[line_end:],
    )
    x = gate_mod.features(situation)
    score = ls.gate.score(x)
    gated_kind = ls.options.gate.enabled and stream.logprobs and not invoked
    shown = not gated_kind or ls.gate.shows(x, ls.options.gate.threshold)
    ls.suggestions.offer(view.stream_id, "completion", uri, features=x, score=score, gated=not shown)
    return shown


def _ngram(ls, doc, cursor: int) -> str:
    """The n-gram core's rest of the line at the cursor (a few milliseconds: counts lookups, no model)."""
    ctx = completion_context(doc, cursor, NGRAM_TOKENS)
    text = ""
    try:
        for text in NgramEngine(ls.model).complete(ctx, lambda: False):
            if "\n" in text:
                break
    except Exception:  # a second opinion only: never fail the request over it
        return ""
    return text


def register(server) -> None:
    @server.feature(m.SuggestionInfoParams.METHOD)
    def suggestion_info(ls, params) -> dict | None:
        """What the server recorded about one suggestion: the gate's features and score, and its life so far."""
        life = ls.suggestions.get(m.receive(params, m.SuggestionInfoParams).key)
        if life is None:
            return None
        features = dict(zip(gate_mod.FEATURES, map(float, life.features))) if life.features is not None else None
        if features is None and life.kind == "nextEdit":
            features = ls.rewrites.features.get(life.id)  # a model rewrite's: its own gate's features (server/rewrite.py)
        return m.result(m.SuggestionInfo(
            id=life.id, kind=life.kind, features=features, score=life.score, gated=life.gated,
            shown=life.shown, accepted=life.accepted, accepted_chars=life.accepted_chars, ended=life.ended,
        ))
