"""The model's rewrite of the lines after an edit (server/rewrite.py): the diff it is shown, what of its draft is
proposed, and the gate's features; through the real server, with the real model and without it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sparkls.server import rewrite
from sparkls.server.edit_history import EditHistory
from sparkls.server.next_edit import Site

SRC = '''import os


def load(paths, root):
    """Read the three parts."""
    head = read_part(paths[0], root)
    body = read_part(paths[1], root)
    tail = read_part(paths[2], root)
    return head, body, tail


def other():
    pass
'''
EDITED_AT = SRC.index("root)\n    body") + len("root)")  # the end of the `head = ...` line


def typed(text: str, at: int, new: str) -> tuple[str, EditHistory]:
    """``new`` typed letter by letter at ``at``, each letter a didChange in the history."""
    history = EditHistory()
    for i, ch in enumerate(new):
        before = text
        text = text[: at + i] + ch + text[at + i :]
        history.record(before, at + i, at + i, ch, i + 2)
    return text, history


def test_plan_shows_the_edit_as_a_diff_over_the_block_below():
    text, history = typed(SRC, EDITED_AT, ".strip()")
    p = rewrite.plan(text, history.latest, "file:///w/parts.py")
    assert p.prompt.startswith("--- a/parts.py\n+++ b/parts.py\n@@ -1,")
    assert p.prompt.endswith(
        ' def load(paths, root):\n     """Read the three parts."""\n'
        "-    head = read_part(paths[0], root)\n+    head = read_part(paths[0], root).strip()\n"
    )
    # The lines below in the same block, up to the blank line (not the next function).
    assert p.region == ("    body = read_part(paths[1], root)", "    tail = read_part(paths[2], root)", "    return head, body, tail")
    assert text[p.region_start :].startswith(p.region[0]) and (p.edit_old, p.edit_new) == ("", ".strip()")
    last_line, history = typed(SRC, SRC.index("    pass") + 8, "  # x")
    assert rewrite.plan(last_line, history.latest) is None  # nothing below it


def draft(*lines: str) -> rewrite.Draft:
    return rewrite.Draft(tuple(lines), tuple((-0.1, -0.5) for _ in lines), tuple((2.0, 0.5) for _ in lines))


def test_sites_are_the_small_changes_up_to_where_the_model_drifts():
    text, history = typed(SRC, EDITED_AT, ".strip()")
    p = rewrite.plan(text, history.latest)
    body, tail, ret = p.region
    found = rewrite.sites(p, draft(body + ".strip()", tail + ".strip()", ret))
    body_end, tail_end = text.index(body) + len(body), text.index(tail) + len(tail)
    assert [s for _, s in found] == [Site(body_end, body_end, ".strip()"), Site(tail_end, tail_end, ".strip()")]
    x = dict(zip(rewrite.FEATURES, rewrite.features(p, draft(body + ".strip()", tail + ".strip()", ret), found, text)))
    assert (x["sites"], x["echoes_edit"], x["same_change"], x["tail"]) == (2, 1, 1, 1)
    assert x["kept_lines"] == pytest.approx(1 / 3) and x["min_logprob"] == -0.5 and x["min_margin"] == 0.5
    # A line rewritten beyond a small edit: the model stopped following; nothing from there on.
    drifted = rewrite.sites(p, draft(body + ".strip()", "    raise SystemExit('no tail to read here at all')", ret + ".strip()"))
    assert [i for i, _ in drifted] == [0]
    # Beside a repeat of the user's change, a line changed otherwise is left out.
    mixed = rewrite.sites(p, draft(body + ".strip()", tail, "    return head, body"))
    assert [i for i, _ in mixed] == [0]
    # Nothing changed: nothing proposed.
    assert rewrite.sites(p, draft(body, tail, ret)) == []


def test_no_rewrite_without_the_model_or_the_gate_weights():
    from sparkls.decode.ngram.ngram_engine import NgramEngine
    from sparkls.decode.ngram.ngram_model import CodeModel

    assert rewrite.neural_of(NgramEngine(CodeModel())) is None
    from sparkls.server.gate import Gate

    shipped = Gate.load(rewrite.WEIGHTS, rewrite.FEATURES, otherwise_show=False)  # bench/next_edit.py --fit-rewrite
    assert 0 < shipped.threshold < 1 and shipped.w[rewrite.FEATURES.index("echoes_edit")] > 0
    unusable = Gate.load(rewrite.WEIGHTS.with_name("no-such-file.json"), rewrite.FEATURES, otherwise_show=False)
    assert not unusable.shows(np.ones(len(rewrite.FEATURES)))  # no weights: no rewrite is shown


URI = "file:///tmp/sparkls-rewrite/parts.py"


async def type_tail(client, text: str = SRC, suffix: str = ".strip()") -> int:
    """Open the document and type ``suffix`` at the end of its `head = ...` line; returns the version."""
    await client.open(URI, text)
    line = text[:EDITED_AT].count("\n")
    col = EDITED_AT - (text.rfind("\n", 0, EDITED_AT) + 1)
    version = 1
    for i, ch in enumerate(suffix):
        version += 1
        client.edit(URI, version, line, col + i, line, col + i, ch)
    return version


async def ask(client, version: int, line: int = 5, character: int = 44):
    params = {"textDocument": {"uri": URI, "version": version}, "position": {"line": line, "character": character}}
    return (await client.protocol.send_request_async("textDocument/copilotInlineEdit", params)).edits


@pytest.mark.e2e
async def test_without_the_model_a_tail_edit_gets_nothing(sparkls_server):
    """Ensure the n-gram core serving (no model weights): no rule-based next edit for a change at a line's end, and no
    rewrite either (silence, not an error)."""
    from sparkls.server.testing.client import stop_server

    client, _ = await sparkls_server(options={"index": {"enabled": False}, "model": {"engine": "ngram"}})
    try:
        version = await type_tail(client)
        assert await ask(client, version) == []
    finally:
        await stop_server(client)


async def neural_server(sparkls_server, **gate):
    from sparkls.server.testing.client import engine_ready

    client, _ = await sparkls_server(options={"index": {"enabled": False}, "model": {"warm_on_open": False}, "gate": gate})
    return client, await engine_ready(client)


@pytest.mark.model
@pytest.mark.e2e
async def test_the_model_rewrites_the_lines_below_an_edit(sparkls_server):
    """Ensure a change at the end of one of three alike lines (which the rule-based kinds leave alone) gets the model's
    rewrite over the wire: the same change on the next line, as an edit with an "r" id and the gate's features, and
    after it is applied (Tab-Tab) the one on the line after, with no new request to the model."""
    from sparkls.server.testing.client import stop_server

    client, _ = await neural_server(sparkls_server)
    try:
        version = await type_tail(client)
        edits = await ask(client, version)
        assert [(e.range.start.line, e.range.start.character, e.range.end.character, e.text) for e in edits][:2] == [
            (6, 36, 36, ".strip()"), (7, 36, 36, ".strip()")]
        sid = edits[0].command.arguments[0].id
        assert sid.startswith("r")
        info = await client.protocol.send_request_async("sparkls/suggestionInfo", {"streamId": sid})
        assert info.kind == "nextEdit" and info.features.echoes_edit == 1 and 0 < info.score < 1 and info.gated is False
        client.edit(URI, version + 1, 6, 36, 6, 36, ".strip()")
        chained = await ask(client, version + 1, 6, 44)
        assert [(e.range.start.line, e.text) for e in chained][:1] == [(7, ".strip()")]
        assert chained[0].command.arguments[0].id != sid
    finally:
        await stop_server(client)


@pytest.mark.model
@pytest.mark.e2e
async def test_a_rewrite_below_the_gate_is_not_shown(sparkls_server):
    """Ensure the same rewrite, with the rewrites' gate threshold above any score, is kept back: no edits, counted as
    gated in sparkls/status."""
    from sparkls.server.testing.client import stop_server

    client, statuses = await neural_server(sparkls_server, rewrite_threshold=1.01)
    try:
        version = await type_tail(client)
        assert await ask(client, version) == []
        for _ in range(100):
            if statuses[-1].suggestions.nextEdit.gated:
                break
            await asyncio.sleep(0.05)
        counts = statuses[-1].suggestions.nextEdit
        assert (counts.gated, counts.offered, counts.shown) == (1, 1, 0)
    finally:
        await stop_server(client)


@pytest.mark.model
def test_a_newer_keystroke_stops_the_draft_within_a_token():
    """Ensure the drafter, asked to stop (the document's version moved on), gives up with no draft, asking again no
    more than a token later, and without being asked to stop drafts the lines below."""
    from sparkls.decode.neural.llama import LlamaModel
    from sparkls.decode.neural.neural_engine import NeuralEngine

    drafter = rewrite.Drafter(NeuralEngine(LlamaModel.load()))
    text, history = typed(SRC, EDITED_AT, ".strip()")
    p = rewrite.plan(text, history.latest)
    calls = []

    def cancelled() -> bool:
        calls.append(len(calls) >= 6)
        return calls[-1]

    assert drafter.draft(p, cancelled) is None
    assert calls.count(True) <= 2  # asked once more at most before it stopped
    whole = drafter.draft(p, lambda: False)
    assert whole is not None and len(whole.lines) >= 1 and whole.lines[0].startswith("    body = read_part(")
