"""``sparkls record --out TRACE.jsonl [-- SERVER COMMAND]``: proxy an editor's session and trace it."""

from __future__ import annotations

import argparse

from sparkls.server.cli.common import SERVER_LOGS


def add_to(sub, common: argparse.ArgumentParser) -> None:
    # The server command comes after `--` (default: this sparkls's `serve`); main() splits it off.
    record = sub.add_parser("record", parents=[common],
                            help="proxy an editor's stdio to a server and write the session as a trace")
    record.add_argument("--out", required=True, metavar="TRACE.jsonl", help="where to write the trace")
    record.add_argument("--redact", action="store_true", help="replace code in the trace by same-shape placeholders")
    record.set_defaults(run=run, logs=SERVER_LOGS)


def run(args: argparse.Namespace) -> int:
    from sparkls.server.testing.record import main as record_main  # test tooling: imported only when used

    return record_main(args.out, args.server, args.redact)
