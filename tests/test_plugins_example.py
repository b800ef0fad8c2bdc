"""The worked example plugin, installed for real with pip into a temporary target."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sparkls.backends.stream import load_model
from sparkls.plugins.api import Request
from sparkls.plugins.registry import Host

EXAMPLE = Path(__file__).parents[1] / "plugins" / "examples" / "groq_lpu"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``pip install --target`` the example (a copy, so the repository stays clean)."""
    tmp = tmp_path_factory.mktemp("groq")
    src = shutil.copytree(EXAMPLE, tmp / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp / "site"), str(src)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot build the example (no index for its build backend?): {done.stderr[-300:]}")
    return tmp / "site"


def test_installed_example_is_discovered_and_runs(installed, monkeypatch):
    """Ensure the example distribution's entry point yields a working groq-lpu backend."""
    monkeypatch.syspath_prepend(str(installed))
    h = Host(autoload=True)
    e = h.entries["groq-lpu"]
    assert e.available, e.reason
    assert e.dist == "sparkls-groq-lpu 0.1.0"
    tl = h.timeline("groq-lpu", Request(model=load_model("llama-3.1-70b"), prompt_tokens=1000, new_tokens=200))
    assert tl.backend == "groq-lpu"
    assert abs(tl.tokens_per_s / 250 - 1) < 0.25  # hardware.md row 24 (AA)
