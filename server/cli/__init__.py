"""The `sparkls` command: one argparse tree, a module per subcommand.

``serve``, ``complete``, ``record`` and ``replay`` run the language server and its tools;
``backends`` (``list``, ``calibrate``, ``fit``), ``simulate`` and ``race`` the hardware backends.
Each module has ``add_to(subparsers, common)``, which declares its parser and sets ``run``; the
global flags (``common``) are accepted before or after the command (``sparkls -v race …`` and
``sparkls race -v …``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from sparkls.server.cli import backends, complete, race, record, replay, serve, simulate

COMMANDS = (serve, complete, record, replay, backends, simulate, race)


def parser() -> argparse.ArgumentParser:
    # SUPPRESS: a subcommand's parser must not reset a flag given before the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug logging on stderr")
    p = argparse.ArgumentParser(
        prog="sparkls", parents=[common],
        description="Inline code completions computed on this machine, streamed at the cadence of the inference "
                    "hardware you choose.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_to(sub, common)
    return p


def split_server(argv: list[str]) -> tuple[list[str], list[str]]:
    """``sparkls record|replay … -- SERVER COMMAND``: the options, and the server command."""
    if "--" in argv:
        i = argv.index("--")
        if {"record", "replay"} & set(argv[:i]):
            return argv[:i], argv[i + 1 :]
    return argv, []


def configure_logging(verbose: bool, level: int, fmt: str) -> None:
    """Logs go to stderr only (stdout is the LSP wire in ``serve``), with URLs scrubbed of keys."""
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if verbose else level, format=fmt)
    from sparkls.server.lsp_log import ScrubFilter

    for handler in logging.getLogger().handlers:  # URLs in logs lose user:pass@ and ?query
        handler.addFilter(ScrubFilter())
    # pygls logs every message it sends at INFO; editors file stderr lines as errors.
    logging.getLogger("pygls").setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    argv, server_command = split_server(sys.argv[1:] if argv is None else list(argv))
    args = parser().parse_args(argv)
    args.server = server_command
    configure_logging(getattr(args, "verbose", False), *args.logs)
    return args.run(args)
