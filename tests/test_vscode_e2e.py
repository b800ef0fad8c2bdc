"""End to end in real VS Code: code-server runs the packaged extension, Chromium (Playwright) types in a fixture file.

Needs what `.ci/vscode.sh` installs; skips with that hint when it is missing (fails under CI=true instead).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from vscode.harness import REPO, CodeServer, copy_fixture, packaged_extension, tools

pytestmark = pytest.mark.e2e

DRAFT = (
    "def handle_delete(request, store):\n"
    "    payload = request.json()\n"
    "    record = store.delete(payload)\n"
    '    log.info("deleted %s", record.id)\n'
)
TYPED = "    ret"
COMPLETION = 'return {"status": "ok", "id": record.id}'
GHOST = COMPLETION[len("ret"):]  # shown after the cursor; the item's range covers the typed "ret"

# Records every distinct ghost text the editor shows, as it changes (a stream makes it grow).
WATCH_GHOST = """() => {
  window.__ghosts = [];
  const read = () => Array.from(document.querySelectorAll(
      '.editor-instance .monaco-editor .ghost-text-decoration, .editor-instance .monaco-editor .ghost-text'))
    .map((e) => e.textContent).join('').replace(/\\u00a0/g, ' ');
  const t0 = performance.now();
  new MutationObserver(() => {
    const text = read(), last = window.__ghosts[window.__ghosts.length - 1];
    if (!last || last.text !== text) window.__ghosts.push({text, ms: Math.round(performance.now() - t0)});
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture
def vscode(tmp_path: Path):
    t = tools()
    vsix = packaged_extension(t)
    ws = copy_fixture(REPO / "tests" / "fixtures" / "project", tmp_path / "ws")
    (ws / "pkg" / "delete.py").write_text(DRAFT)
    settings = {
        "sparkls.serverPath": str(Path(sys.executable).parent / "sparkls"),
        # A modelled backend slower than local decode, so the stream is paced and its growth visible.
        "sparkls.backend": "nvidia-hopper",
        "sparkls.debounceMs": 0,
    }
    cs = CodeServer(t, tmp_path, ws, settings)
    cs.install(vsix)
    url = cs.start()
    yield cs, url, t
    cs.stop()


def test_ghost_text_streams_then_tab_accepts(vscode) -> None:
    """Ensure the extension shows the server's ghost text in VS Code, lets it grow with the stream, and Tab inserts it."""
    from playwright.sync_api import expect, sync_playwright

    cs, url, t = vscode
    target = cs.workspace / "pkg" / "delete.py"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(t.chromium), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector(".monaco-workbench .explorer-folders-view", timeout=60_000)
            page.keyboard.press("Control+P")
            page.wait_for_selector(".quick-input-widget input", state="visible")
            page.keyboard.type("delete.py")
            page.wait_for_selector(".quick-input-list .monaco-list-row")
            page.keyboard.press("Enter")
            editor = page.locator(".editor-instance .monaco-editor").first
            expect(editor.locator(".view-lines")).to_contain_text("handle_delete", timeout=30_000)
            # The status bar item appears once the extension has started the server.
            status = page.locator(".statusbar-item", has_text="nvidia-hopper")
            expect(status.first).to_be_visible(timeout=30_000)
            editor.locator(".view-lines").click()
            page.keyboard.press("Control+End")
            page.evaluate(WATCH_GHOST)
            page.keyboard.type(TYPED, delay=40)
            ghost = editor.locator(".ghost-text-decoration, .ghost-text")
            expect(ghost.first).to_be_visible(timeout=20_000)
            deadline = time.monotonic() + 20
            while _ghost(ghost) != GHOST and time.monotonic() < deadline:
                time.sleep(0.05)
            page.screenshot(path=str(cs.root / "ghost.png"))
            ghosts = page.evaluate("window.__ghosts")
            seen = [g["text"] for g in ghosts if g["text"]]
            print(f"ghost texts shown (ms after typing began): {[(g['ms'], g['text']) for g in ghosts]}")
            assert _ghost(ghost) == GHOST, f"ghost text {_ghost(ghost)!r}; seen {seen}\n{cs.extension_log()}"
            if "streamed ghost text on" in cs.extension_log():
                # Each text the editor showed is a prefix of the next: the ghost text grew, and never went back.
                grown = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
                assert len(grown) >= 2, f"the ghost text did not grow with the stream: {seen}"
                assert all(b.startswith(a) for a, b in zip(grown, grown[1:])), grown
                # The status bar shows the live rate from `sparkls/status`.
                expect(status.first).to_contain_text("tok/s", timeout=5_000)
            page.keyboard.press("Tab")
            expect(ghost).to_have_count(0)
            page.keyboard.press("Control+S")
            want = DRAFT + "    " + COMPLETION
            deadline = time.monotonic() + 10
            while not target.read_text().startswith(want) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            browser.close()
    assert target.read_text().startswith(want), f"{target.read_text()!r}\n{cs.extension_log()}"


def _ghost(locator) -> str:
    return "".join(locator.all_inner_texts()).replace("\u00a0", " ")
