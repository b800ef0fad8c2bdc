"""``sparkls complete FILE:LINE:COL``: print the completion at one position, without an editor."""

from __future__ import annotations

import argparse
import sys

from sparkls.server.cli.common import SERVER_LOGS, parse_position


def add_to(sub, common: argparse.ArgumentParser) -> None:
    complete = sub.add_parser("complete", parents=[common], help="print the completion at FILE:LINE:COL (1-based)")
    complete.add_argument("position", metavar="FILE:LINE:COL")
    complete.add_argument("--workspace", help="folder to index for context (default: the file's folder)")
    complete.add_argument("--engine", choices=["auto", "ngram", "neural"], default="auto")
    complete.set_defaults(run=run, logs=SERVER_LOGS)


def run(args: argparse.Namespace) -> int:
    from sparkls.server.offline import complete_at

    path, line, col = parse_position(args.position)
    text = complete_at(path, line, col, workspace=args.workspace, engine=args.engine)
    sys.stdout.write(text + ("\n" if text else ""))
    return 0 if text else 1
