"""Find what .ci/vscode.sh installed, and run code-server (the real VS Code workbench) for one test.

The recipe and its pitfalls: a fresh user-data dir, extensions dir, XDG dirs and port
per test; no `--stdio` for the server; code-server in its own process group, killed whole.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXTENSION = REPO / "editors" / "vscode"
VSIX = EXTENSION / "sparkls.vsix"
CACHE = Path(os.environ.get("SPARKLS_CI_CACHE", Path.home() / ".cache" / "sparkls-ci"))
TOOLS_FILE = CACHE / "vscode-e2e.json"
SETUP_HINT = "run `bash .ci/vscode.sh` (installs code-server, node 24, chromium, playwright; builds the extension)"

# The fixture document both e2e files type into, the completion the n-gram core gives at its end, and the
# editor's ghost-text elements.
DRAFT = (
    "def handle_delete(request, store):\n"
    "    payload = request.json()\n"
    "    record = store.delete(payload)\n"
    '    log.info("deleted %s", record.id)\n'
)
COMPLETION = 'return {"status": "ok", "id": record.id}'
GHOST_SELECTOR = ".ghost-text-decoration, .ghost-text"

# VS Code settings for a quiet, deterministic workbench (notes §4): no suggest widget to take Tab, no auto-closed
# brackets or quotes to change what is typed, no gallery, telemetry or trust prompts.
WORKBENCH_SETTINGS = {
    "workbench.startupEditor": "none",
    "security.workspace.trust.enabled": False,
    "telemetry.telemetryLevel": "off",
    "extensions.autoUpdate": False,
    "extensions.autoCheckUpdates": False,
    "update.mode": "none",
    "chat.disableAIFeatures": True,
    "editor.inlineSuggest.enabled": True,
    "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
    "editor.suggestOnTriggerCharacters": False,
    "editor.wordBasedSuggestions": "off",
    "editor.autoClosingBrackets": "never",
    "editor.autoClosingQuotes": "never",
    "files.autoSave": "off",
}


def missing(reason: str) -> None:
    """Skip, except in CI (CI=true), where .ci/vscode.sh has installed everything and a skip would hide a break."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI runs .ci/vscode.sh first)")
    pytest.skip(f"{reason}: {SETUP_HINT}")


@dataclass
class Tools:
    node_bin: Path
    code_server: Path
    chromium: Path


def tools() -> Tools:
    """The installed tools, or skip with the reason."""
    if not TOOLS_FILE.is_file():
        missing(f"VS Code e2e tools not installed ({TOOLS_FILE} is missing)")
    raw = json.loads(TOOLS_FILE.read_text())
    found = Tools(Path(raw["node_bin"]), Path(raw["code_server"]), Path(raw["chromium"]))
    for what in ("node_bin", "code_server", "chromium"):
        if not getattr(found, what).exists():
            missing(f"{what} {getattr(found, what)} is missing")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("Python playwright is not installed in this environment")
    return found


def packaged_extension(t: Tools) -> Path:
    """The .vsix, rebuilt first when a source file is newer than it (needs editors/vscode/node_modules)."""
    sources = [EXTENSION / "package.json", *EXTENSION.joinpath("src").rglob("*.ts")]
    newest = max(p.stat().st_mtime for p in sources)
    if VSIX.is_file() and VSIX.stat().st_mtime >= newest:
        return VSIX
    if not (EXTENSION / "node_modules").is_dir():
        missing("editors/vscode/node_modules is missing, so the extension cannot be packaged")
    env = dict(os.environ, PATH=f"{t.node_bin}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(
        "npm run compile && npm run package", shell=True, cwd=EXTENSION, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"packaging the extension failed:\n{done.stdout}\n{done.stderr}"
    return VSIX


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CodeServer:
    """code-server on a free port with its own user data, extensions, XDG dirs and process group."""

    def __init__(self, t: Tools, root: Path, workspace: Path, settings: dict) -> None:
        self.tools, self.root, self.workspace = t, root, workspace
        self.user_data = root / "user-data"
        self.env = dict(
            os.environ,
            PATH=f"{t.node_bin}{os.pathsep}{os.environ['PATH']}",
            **{f"XDG_{k}_HOME": str(root / k.lower()) for k in ("CONFIG", "DATA", "CACHE")},
        )
        (self.user_data / "User").mkdir(parents=True)
        (self.user_data / "User" / "settings.json").write_text(json.dumps({**WORKBENCH_SETTINGS, **settings}, indent=1))
        # code-server's window is a remote one: machine-scoped settings (sparkls.serverPath, …) are read from the
        # machine's settings, as they are over SSH, not from the user's.
        (self.user_data / "Machine").mkdir()
        (self.user_data / "Machine" / "settings.json").write_text(json.dumps(settings, indent=1))
        self.common = ["--user-data-dir", str(self.user_data), "--extensions-dir", str(root / "extensions")]
        self.proc: subprocess.Popen | None = None
        self.log = root / "code-server.log"

    def install(self, vsix: Path) -> None:
        subprocess.run(
            [str(self.tools.code_server), *self.common, "--install-extension", str(vsix)],
            env=self.env, check=True, capture_output=True, timeout=120,
        )

    def start(self) -> str:
        port = free_port()
        self.proc = subprocess.Popen(
            [str(self.tools.code_server), *self.common, "--auth", "none", "--bind-addr", f"127.0.0.1:{port}",
             "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", str(self.workspace)],
            env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"code-server did not start:\n{self.log.read_text()}") from None
                time.sleep(0.2)
        return f"http://127.0.0.1:{port}/?folder={self.workspace}"

    def stop(self) -> None:
        """SIGTERM to the whole group: the agent host, file watcher and extension host outlive the parent."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def extension_log(self) -> str:
        """The extension's LogOutputChannel (server stderr, client errors, traces)."""
        logs = sorted(self.user_data.glob("logs/*/exthost*/sparkls.sparkls/*.log"))
        return "\n".join(f"== {p}\n{p.read_text(errors='replace')}" for p in logs)


def copy_fixture(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


def open_workbench(p, t, cs: CodeServer, url: str, name: str, marker: str):
    """Chromium on code-server at ``url``, the file ``name`` opened (Ctrl+P) until ``marker`` shows and the sparkls
    status item says the server runs and has indexed the workspace; (browser, page, editor)."""
    from playwright.sync_api import expect

    browser = p.chromium.launch(executable_path=str(t.chromium), headless=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    page.wait_for_selector(".monaco-workbench .explorer-folders-view", timeout=60_000)
    page.keyboard.press("Control+P")
    page.wait_for_selector(".quick-input-widget input", state="visible")
    page.keyboard.type(name)
    page.wait_for_selector(".quick-input-list .monaco-list-row")
    page.keyboard.press("Enter")
    editor = page.locator(".editor-instance .monaco-editor").first
    expect(editor.locator(".view-lines")).to_contain_text(marker, timeout=30_000)
    status = page.locator(".statusbar").get_by_role("button", name=re.compile("^sparkls status:"))
    expect(status).to_contain_text("nvidia-hopper", timeout=30_000)  # the server runs
    # The completions the tests expect come from the other files: typing before the index is done would get an
    # empty answer, and the editor asks again only on the next keystroke.
    deadline = time.monotonic() + 30
    while "indexed " not in cs.extension_log() and time.monotonic() < deadline:
        time.sleep(0.1)
    return browser, page, editor
