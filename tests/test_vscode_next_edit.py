"""End to end in real VS Code (code-server + Chromium): next edits with Tab-Tab, and a partial accept that asks the
server for nothing new. The server runs behind a small tee that records the wire, so the test sees every request.

Needs what `.ci/vscode.sh` installs; skips with that hint when it is missing (fails under CI=true instead).
"""

from __future__ import annotations

import json
import re
import stat
import sys
import time
from pathlib import Path

import pytest

from rename_fixture import RENAMED, SRC
from vscode.harness import COMPLETION, DRAFT, GHOST_SELECTOR, REPO, CodeServer, copy_fixture, open_workbench, packaged_extension, tools

pytestmark = pytest.mark.e2e


TEE = '''#!{python}
"""Runs `python -m sparkls.server ARGS`, appending every JSON-RPC frame the editor sends to {log}."""
import json, subprocess, sys, threading
child = subprocess.Popen([{python!r}, "-m", "sparkls.server", *sys.argv[1:]], stdin=subprocess.PIPE)
log = open({log!r}, "a")
src, buf = sys.stdin.buffer, b""
while True:
    chunk = src.read1(65536)
    if not chunk:
        break
    child.stdin.write(chunk)
    child.stdin.flush()
    buf += chunk
    while b"\\r\\n\\r\\n" in buf:
        head, rest = buf.split(b"\\r\\n\\r\\n", 1)
        length = int([l for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
        if len(rest) < length:
            break
        log.write(rest[:length].decode() + "\\n")
        log.flush()
        buf = rest[length:]
child.stdin.close()
sys.exit(child.wait())
'''

# Finds the text drawn struck through (a next edit's old text) in the editor.
STRUCK = """() => Array.from(document.querySelectorAll('.editor-instance .monaco-editor .view-lines span'))
  .filter((e) => e.children.length === 0 && getComputedStyle(e).textDecorationLine.includes('line-through'))
  .map((e) => e.textContent)"""


def sent(log: Path, method: str) -> list[dict]:
    if not log.exists():
        return []
    return [m for m in map(json.loads, log.read_text().splitlines()) if m.get("method") == method]


@pytest.fixture
def vscode(tmp_path: Path):
    """(code-server, wire log, settings to start with) → a function opening a file of the workspace."""
    t = tools()
    vsix = packaged_extension(t)
    ws = copy_fixture(REPO / "tests" / "fixtures" / "project", tmp_path / "ws")
    wire = tmp_path / "wire.jsonl"
    tee = tmp_path / "sparkls-tee"
    tee.write_text(TEE.format(python=sys.executable, log=str(wire)))
    tee.chmod(tee.stat().st_mode | stat.S_IXUSR)
    servers = []

    def start(settings: dict) -> CodeServer:
        base = {"sparkls.serverPath": str(tee), "sparkls.backend": "nvidia-hopper", "sparkls.servedModel": "llama-3.1-405b",
                "sparkls.debounceMs": 0, "sparkls.model.engine": "ngram"}
        cs = CodeServer(t, tmp_path, ws, {**base, **settings})
        cs.install(vsix)
        servers.append(cs)
        return cs

    yield t, ws, wire, start
    for cs in servers:
        cs.stop()


def test_rename_then_tab_tab_in_vscode(vscode) -> None:
    """Ensure renaming one use shows the next rename struck through at the next use; Tab jumps, Tab applies, to the
    last; the saved file has every use in the function renamed (not the string or comment); one undo reverts one edit."""
    from playwright.sync_api import expect, sync_playwright

    t, ws, wire, start = vscode
    target = ws / "pkg" / "rename.py"
    target.write_text(SRC)
    # no ghost text in this test, so Tab is the next edit's (inline suggestions take Tab first)
    cs = start({"editor.inlineSuggest.enabled": False})
    url = cs.start()
    with sync_playwright() as p:
        browser, page, editor = open_workbench(p, t, cs, url, "rename.py", "total_of")
        lines = editor.locator(".view-lines")
        try:
            lines.click()
            page.keyboard.press("Control+Home")
            page.keyboard.press("ArrowDown")
            page.keyboard.press("Home")  # the first non-blank: `count`
            page.keyboard.press("Control+Shift+ArrowRight")
            page.keyboard.insert_text("total")
            expect(lines).to_contain_text("total = 0")
            for remaining in (3, 2, 1):
                deadline = time.monotonic() + 15
                while page.evaluate(STRUCK) != ["count"] and time.monotonic() < deadline:
                    time.sleep(0.05)
                if page.evaluate(STRUCK) != ["count"]:
                    page.screenshot(path=str(cs.root / "no-next-edit.png"))
                assert page.evaluate(STRUCK) == ["count"], f"no next edit drawn\n{cs.extension_log()}"
                assert _text(lines).count("count") == remaining + 2  # + the comment and the string
                page.keyboard.press("Tab")  # jump
                page.keyboard.press("Tab")  # apply
                deadline = time.monotonic() + 10
                while _text(lines).count("count") != remaining + 1 and time.monotonic() < deadline:
                    time.sleep(0.05)
            page.screenshot(path=str(cs.root / "renamed.png"))
            time.sleep(0.5)
            assert page.evaluate(STRUCK) == []  # nothing left to suggest
            page.keyboard.press("Control+S")
            _wait_file(target, RENAMED)
            assert target.read_text() == RENAMED, f"{target.read_text()!r}\n{cs.extension_log()}"
            page.keyboard.press("Control+Z")  # one undo: the last applied edit, whole
            page.keyboard.press("Control+S")
            want = RENAMED.replace("return total", "return count")
            _wait_file(target, want)
            assert target.read_text() == want
        finally:
            browser.close()
    shown = sent(wire, "textDocument/didShowInlineEdit")
    accepts = [m for m in sent(wire, "workspace/executeCommand") if m["params"]["command"] == "sparkls.acceptInlineEdit"]
    assert len(shown) >= 3 and len(accepts) == 3


def test_partial_accept_sends_no_new_request_in_vscode(vscode) -> None:
    """Ensure VS Code's accept-next-word takes a word, keeps the rest shown, and no inlineCompletion request follows."""
    from playwright.sync_api import expect, sync_playwright

    t, ws, wire, start = vscode
    (ws / "pkg" / "delete.py").write_text(DRAFT)
    cs = start({})
    url = cs.start()
    with sync_playwright() as p:
        browser, page, editor = open_workbench(p, t, cs, url, "delete.py", "handle_delete")
        try:
            editor.locator(".view-lines").click()
            page.keyboard.press("Control+End")
            page.keyboard.insert_text("    ret")
            ghost = editor.locator(GHOST_SELECTOR)
            deadline = time.monotonic() + 20
            # Read once per turn: a growing stream is re-rendered, and a second read may fall in between.
            while (shown := _ghost(ghost)) != COMPLETION[3:] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert shown == COMPLETION[3:], f"{shown!r}\n{cs.extension_log()}"
            time.sleep(0.3)
            before = len(sent(wire, "textDocument/inlineCompletion"))
            page.keyboard.press("Control+ArrowRight")  # editor.action.inlineSuggest.acceptNextWord
            expect(editor.locator(".view-lines")).to_contain_text("    return", timeout=5_000)
            deadline = time.monotonic() + 5
            while (shown := _ghost(ghost)) != COMPLETION[len("return"):] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert shown == COMPLETION[len("return"):]
            time.sleep(1.0)  # any request the change would cause has long been sent
            after = sent(wire, "textDocument/inlineCompletion")
            assert len(after) == before, [m["params"]["position"] for m in after[before:]]
            assert _ghost(ghost) == COMPLETION[len("return"):]
        finally:
            browser.close()
    accepts = [m["params"]["arguments"][0] for m in sent(wire, "workspace/executeCommand") if m["params"]["command"] == "sparkls.accept"]
    assert [(a["kind"], a["acceptedChars"]) for a in accepts] == [("word", 3)]
    assert sent(wire, "textDocument/didShowCompletion")


def _text(lines) -> str:
    return lines.inner_text().replace("\u00a0", " ")


def _ghost(locator) -> str:
    return "".join(locator.all_inner_texts()).replace("\u00a0", " ")


def _wait_file(path: Path, want: str) -> None:
    deadline = time.monotonic() + 10
    while path.read_text() != want and time.monotonic() < deadline:
        time.sleep(0.1)
