"""What the LSP benches play: VS Code's recorded capabilities (tests/traces/vscode.jsonl) and the repository's
fixture workspace, through the test client in sparkls.server.testing."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lsprotocol import types

from sparkls.server.testing.client import SERVE, EditorClient, recorded_capabilities, start_server as _start_server
from sparkls.server.testing.client import stop_server  # noqa: F401  (re-exported for the benches)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PROJECT = ROOT / "tests" / "fixtures" / "project"
VSCODE = recorded_capabilities(ROOT / "tests" / "traces" / "vscode.jsonl")
# VS Code as the sparkls extension runs it: opted in to streamed ghost text (docs/protocol.md).
VSCODE_STREAMING = recorded_capabilities(
    ROOT / "tests" / "traces" / "vscode.jsonl", experimental={"sparkls": {"inlineCompletionStream": True}}
)


async def start_server(
    capabilities: types.ClientCapabilities = VSCODE,
    options: dict | None = None,
    root: Path = FIXTURE_PROJECT,
    command: Sequence[str] = SERVE,
) -> tuple[EditorClient, types.InitializeResult]:
    return await _start_server(capabilities, root, options, command)
