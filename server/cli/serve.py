"""``sparkls serve``: the language server, on stdio, TCP or a Unix socket."""

from __future__ import annotations

import argparse
import sys

from sparkls.server.cli.common import SERVER_LOGS


def add_to(sub, common: argparse.ArgumentParser) -> None:
    serve = sub.add_parser("serve", parents=[common], help="run the language server (stdio unless --tcp)")
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
    serve.set_defaults(run=run, logs=SERVER_LOGS)


def run(args: argparse.Namespace) -> int:
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
