"""The worked example plugin, installed for real with pip into a temporary target."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sparkls.plugins.api import load_model
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
    assert abs(tl.tokens_per_s / 250 - 1) < 0.25  # the fitted figure: 70B at 250 tok/s (Artificial Analysis)


def test_example_reads_the_users_file_and_its_variants(installed, monkeypatch, tmp_path):
    """Ensure the example, through TomlBackend, merges $XDG_CONFIG_HOME's groq-lpu.toml and applies its variants."""
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.delenv("SPARKLS_BACKEND_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    user = tmp_path / "sparkls" / "backends" / "groq-lpu.toml"
    user.parent.mkdir(parents=True)
    user.write_text("network_rtt_s = 0.05\n[variants.far]\nnetwork_rtt_s = 0.4\n")
    h = Host(autoload=True)
    near, far = h.get("groq-lpu", strict=True), h.get("groq-lpu:far", strict=True)
    assert near.spec.network_rtt_s == 0.05 and near.variants == ("far",)
    assert far.spec.network_rtt_s == 0.4 and far.variant == "far"
    req = Request(model=load_model("llama-3.1-8b"), prompt_tokens=100, new_tokens=10)
    assert h.timeline(None, req, backend=far).ttft_s - h.timeline(None, req, backend=near).ttft_s == pytest.approx(0.35)
