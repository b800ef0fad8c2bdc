"""The `sparkls` command: `serve` the language server, `complete` one position, and the backend tools."""

from __future__ import annotations

import argparse
import logging
import sys


def _serve(args: argparse.Namespace) -> int:
    from sparkls.server import transport
    from sparkls.server.server import make_server

    server = make_server()
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        transport.check_bind(host, args.allow_remote)
        transport.new_token()  # a bad $SPARKLS_TCP_TOKEN fails here, before the loop
        transport.run(transport.serve_tcp(server.protocol, host, int(port)))
    elif args.socket:
        transport.run(transport.serve_unix(server.protocol, args.socket))
    else:
        wire = sys.stdout.buffer
        sys.stdout = sys.stderr  # a stray print() from any library must not corrupt the LSP stream
        transport.run(transport.serve_stdio(server.protocol, sys.stdin.fileno(), wire))
    transport.flush_and_exit(server.exit_code)  # worker threads stuck in a read must not keep us alive
    return server.exit_code


def _complete(args: argparse.Namespace) -> int:
    from sparkls.server.offline import complete_at

    path, line, col = _parse_position(args.position)
    text = complete_at(path, line, col, workspace=args.workspace, engine=args.engine)
    sys.stdout.write(text + ("\n" if text else ""))
    return 0 if text else 1


def _record(args: argparse.Namespace) -> int:
    from sparkls.server.testing.record import main as record_main

    return record_main(args.out, args.server, args.redact)


def _replay(args: argparse.Namespace) -> int:
    from sparkls.server.testing.replay import main as replay_main

    return replay_main(args.trace, args.server, args.timing, args.root, args.quiet)


def _split_server(argv: list[str]) -> tuple[list[str], list[str]]:
    """``sparkls record|replay … -- SERVER COMMAND``: the options, and the server command."""
    if argv and argv[0] in ("record", "replay") and "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def _parse_position(spec: str) -> tuple[str, int, int]:
    """``FILE:LINE:COL`` with 1-based line and column, as compilers print them."""
    try:
        path, line, col = spec.rsplit(":", 2)
        return path, int(line), int(col)
    except ValueError:
        raise SystemExit(f"sparkls: expected FILE:LINE:COL (1-based), got {spec!r}") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("backends", "simulate", "race"):
        # The backend tools own their argument parsing.
        from sparkls.plugins.cli import main as backends_main

        return backends_main(argv)

    parser = argparse.ArgumentParser(prog="sparkls", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the language server (stdio unless --tcp)")
    listen = serve.add_mutually_exclusive_group()
    listen.add_argument(
        "--tcp", metavar="HOST:PORT",
        help="listen on TCP instead of stdio: one editor, whose initialize must carry the token printed on stdout",
    )
    listen.add_argument("--socket", metavar="PATH", help="listen on a Unix socket (mode 0600) instead of stdio")
    serve.add_argument(
        "--allow-remote", action="store_true",
        help="let --tcp bind an address other machines can reach (only the token protects it)",
    )
    serve.set_defaults(run=_serve)

    complete = sub.add_parser("complete", help="print the completion at FILE:LINE:COL (1-based)")
    complete.add_argument("position", metavar="FILE:LINE:COL")
    complete.add_argument("--workspace", help="folder to index for context (default: the file's folder)")
    complete.add_argument("--engine", choices=["auto", "ngram", "neural"], default="auto")
    complete.set_defaults(run=_complete)

    # `record` and `replay` take the server command after `--` (default: this sparkls's `serve`).
    argv, server_command = _split_server(argv)
    record = sub.add_parser("record", help="proxy an editor's stdio to a server and write the session as a trace")
    record.add_argument("--out", required=True, metavar="TRACE.jsonl", help="where to write the trace")
    record.add_argument("--redact", action="store_true", help="replace code in the trace by same-shape placeholders")
    record.set_defaults(run=_record)

    replay = sub.add_parser("replay", help="play a trace's client side against a fresh server and compare")
    replay.add_argument("trace", metavar="TRACE.jsonl")
    replay.add_argument("--timing", choices=["recorded", "compressed", "fast"], default="recorded")
    replay.add_argument("--root", help="workspace folder to use instead of the recorded root")
    replay.add_argument("-q", "--quiet", action="store_true", help="print only mismatches")
    replay.set_defaults(run=_replay)

    args = parser.parse_args(argv)
    args.server = server_command
    # stdout is the LSP wire in `serve`: logs only ever go to stderr.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from sparkls.server.lsp_log import ScrubFilter

    for handler in logging.getLogger().handlers:  # URLs in logs lose user:pass@ and ?query
        handler.addFilter(ScrubFilter())
    # pygls logs every message it sends at INFO; editors file stderr lines as errors.
    logging.getLogger("pygls").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
