"""The `sparkls` command: one argparse tree, every command in --help, global flags anywhere."""

import json
import subprocess
import sys

import pytest

from sparkls.server import cli

COMMANDS = ["serve", "complete", "record", "replay", "backends", "simulate", "race"]
SIMULATE = ["simulate", "--prompt-tokens", "100", "--new-tokens", "8", "--model", "llama-3.1-8b", "--json"]


def test_help_lists_every_command(capsys):
    """Ensure `sparkls --help` lists every subcommand, the backend tools included."""
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line[:4] == "    " and line[4:5].isalpha()]
    assert listed == COMMANDS


@pytest.mark.parametrize("argv", [
    ["-v", "race", "x.py:1:1"], ["race", "x.py:1:1", "-v"], ["race", "-v", "x.py:1:1"],
    ["-v", "backends", "list"], ["backends", "-v", "list"], ["backends", "list", "--verbose"],
    ["serve", "-v"], ["-v", "replay", "t.jsonl", "-q"],
])
def test_verbose_is_accepted_before_or_after_the_command(argv):
    """Ensure -v/--verbose works wherever it stands on the line."""
    args = cli.parser().parse_args(argv)
    assert args.verbose is True and callable(args.run)
    assert getattr(cli.parser().parse_args([a for a in argv if a not in ("-v", "--verbose")]), "verbose", False) is False


def test_verbose_reaches_the_logging_set_up(monkeypatch, capsys):
    """Ensure main() turns on debug logging for a flag given after the command, and runs the command."""
    seen = []
    monkeypatch.setattr(cli, "configure_logging", lambda verbose, level, fmt: seen.append(verbose))
    monkeypatch.setenv("SPARKLS_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert cli.main([*SIMULATE, "-v"]) == 0 and cli.main(SIMULATE) == 0
    assert seen == [True, False]
    assert all(json.loads(line)["ttft_s"] > 0 for line in capsys.readouterr().out.splitlines())


def test_server_command_after_double_dash_is_split_off():
    """Ensure `record|replay … -- SERVER COMMAND` keeps the server's own flags away from sparkls's parser."""
    assert cli.split_server(["-v", "replay", "t.jsonl", "--", "srv", "-v", "--x"]) == (["-v", "replay", "t.jsonl"],
                                                                                     ["srv", "-v", "--x"])
    assert cli.split_server(["race", "x.py:1:1"]) == (["race", "x.py:1:1"], [])


def test_installed_command_takes_global_flags_anywhere():
    """Ensure the real command line (`python -m sparkls.server`) answers the same with -v first or last."""
    env = {"SPARKLS_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"}
    runs = [subprocess.run([sys.executable, "-m", "sparkls.server", *argv], capture_output=True, text=True, env=env,
                           timeout=120) for argv in (["-v", *SIMULATE], [*SIMULATE, "--verbose"])]
    assert [r.returncode for r in runs] == [0, 0], [r.stderr[-500:] for r in runs]
    assert runs[0].stdout == runs[1].stdout and len(runs[0].stdout.splitlines()) == 3
