"""``sparkls backends list|calibrate``, ``sparkls simulate`` and ``sparkls race``."""

import json

import pytest

from sparkls.plugins import registry as host_mod
from sparkls.server.cli import main
from sparkls.server.cli.common import count


@pytest.fixture(autouse=True)
def builtins_only(monkeypatch):
    """Each test gets a fresh process-wide host that loads only the built-ins."""
    monkeypatch.setenv("SPARKLS_DISABLE_PLUGIN_AUTOLOAD", "1")
    host_mod.reset()
    yield
    host_mod.reset()


@pytest.mark.parametrize("text, value", [("120B", 120e9), ("5.1B", 5.1e9), ("1.2e11", 1.2e11), ("32k", 32e3), ("7", 7)])
def test_counts_take_suffixes(text, value):
    """Ensure counts parse as plain numbers, exponents or with a suffix."""
    assert count(text) == pytest.approx(value)


def test_simulate_json_lines(capsys):
    """Ensure --json prints one parseable object per backend with the documented keys."""
    argv = ["simulate", "--prompt-tokens", "2000", "--new-tokens", "100", "--params", "70B", "--bytes-per-param", "fp8",
            "--chips", "8", "--concurrency", "4", "--spec-accept", "1.5", "--json"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # `local` serves its own model, not a 70B one: it is left out of a modelled comparison.
    assert {r["backend"] for r in rows} == {"cerebras-wse3", "nvidia-blackwell", "nvidia-hopper"}
    for r in rows:
        assert {"backend", "ttft_s", "tokens_per_s", "total_s", "chips", "ttft_s_p10", "tokens_per_s_p90"} <= r.keys()
        assert r["ttft_s"] > 0 and r["total_s"] >= r["ttft_s"]
        assert r["ttft_s_p10"] <= r["ttft_s_p50"] <= r["ttft_s_p90"] and not r["measured"]


def test_simulate_local_says_what_it_is(capsys):
    """Ensure `local`, asked for by name, is labelled as this machine's own model, measured."""
    argv = ["simulate", "--prompt-tokens", "100", "--new-tokens", "20", "--model", "llama-3.1-70b",
            "--backend", "local,nvidia-hopper"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "local (this machine, SmolLM2-135M, measured)" in out
    assert main(["simulate", "--prompt-tokens", "100", "--new-tokens", "20", "--model", "smollm2-135m", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(r["backend"] == "local" and r["measured"] for r in rows)


def test_simulate_table_with_model_file(capsys):
    """Ensure a built-in model name and a backend variant print a readable table."""
    argv = ["simulate", "--prompt-tokens", "1k", "--new-tokens", "50", "--model", "llama-3.1-8b",
            "--backend", "nvidia-hopper:h200,cerebras-wse3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Llama 3.1 8B" in out and "nvidia-hopper:h200" in out and "local" not in out


def test_simulate_plot_needs_matplotlib_or_writes_png(tmp_path, capsys):
    """Ensure --plot writes a PNG, or says clearly how to get matplotlib."""
    png = tmp_path / "t.png"
    rc = main(["simulate", "--prompt-tokens", "100", "--new-tokens", "20", "--model", "llama-3.1-8b", "--plot", str(png)])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert rc == 1 and "pip install 'sparkls[plot]'" in capsys.readouterr().err
    else:
        assert rc == 0 and png.read_bytes()[:4] == b"\x89PNG"


def test_simulate_errors_are_messages(capsys):
    """Ensure an unknown backend or missing model is a message and exit code, not a traceback."""
    assert main(["simulate", "--prompt-tokens", "1", "--new-tokens", "1", "--model", "llama-3.1-8b", "--backend", "nope"]) == 2
    assert "not installed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--prompt-tokens", "1", "--new-tokens", "1"])


def test_backends_list_and_calibrate(capsys):
    """Ensure list shows each backend's availability and source, and calibrate passes."""
    assert main(["backends", "list", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["nvidia-blackwell"]["available"] and rows["nvidia-blackwell"]["source"].startswith("sparkls")
    assert main(["backends", "calibrate"]) == 0
    out = capsys.readouterr().out
    assert "within 25%" in out and "independent-measured" in out and "holdout" in out
