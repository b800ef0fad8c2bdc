"""How `sparkls serve` talks to its editor: stdio, or one authenticated TCP / Unix-socket connection.

Every transport reads through :class:`~sparkls.server.framing.Framer` (bad frames are answered
or logged and skipped, never fatal) and hands messages to the protocol. TCP mode trusts one
connection only: the first that sends ``initialize`` with the token printed at start
(``initializationOptions.token``); a connection that speaks HTTP (a browser's cross-site POST),
sends anything else first or arrives while the editor is connected is closed without touching
the server. A Unix socket is created with mode 0600 (the file system authenticates) and also
serves one connection. The server ends when its editor's connection ends.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import secrets
import socket
import stat
import sys
import threading
from typing import Any, Awaitable, Callable

from pygls.io_ import StdoutWriter
from pygls.protocol import JsonRPCProtocol

from sparkls.server.framing import BadFrame, Frame, Framer, encode
from sparkls.server.user_config import is_loopback_host

log = logging.getLogger("sparkls")
TOKEN_ENV = "SPARKLS_TCP_TOKEN"  # a launcher may choose the token instead of reading it from stdout
CHUNK = 1 << 16


def dispatch(protocol: JsonRPCProtocol, event: Frame | BadFrame, send: Callable[[dict], None]) -> None:
    """Hand one framed message to the protocol, or answer a bad one as JSON-RPC says."""
    if isinstance(event, BadFrame):
        log.warning("skipped %s", event.reason)
        if event.code is not None:
            send(_error(event.id, event.code, f"sparkls skipped {event.reason}"))
        return
    msg = event.message
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or not _valid_shape(msg):
        msg_id = msg.get("id") if isinstance(msg, dict) and isinstance(msg.get("id"), (int, str)) else None
        log.warning("skipped a message that is not JSON-RPC 2.0: %s", _shape(msg))
        if not (isinstance(msg, dict) and "method" not in msg and msg_id is not None):  # not a response
            send(_error(msg_id, -32600, "not a JSON-RPC 2.0 request or notification"))
        return
    try:
        protocol.handle_message(protocol.structure_message(msg))
    except Exception as exc:  # one bad message must not end the server
        log.exception("could not handle %s", msg.get("method", "a response"))
        if "method" in msg and "id" in msg:
            send(_error(msg["id"], -32603, f"internal error: {type(exc).__name__}"))


def _valid_shape(msg: dict) -> bool:
    if "method" in msg:
        return isinstance(msg["method"], str) and (
            "id" not in msg or (isinstance(msg["id"], (int, str)) and not isinstance(msg["id"], bool))
        )
    return "id" in msg and ("result" in msg or "error" in msg)


def _shape(msg: Any) -> str:
    return f"object with keys {sorted(msg)[:8]}" if isinstance(msg, dict) else type(msg).__name__


def _error(msg_id: Any, code: int, message: str) -> dict:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


class _Raw:
    """Writes pre-framed error responses through the protocol's writer."""

    def __init__(self, protocol: JsonRPCProtocol) -> None:
        self.protocol = protocol

    def __call__(self, message: dict) -> None:
        writer = self.protocol.writer
        if writer is not None:
            try:
                writer.write(encode(message))
            except Exception:  # the client is gone
                log.debug("could not send an error response", exc_info=True)


def run(main: Awaitable[Any]) -> None:
    """Run the server's loop until its transport ends or `exit` arrives.

    Not ``asyncio.run``: that waits for the default executor's threads, and a worker stuck in
    a hostile read must not keep the process alive after `exit` (the caller ``os._exit`` s).
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
    except (SystemExit, KeyboardInterrupt):  # pygls's `exit` handler calls sys.exit
        pass


# --- stdio ---------------------------------------------------------------------------------


async def serve_stdio(protocol: JsonRPCProtocol, stdin_fd: int, stdout) -> None:
    protocol.set_writer(StdoutWriter(stdout))
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)

    def reader() -> None:  # a daemon thread: a blocked read never holds up exit
        while True:
            try:
                data = os.read(stdin_fd, CHUNK)
            except OSError:
                data = b""
            asyncio.run_coroutine_threadsafe(queue.put(data), loop).result()
            if not data:
                return

    threading.Thread(target=reader, name="sparkls-stdin", daemon=True).start()
    framer, send = Framer(), _Raw(protocol)
    while data := await queue.get():
        for event in framer.feed(data):
            dispatch(protocol, event, send)
    log.info("the client closed stdin")


# --- TCP and Unix sockets --------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """An address (or a name all of whose addresses are) on this machine only."""
    if is_loopback_host(host.strip("[]")):
        return True
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def new_token() -> str:
    chosen = os.environ.get(TOKEN_ENV, "")
    if chosen and len(chosen) < 16:
        raise SystemExit(f"sparkls: ${TOKEN_ENV} must be at least 16 characters")
    return chosen or secrets.token_urlsafe(24)


class SocketServer:
    """One editor connection at a time, authenticated by ``token`` (None: a 0600 Unix socket)."""

    def __init__(self, protocol: JsonRPCProtocol, token: str | None) -> None:
        self.protocol = protocol
        self.token = token
        self.editor: asyncio.StreamWriter | None = None
        self.done = asyncio.Event()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or "a Unix-socket peer"
        if self.editor is not None:
            log.warning("refused a connection from %s: the editor is already connected", peer)
            writer.close()
            return
        framer = Framer()
        try:
            first = await self._authenticate(reader, writer, framer, peer)
            if first is None:
                return
            if self.editor is not None:  # another connection got in first
                log.warning("refused a connection from %s: the editor is already connected", peer)
                return
            self.editor = writer
            self.protocol.set_writer(writer)
            send = _Raw(self.protocol)
            log.info("editor connected from %s", peer)
            dispatch(self.protocol, first, send)
            while data := await reader.read(CHUNK):
                for event in framer.feed(data):
                    dispatch(self.protocol, event, send)
            log.info("the editor closed the connection")
            self.done.set()
        except (ConnectionError, OSError) as exc:
            log.info("connection from %s ended: %s", peer, exc)
            if self.editor is writer:
                self.done.set()
        finally:
            if self.editor is not writer:
                writer.close()

    async def _authenticate(self, reader, writer, framer: Framer, peer) -> Frame | None:
        """The connection's first message, if it is ``initialize`` carrying the token."""
        while True:
            data = await asyncio.wait_for(reader.read(CHUNK), 30)
            if not data:
                return None
            for event in framer.feed(data):
                if isinstance(event, BadFrame):
                    why = "it spoke HTTP" if event.http else event.reason
                    log.warning("refused a connection from %s: %s", peer, why)
                    return None
                msg = event.message
                params = msg.get("params") if isinstance(msg, dict) else None
                options = params.get("initializationOptions") if isinstance(params, dict) else None
                given = options.pop("token", None) if isinstance(options, dict) else None
                ok = msg.get("method") == "initialize" if isinstance(msg, dict) else False
                if ok and self.token is not None:
                    ok = isinstance(given, str) and hmac.compare_digest(given.encode(), self.token.encode())
                if not ok:
                    log.warning("refused a connection from %s: its first message was not initialize with the token", peer)
                    if isinstance(msg, dict) and isinstance(msg.get("id"), (int, str)):
                        writer.write(encode(_error(msg["id"], -32002, "initialize with initializationOptions.token first")))
                    return None
                return event

    async def serve(self, start: Callable[..., Awaitable[asyncio.AbstractServer]], announce: Callable[[Any], None]) -> None:
        server = await start(self.connection, limit=CHUNK)
        announce(server)
        async with server:
            await self.done.wait()


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse (SystemExit) a bind other machines can reach unless the user asked for it."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise SystemExit(
            f"sparkls: {host} is not a loopback address; anyone who can reach it could drive the server. "
            "Pass --allow-remote to bind it anyway."
        )
    log.warning("listening on %s, which is reachable from other machines: only the token protects it", host)


async def serve_tcp(protocol: JsonRPCProtocol, host: str, port: int) -> None:
    """Serve one editor on ``host:port`` (checked with :func:`check_bind` first)."""
    token = new_token()
    srv = SocketServer(protocol, token)

    def announce(server: asyncio.AbstractServer) -> None:
        bound = server.sockets[0].getsockname()
        # The editor (or its launcher) reads this line: where to connect, and the token to send
        # as initializationOptions.token.
        print(json.dumps({"host": bound[0], "port": bound[1], "token": token}), flush=True)
        log.info("listening on %s:%s (one editor; initialize must carry the printed token)", bound[0], bound[1])

    await srv.serve(lambda cb, **kw: asyncio.start_server(cb, host, port, **kw), announce)


async def serve_unix(protocol: JsonRPCProtocol, path: str) -> None:
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise SystemExit(f"sparkls: {path} exists and is not a socket")
        os.unlink(path)
    srv = SocketServer(protocol, None)
    old = os.umask(0o177)  # created 0600: only this user can connect

    async def start(cb, **kw):
        try:
            return await asyncio.start_unix_server(cb, path, **kw)
        finally:
            os.umask(old)

    def announce(server: asyncio.AbstractServer) -> None:
        os.chmod(path, 0o600)
        print(json.dumps({"socket": path}), flush=True)
        log.info("listening on %s (mode 0600, one editor)", path)

    try:
        await srv.serve(start, announce)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def flush_and_exit(code: int) -> None:
    """Leave now, whatever worker threads are still blocked (a FIFO, a silent engine)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    logging.shutdown()
    os._exit(code)
