"""End to end in real headless Neovims (0.11.4 and 0.12-dev): next edits with Tab-Tab, and a partial accept that asks
for nothing new."""

from __future__ import annotations

import time

import pytest

from handler_draft import DRAFT, RETURN
from rename_fixture import RENAMED, SRC
from nvim.harness import PLUGIN, SERVER_CMD, Editor, copy_project, wait_for
from test_nvim import versions

pytestmark = pytest.mark.e2e

SETTINGS = {"backend": "nvidia-hopper", "served_model": "llama-3.1-70b", "model": {"engine": "ngram"}}

SPY = """
_G.requests = {}
vim.api.nvim_create_autocmd('LspAttach', { callback = function(ev)
  local c = vim.lsp.get_client_by_id(ev.data.client_id)
  if c.name ~= 'sparkls' or c._counted then return end
  c._counted = true
  local request, notify = c.request, c.notify
  c.request = function(self, method, params, ...)
    table.insert(_G.requests, { method = method, params = params })
    return request(self, method, params, ...)
  end
  c.notify = function(self, method, params)
    table.insert(_G.requests, { method = method, params = params })
    return notify(self, method, params)
  end
end })
"""


@pytest.fixture(scope="module", params=versions("0.11", "0.12"))
def session(request, tmp_path_factory):
    home = tmp_path_factory.mktemp(f"nvim{request.param}")
    project = copy_project(home / "project")
    ed = Editor(request.param, home, rtp=[PLUGIN])
    ed.lua(SPY)
    ed.lua("require('sparkls').setup(...)", {"cmd": SERVER_CMD, "settings": SETTINGS})
    ed.project = project
    yield ed
    assert ed.close(), "the sparkls server never started"


def open_file(ed: Editor, name: str, text: str):
    path = ed.project / "pkg" / name
    path.write_text(text)
    ed.nvim.command(f"edit {path}")
    wait_for(ed.client_ready, what="sparkls client", diag=ed.diag)
    ed.lua("_G.requests = {}")
    return path


def next_edit(ed: Editor):
    """(row, col, struck-through text, inserted text) of the drawn next edit, or None."""
    ns = ed.nvim.api.create_namespace("sparkls.next_edit")
    marks = ed.nvim.api.buf_get_extmarks(0, ns, 0, -1, {"details": True})
    if not marks:
        return None
    struck, added = "", ""
    row = col = None
    for _, r, c, d in marks:
        if d.get("end_row") is not None and d.get("hl_group") == "SparklsNextEditDelete":
            struck = ed.nvim.api.buf_get_text(0, r, c, d["end_row"], d["end_col"], {})[0]
            row, col = r, c
        if d.get("virt_text"):
            added = "".join(chunk[0] for chunk in d["virt_text"])
    return row, col, struck, added


def sent(ed: Editor, method: str) -> list:
    return [r["params"] for r in ed.lua("return _G.requests") if r["method"] == method]


def test_rename_then_tab_tab_renames_every_occurrence(session):
    """Ensure renaming one use draws the next rename at the next use; Tab jumps, Tab applies, and so on to the last;
    the saved file has every use in the function renamed (not the string or comment); one undo reverts one edit."""
    ed = session
    path = open_file(ed, "rename.py", SRC)
    ed.nvim.api.win_set_cursor(0, [2, 4])
    ed.nvim.input("ciwtotal<Esc>")
    wait_for(lambda: ed.line() == "    total = 0", what="the typed rename", diag=ed.diag)
    sites = []
    for _ in range(3):
        row, col, struck, added = wait_for(lambda: next_edit(ed), what="a drawn next edit", diag=ed.diag)
        assert (struck, added) == ("count", "total")
        sites.append((row, col))
        assert ed.nvim.api.get_mode()["mode"] == "n"
        ed.nvim.input("<Tab>")  # jump
        wait_for(lambda: ed.nvim.api.win_get_cursor(0) == [row + 1, col], what="the jump", diag=ed.diag)
        assert ed.nvim.current.buffer[row][col : col + 5] == "count"
        ed.nvim.input("<Tab>")  # apply
        wait_for(lambda: ed.nvim.current.buffer[row][col : col + 5] == "total", what="the applied edit", diag=ed.diag)
    assert sites == [(3, 8), (4, 19), (5, 11)]
    # nothing more to suggest: the server answers the chained request with no edits
    wait_for(lambda: len(sent(ed, "textDocument/copilotInlineEdit")) >= 4, what="the last request")
    time.sleep(0.3)
    assert next_edit(ed) is None
    ed.nvim.command("write")
    assert path.read_text() == RENAMED
    ed.nvim.input("u")
    wait_for(lambda: ed.nvim.current.buffer[5] == "    return count", what="one undo", diag=ed.diag)
    assert "\n".join(ed.nvim.current.buffer[:]) + "\n" == RENAMED.replace("return total", "return count")
    # what the editor told the server about the three edits
    shown = sent(ed, "textDocument/didShowInlineEdit")
    accepted = [p for p in sent(ed, "workspace/executeCommand") if p["command"] == "sparkls.acceptInlineEdit"]
    assert len(shown) >= 3 and len(accepted) == 3
    status = wait_for(
        lambda: (s := ed.lua("local l = require('sparkls.lsp'); return l.status[l.client(0).id]"))
        and s.get("suggestions", {}).get("nextEdit", {}).get("accepted") == 3 and s,
        what="sparkls/status counting the accepts", diag=ed.diag,
    )
    assert status["suggestions"]["nextEdit"]["acceptRate"] == 1.0
    assert "next edits: 3 shown, 3 accepted, 0 in part, 0 ended unaccepted, accept rate 100%" in ed.lua(
        "return require('sparkls.command').status_text()"
    )


def test_stale_next_edit_is_never_applied(session):
    """Ensure a next edit drawn for one version of the buffer is cleared, not applied, once the text changes."""
    ed = session
    open_file(ed, "stale.py", SRC)
    ed.nvim.api.win_set_cursor(0, [2, 4])
    ed.nvim.input("ciwtotal<Esc>")
    wait_for(lambda: next_edit(ed), what="a drawn next edit", diag=ed.diag)
    ed.nvim.api.buf_set_lines(0, 0, 0, True, ["# header"])  # the text moves under the edit
    assert ed.lua("return require('sparkls.next_edit').apply()") is False
    assert ed.lua("return require('sparkls').next_edit()") is False  # no jump to it either
    assert ed.nvim.current.buffer[4] == "        count += item.price  # count each"


def test_partial_accept_asks_for_nothing_new(session):
    """Ensure <M-w> accepts a word, keeps the rest shown and sends no new completion request while the rest matches;
    then a mismatch ends it as typed past."""
    ed = session
    open_file(ed, "partial.py", DRAFT)
    ed.wait_indexed()
    ed.nvim.api.win_set_cursor(0, [5, 4])
    ed.nvim.input("Aret")
    wait_for(lambda: (g := ed.ghost()) and g[2] == RETURN[3:], what="the whole ghost", diag=ed.diag)
    before = len(sent(ed, "textDocument/inlineCompletion"))
    ed.nvim.input("<M-w>")
    wait_for(lambda: ed.line() == "    return", what="accepted word", diag=ed.diag)
    wait_for(lambda: (g := ed.ghost()) and g[2] == RETURN[len("return"):], what="the rest", diag=ed.diag)
    time.sleep(0.5)  # well past the plugin's 30 ms debounce
    assert len(sent(ed, "textDocument/inlineCompletion")) == before
    assert ed.ghost()[2] == RETURN[len("return"):]
    accepts = [p["arguments"][0] for p in sent(ed, "workspace/executeCommand") if p["command"] == "sparkls.accept"]
    assert [(a["kind"], a["acceptedChars"]) for a in accepts] == [("word", 3)]
    assert sent(ed, "textDocument/didShowCompletion")
    ed.nvim.input("X")
    dismissed = wait_for(lambda: sent(ed, "sparkls/didDismiss"), what="didDismiss", diag=ed.diag)
    assert dismissed[0]["reason"] == "typedPast"
    status = wait_for(
        lambda: (s := ed.lua("local l = require('sparkls.lsp'); return l.status[l.client(0).id]"))
        and s.get("suggestions", {}).get("completion", {}).get("partiallyAccepted") and s,
        what="sparkls/status counting the partial accept", diag=ed.diag,
    )
    assert status["suggestions"]["completion"]["shown"] >= 1
