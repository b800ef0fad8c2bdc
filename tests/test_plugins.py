"""The plugin host: discovery through real distributions, and failure isolation."""

import logging
from pathlib import Path

import pytest

from sparkls.plugins.api import ModelSpec, Request
from sparkls.plugins import registry
from sparkls.plugins.registry import AUTO, DISABLE_AUTOLOAD, SELECT, Host

SITE = Path(__file__).parent / "fixtures" / "plugins" / "site"
REQ = Request(model=ModelSpec(name="m", params=8e9, layers=32, hidden=4096), prompt_tokens=100, new_tokens=50)


@pytest.fixture
def host(monkeypatch, caplog):
    """A host that sees the misbehaving fixture distribution (a dist-info on sys.path)."""
    monkeypatch.syspath_prepend(str(SITE))
    with caplog.at_level(logging.ERROR):
        yield Host(autoload=True)


def test_builtins_come_from_the_entry_point_group(monkeypatch):
    """Ensure the built-in backends are found through entry points of the sparkls distribution."""
    monkeypatch.setenv(DISABLE_AUTOLOAD, "1")
    h = Host()
    for name in ("local", "cerebras-wse3", "nvidia-blackwell", "nvidia-hopper"):
        assert h.entries[name].available and h.entries[name].dist.startswith("sparkls "), name
    assert h.names()[0] == "local"  # highest priority: the default when nothing is configured


def test_failed_import_is_reported_not_raised(host, caplog):
    """Ensure a plugin that fails to import is unavailable, with the reason, and logged."""
    e = host.entries["fixture-broken-import"]
    assert not e.available and "import failed: ModuleNotFoundError" in e.reason
    assert e.dist == "sparkls-fixture-plugins 1.0"
    assert any("fixture-broken-import" in r.getMessage() for r in caplog.get_records("setup"))


@pytest.mark.parametrize("name", ["fixture-nan", "fixture-backwards"])
def test_nonsense_timelines_fail_the_probe(host, name):
    """Ensure NaN or non-monotonic timelines mark a backend unavailable, and it falls back to local."""
    assert "probe failed: InvalidTimeline" in host.entries[name].reason
    assert host.get(name).name == "local"
    with pytest.raises(ValueError, match="InvalidTimeline"):
        host.get(name, strict=True)


def test_unviable_backend_says_why(host):
    """Ensure a priority that raises RuntimeError makes the backend not viable, with its reason."""
    assert "needs an accelerator" in host.entries["fixture-unviable"].reason


def test_run_time_exception_falls_back_to_local(host):
    """Ensure a backend raising at run time yields local's timeline and is then marked unavailable."""
    assert host.entries["fixture-raises-later"].available
    tl = host.timeline("fixture-raises-later", REQ)
    assert tl.backend == "local" and len(tl.token_times) == 50
    assert not host.entries["fixture-raises-later"].available
    assert "ZeroDivisionError" in host.entries["fixture-raises-later"].reason


def test_well_behaved_plugin_and_name_clash(host):
    """Ensure a good plugin works, and one reusing a built-in name cannot replace it."""
    assert host.timeline("fixture-good", REQ).backend == "fixture-good"
    assert host.get("local").__module__ == "sparkls.backends.local"
    clash = host.entries["local (sparkls-fixture-plugins 1.0)"]
    assert not clash.available and "name clash" in clash.reason


def test_autoload_switch_keeps_only_builtins(monkeypatch):
    """Ensure SPARKLS_DISABLE_PLUGIN_AUTOLOAD loads built-ins only and lists the rest as off."""
    monkeypatch.syspath_prepend(str(SITE))
    monkeypatch.setenv(DISABLE_AUTOLOAD, "1")
    h = Host()
    assert h.entries["cerebras-wse3"].available
    assert "autoload off" in h.entries["fixture-good"].reason
    assert h.get("fixture-good").name == "local"


def test_unknown_backend_and_bad_variant_fall_back():
    """Ensure an unknown name or variant yields local, or a clear error when strict."""
    h = Host(autoload=False)
    assert h.get("no-such-backend").name == "local"
    assert h.get("nvidia-hopper:h999").name == "local"
    with pytest.raises(ValueError, match="no variant 'h999'"):
        h.get("nvidia-hopper:h999", strict=True)
    assert h.get("nvidia-hopper:h200").spec.hbm_bw == 4.8e12


def test_auto_picks_the_environment_then_the_highest_priority(monkeypatch):
    """Ensure "auto" means $SPARKLS_BACKEND, else the viable backend of highest priority, and a name wins over both."""
    monkeypatch.delenv(SELECT, raising=False)
    h = Host(autoload=False)
    assert h.choose(AUTO) == h.choose(None) == h.get().name == "local"
    h.entries["cerebras-wse3"].priority = 20.0  # a backend that claims more than local's 10
    assert h.choose(AUTO) == "cerebras-wse3" and h.get("auto").name == "cerebras-wse3"
    monkeypatch.setenv(SELECT, "nvidia-hopper")
    assert h.choose(AUTO) == "nvidia-hopper" and h.get().name == "nvidia-hopper"
    assert h.choose("nvidia-blackwell") == "nvidia-blackwell"


def test_disabled_backends_are_never_started_and_come_back(monkeypatch):
    """Ensure a disabled backend is not imported or offered, local cannot be disabled, and enabling starts it."""
    monkeypatch.syspath_prepend(str(SITE))
    h = Host(autoload=True, disabled=["fixture-good", "local"])
    good = h.entries["fixture-good"]
    assert not good.available and good.reason == "disabled in settings" and good.factory is None
    assert h.get("fixture-good").name == "local" and h.entries["local"].available
    assert "fixture-good" not in h.names()
    h.set_disabled(["nvidia-hopper"])
    assert good.available and h.timeline("fixture-good", REQ).backend == "fixture-good"
    assert not h.entries["nvidia-hopper"].available and h.get("nvidia-hopper").name == "local"
    h.set_disabled([])
    assert h.entries["nvidia-hopper"].available and h.get("nvidia-hopper").name == "nvidia-hopper"


def test_disabled_setting_reaches_the_process_wide_host():
    """Ensure registry.set_disabled applies before the shared host is built and to it once it is."""
    try:
        registry.reset()
        registry.set_disabled(["cerebras-wse3"])
        assert registry.host().entries["cerebras-wse3"].reason == "disabled in settings"
        registry.set_disabled([])
        assert registry.host().entries["cerebras-wse3"].available
    finally:
        registry.set_disabled([])
        registry.reset()


def test_the_contract_and_the_backends_import_only_what_they_may():
    """Ensure plugins/ imports nothing else from sparkls, and backends/ only sparkls.plugins (and itself)."""
    import ast

    root = Path(__file__).parents[1]
    allowed = {"plugins": ("sparkls.plugins",), "backends": ("sparkls.plugins", "sparkls.backends")}
    for folder, prefixes in allowed.items():
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                for name in names:
                    assert not name.startswith("sparkls") or name.startswith(prefixes), f"{path}: imports {name}"
