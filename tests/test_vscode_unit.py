"""The VS Code extension's unit tests (stream assembly, inline middleware, settings, status), run by node."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from vscode.harness import EXTENSION, missing


def test_extension_unit_tests_pass() -> None:
    """Ensure `npm test` in editors/vscode (tsc, then node's test runner) passes."""
    if shutil.which("npm") is None:
        missing("npm is not installed")
    if not (EXTENSION / "node_modules").is_dir():
        missing("editors/vscode/node_modules is missing (npm ci)")
    done = subprocess.run(["npm", "test"], cwd=EXTENSION, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert done.returncode == 0, f"npm test failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    assert "# fail 0" in done.stdout
