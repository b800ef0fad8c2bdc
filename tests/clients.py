"""The editors the tests speak as: capabilities recorded from real clients (traces/), and the workspace they open."""

from __future__ import annotations

from pathlib import Path

from sparkls.server.testing.client import recorded_capabilities

HERE = Path(__file__).parent
FIXTURE_PROJECT = HERE / "fixtures" / "project"

VSCODE = recorded_capabilities(HERE / "traces" / "vscode.jsonl")  # inline completion, utf-16
NVIM_011 = recorded_capabilities(HERE / "traces" / "nvim-0.11.jsonl")  # completion items only, utf-8
NVIM_012 = recorded_capabilities(HERE / "traces" / "nvim-0.12.jsonl")  # inline completion, utf-8
# VS Code as the sparkls extension runs it: opted in to streamed ghost text (docs/protocol.md).
VSCODE_STREAMING = recorded_capabilities(
    HERE / "traces" / "vscode.jsonl", experimental={"sparkls": {"inlineCompletionStream": True}}
)
