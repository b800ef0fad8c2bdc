"""What a Neovim user sees: keystroke → first ghost text → whole ghost, per hardware backend.

    .venv/bin/python bench/typing_latency.py [--nvim 0.11|0.12] [--trials 5] [--backends local,cerebras-wse3,...]

A real headless Neovim (the PyPI wheel) with editors/nvim runs `sparkls serve` on a copy of the
fixture workspace. Each trial types `ret` at the end of a handler (one `nvim_input`, as a quick
typist) and times, inside Neovim with `vim.uv.hrtime()`, from the TextChangedI of the last key to
the first `User SparklsGhost` render and to the render of the whole suggestion. The reference, in
the same Neovim and the same run, is a request the server rejects at once (`textDocument/hover`,
not served): the cost of Neovim's LSP client plus the stdio round trip. Figures include the
plugin's 30 ms debounce and the server's adaptive one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from nvim.harness import PLUGIN, SERVER_CMD, Editor, copy_project, wait_for  # noqa: E402
from handler_draft import DRAFT, RETURN  # noqa: E402

SPY = """
local final = ...
_G.marks = {}
vim.api.nvim_create_autocmd('TextChangedI', { callback = function()
  _G.marks.key = vim.uv.hrtime() end })
vim.api.nvim_create_autocmd('User', { pattern = 'SparklsGhost', callback = function(ev)
  if ev.data.text == '' then return end
  local now = vim.uv.hrtime()
  _G.marks.renders = (_G.marks.renders or 0) + 1
  _G.marks.first = _G.marks.first or now
  if ev.data.full == final then _G.marks.full = _G.marks.full or now end
end })
"""
HOVER = """
local c = vim.lsp.get_clients({ name = 'sparkls' })[1]
local t = vim.uv.hrtime()
_G.hover_ms = nil
c:request('textDocument/hover', vim.lsp.util.make_position_params(0, c.offset_encoding), function()
  _G.hover_ms = (vim.uv.hrtime() - t) / 1e6 end, 0)
"""


def trial(ed: Editor, path: Path) -> dict:
    path.write_text(DRAFT)
    ed.nvim.command(f"edit! {path}")
    wait_for(ed.client_ready, what="client")
    ed.lua("_G.marks = {}")
    ed.nvim.api.win_set_cursor(0, [5, 4])
    ed.nvim.input("Aret")
    m = wait_for(lambda: (m := ed.lua("return _G.marks")).get("full") and m, timeout=30, what="whole ghost")
    ed.nvim.input("<Esc>")
    ed.nvim.command("silent! %bwipeout!")
    return {
        "first": (m["first"] - m["key"]) / 1e6,
        "full": (m["full"] - m["key"]) / 1e6,
        "renders": m["renders"],
    }


def hover_ms(ed: Editor) -> float:
    ed.lua(HOVER)
    return wait_for(lambda: ed.lua("return _G.hover_ms"), what="hover answer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nvim", choices=["0.11", "0.12"], default="0.11")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--backends", default="local,cerebras-wse3,nvidia-blackwell,nvidia-hopper")
    ap.add_argument("--served-model", default="llama-3.1-70b")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        project = copy_project(home / "project")
        ed = Editor(args.nvim, home / "home", rtp=[PLUGIN])
        try:
            ed.lua(
                "require('sparkls').setup(...)",
                {"cmd": SERVER_CMD, "settings": {"served_model": args.served_model, "model": {"engine": "ngram"}}},
            )
            ed.lua(SPY, RETURN)
            ed.nvim.command(f"edit {project / 'pkg' / 'handlers.py'}")
            wait_for(ed.client_ready, what="client")
            ed.wait_indexed()
            version = ed.nvim.api.exec2("version", {"output": True})["output"].strip().splitlines()[0]
            print(f"{version}, served model {args.served_model}, {args.trials} trials each")
            print(f"{'backend':<18}{'first ghost p50':>17}{'whole ghost p50':>17}{'renders':>9}{'hover ref p50':>15}")
            for n, backend in enumerate(args.backends.split(",")):
                ed.lua("_G.selected = nil; require('sparkls').select_backend(..., function(err, r) _G.selected = err and 'error' or r.backend end)", backend)
                if wait_for(lambda: ed.lua("return _G.selected"), what="backend switch") != backend:
                    print(f"{backend:<18}unknown backend")
                    continue
                rows, refs = [], []
                for i in range(args.trials):
                    rows.append(trial(ed, project / "pkg" / f"typing_{n}_{i}.py"))
                    ed.nvim.command(f"edit {project / 'pkg' / 'handlers.py'}")
                    wait_for(ed.client_ready, what="client")
                    refs.append(hover_ms(ed))
                med = lambda k: statistics.median(r[k] for r in rows)  # noqa: E731
                print(
                    f"{backend:<18}{med('first'):>14.1f} ms{med('full'):>14.1f} ms"
                    f"{med('renders'):>9.0f}{statistics.median(refs):>12.2f} ms"
                )
        finally:
            ed.close()


if __name__ == "__main__":
    main()
