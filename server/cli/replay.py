"""``sparkls replay TRACE.jsonl [-- SERVER COMMAND]``: play a trace's client side and compare the answers."""

from __future__ import annotations

import argparse

from sparkls.server.cli.common import SERVER_LOGS


def add_to(sub, common: argparse.ArgumentParser) -> None:
    # The server command comes after `--` (default: this sparkls's `serve`); main() splits it off.
    replay = sub.add_parser("replay", parents=[common],
                            help="play a trace's client side against a fresh server and compare")
    replay.add_argument("trace", metavar="TRACE.jsonl")
    replay.add_argument("--timing", choices=["recorded", "compressed", "fast"], default="recorded")
    replay.add_argument("--root", help="workspace folder to use instead of the recorded root")
    replay.add_argument("-q", "--quiet", action="store_true", help="print only mismatches")
    replay.set_defaults(run=run, logs=SERVER_LOGS)


def run(args: argparse.Namespace) -> int:
    from sparkls.server.testing.replay import main as replay_main  # test tooling: imported only when used

    return replay_main(args.trace, args.server, args.timing, args.root, args.quiet)
