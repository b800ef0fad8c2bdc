"""An OpenAI-compatible completions server on loopback that misbehaves on request.

``HostileEngine(mode)`` serves ``POST /v1/completions`` as Server-Sent Events; ``mode`` picks
the behaviour: ``ok`` (a short completion), ``endless_line`` (one SSE line that never ends),
``drip`` (a byte every 2 s), ``endless_tokens`` (tokens forever, no [DONE]), ``big_line``
(one 50 MB line), ``drop`` (two tokens, then the connection is cut), ``silent`` (headers, then
nothing), ``silent_if`` (silent for prompts holding ``SILENT``, else ``ok``). Every request's headers and body are kept in ``requests``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _event(text: str, finish: str | None = None) -> bytes:
    doc = {"choices": [{"text": text, "index": 0, "finish_reason": finish}]}
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


class HostileEngine:
    def __init__(self, mode: str = "ok", text: str = 'return {"status": "ok"}') -> None:
        self.mode = mode
        self.text = text
        self.requests: list[dict] = []
        self.stop = threading.Event()
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                engine.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body or b"{}")})
                try:
                    engine.serve(self)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        w, mode = h.wfile, self.mode
        if mode == "ok":
            for piece in self.text.split(" "):
                w.write(_event(piece + " " if piece != self.text.split(" ")[-1] else piece))
            w.write(_event("", "stop") + b"data: [DONE]\n\n")
        elif mode == "endless_line":
            w.write(b"data: ")
            while not self.stop.is_set():
                w.write(b"x" * 65536)
        elif mode == "big_line":
            w.write(b"data: " + b"y" * (50 << 20) + b"\n\n")
        elif mode == "drip":
            w.write(_event("x"))
            w.flush()
            while not self.stop.is_set():
                w.write(b":")
                w.flush()
                time.sleep(2)
        elif mode == "endless_tokens":
            while not self.stop.is_set():
                w.write(_event("tok "))
        elif mode == "drop":
            w.write(_event("return ") + _event("partial"))
            w.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
        elif mode == "silent":
            w.flush()
            self.stop.wait(120)
        elif mode == "silent_if":  # silent when the prompt holds SILENT, else a short completion
            if "SILENT" in self.requests[-1]["body"].get("prompt", ""):
                w.flush()
                self.stop.wait(120)
            else:
                w.write(_event(self.text) + _event("", "stop") + b"data: [DONE]\n\n")
        w.flush()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
