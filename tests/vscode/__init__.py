"""Helpers for the VS Code tests (tests/test_vscode_*.py)."""
