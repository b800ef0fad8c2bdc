"""Shared test setup: servers started by tests use the deterministic n-gram core unless a test asks otherwise."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _ngram_engine(request, monkeypatch):
    # Editors started by tests (Neovim, code-server) pass this on to the server they spawn.
    # Tests marked `model` exercise the neural core and leave the choice to the server.
    if request.node.get_closest_marker("model") is None:
        monkeypatch.setenv("SPARKLS_ENGINE", "ngram")
