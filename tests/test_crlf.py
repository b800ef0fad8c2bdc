"""A CRLF document completes exactly as its LF twin, through edits too."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings, strategies as st

from clients import FIXTURE_PROJECT
from sparkls.server.testing.client import stop_server
from sparkls.server.line_breaks import lf, lf_edit

_text = st.lists(st.sampled_from(["a", " ", "\r", "\n", "\r\n", "x"]), max_size=20).map("".join)


@settings(max_examples=300, deadline=None)
@given(_text, st.data())
def test_lf_edit_matches_the_lf_view(old: str, data) -> None:
    """Ensure an edit mapped by lf_edit turns lf(old) into lf(new), whatever CRs and LFs it splits."""
    start = data.draw(st.integers(0, len(old)))
    end = data.draw(st.integers(start, len(old)))
    inserted = data.draw(_text)
    new = old[:start] + inserted + old[end:]
    s, e, ins = lf_edit(old, start, end, inserted)
    view = lf(old)
    assert view[:s] + ins + view[e:] == lf(new)


TEXT = "def handle_read(request, store):\n    payload = request.json()\n    return\n"


@pytest.mark.e2e
async def test_crlf_document_completes_as_its_lf_twin(sparkls_server) -> None:
    """Ensure the same positions of a CRLF and an LF document get the same suggestions (CRLF-joined)."""
    answers = {}
    for name, eol in (("lf", "\n"), ("crlf", "\r\n")):
        client, _ = await sparkls_server()
        await asyncio.wait_for(client.index_done.wait(), 30)
        uri = (FIXTURE_PROJECT / "pkg" / f"{name}.py").as_uri()
        await client.open(uri, TEXT.replace("\n", eol))
        client.edit(uri, 2, 2, 10, 2, 10, " ")  # an edit after the line breaks shifted offsets
        client.edit(uri, 3, 2, 10, 2, 11, "")
        got = []
        for line, char in ((2, 10), (1, 4), (1, 13), (0, 4)):
            result = await client.text_document_inline_completion_async(client.inline_params(uri, line, char))
            got.append([item.insert_text.replace(eol, "\n") for item in result.items])
        answers[name] = got
        assert await stop_server(client) == 0
    assert answers["crlf"] == answers["lf"]
    assert any(items for items in answers["lf"])
