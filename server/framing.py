"""LSP base-protocol framing that survives bad frames: ``Content-Length`` headers in, JSON bodies out.

pygls's reader matches ``Content-Length: N\\r\\n`` exactly and trusts ``N``: one lower-case
header or one wrong length leaves it reading bodies from the middle of frames forever, and
``Content-Length: 10**12`` makes it try to read a terabyte. :class:`Framer` instead

- accepts header names in any case and skips other headers and garbage between frames;
- caps a body at :data:`MAX_BODY` bytes (a larger frame is reported and its bytes skipped);
- resynchronises after a wrong length: a length too long is cut where the next header starts
  (``Content-Length: N`` followed by a raw line break can never occur inside a JSON body, since
  JSON strings cannot hold raw line breaks), and a body that does not parse is retried together
  with the bytes up to the next header (a length too short, e.g. counted in characters);
- flags HTTP (a request line, ``Host:`` or ``Origin:``): a browser's cross-site POST must never
  be taken for an editor's frame.

Memory stays bounded by :data:`MAX_BODY` plus a small window, whatever arrives.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

MAX_BODY = 64 << 20  # no LSP message comes near this; a 10 MB document is ~10 MB of JSON
MAX_HEADER = 8192  # bytes of headers (or garbage) kept while waiting for a header's end
_HEADER = re.compile(rb"content-length[ \t]*:[ \t]*(\d{1,20})[ \t]*\r?\n", re.IGNORECASE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_HTTP = re.compile(
    rb"(?:^|[\r\n])(?:(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|CONNECT|TRACE) \S+ HTTP/\d"
    rb"|(?:host|origin)[ \t]*:)",
    re.IGNORECASE,
)
PARSE_ERROR, INVALID_REQUEST = -32700, -32600
_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,15}|"(?:[^"\\\r\n]|\\.){0,200}")')


@dataclass(frozen=True)
class Frame:
    """A decoded message (any JSON value; the caller checks it is a JSON-RPC object)."""

    message: Any


@dataclass(frozen=True)
class BadFrame:
    """A frame that could not be used. ``code`` is the JSON-RPC error to answer with
    (None: nothing to answer); ``id`` the request id when it could be read."""

    reason: str
    code: int | None = None
    id: Any = None
    http: bool = False  # the bytes were HTTP, not LSP


class Framer:
    """Feed bytes, get :class:`Frame` and :class:`BadFrame` events (see the module docstring)."""

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self.max_body = max_body
        self.buf = bytearray()
        self.skipped = 0  # bytes of garbage skipped between frames (whitespace not counted)
        self.pending: int | None = None  # the length of the body being read (its header is consumed)
        self.scanned = 0  # bytes of that body already searched for a following header

    def feed(self, data: bytes) -> Iterator[Frame | BadFrame]:
        self.buf += data
        while True:
            event = self._next()
            if event is None:
                return
            yield event

    def _next(self) -> Frame | BadFrame | None:
        buf = self.buf
        if self.pending is None:
            header = _HEADER.search(buf)
            if header is None:
                return self._skip(len(buf) - 64)  # the last bytes may be the start of a header
            end = _HEADER_END.search(buf, header.start())
            if end is None:
                if len(buf) - header.start() > MAX_HEADER:  # a header that never ends
                    del buf[: header.end()]
                    return BadFrame("a header without an end")
                return self._skip(header.start())
            if _HTTP.search(buf, 0, end.start()):
                del buf[: end.end()]
                return BadFrame("an HTTP request, not an LSP frame", http=True)
            self.skipped += len(bytes(buf[: header.start()]).strip())
            length = int(header.group(1))
            del buf[: end.end()]
            if length > self.max_body:
                # The body's bytes follow as garbage, skipped while scanning (never buffered).
                limit = f"over the {self.max_body >> 20} MB limit"
                return BadFrame(f"a frame of {length} bytes ({limit})", INVALID_REQUEST, _peek_id(bytes(buf[:4096])))
            self.pending, self.scanned = length, 0
        length = self.pending
        # A length too long swallows the next frame's header: cut the body where it starts.
        # Only bytes not searched yet are searched (with an overlap for a header split between reads).
        following = _HEADER.search(buf, max(0, self.scanned - 64), min(len(buf), length + 64))
        self.scanned = len(buf)
        if following is not None and following.start() < length:
            cut = following.start()
        elif len(buf) < length:
            return None  # wait for the rest of the body
        else:
            cut = length
        body = bytes(buf[:cut])
        del buf[:cut]
        self.pending = None
        return self._decode(body)

    def _decode(self, body: bytes) -> Frame | BadFrame:
        try:
            return Frame(json.loads(body))
        except (ValueError, RecursionError):
            pass
        try:  # a length too long by a few bytes: one whole value, then part of the next header
            text = body.decode("utf-8").lstrip()
            value, end = json.JSONDecoder().raw_decode(text)
            self.buf[:0] = text[end:].encode("utf-8")
            return Frame(value)
        except (ValueError, RecursionError):
            pass
        # A length too short (e.g. counted in characters): the body's tail is in the buffer,
        # up to the next header.
        following = _HEADER.search(self.buf)
        if following is not None and following.start() > 0:
            try:
                value = json.loads(body + bytes(self.buf[: following.start()]))
            except (ValueError, RecursionError):
                pass
            else:
                del self.buf[: following.start()]
                return Frame(value)
        return BadFrame(f"a body that is not JSON ({len(body)} bytes)", PARSE_ERROR)

    def _skip(self, upto: int) -> BadFrame | None:
        """Drop garbage before ``upto``; None: wait for more bytes."""
        if upto <= 0:
            return None
        if _HTTP.search(self.buf, 0, min(len(self.buf), upto + 64)):
            del self.buf[:]
            return BadFrame("an HTTP request, not an LSP frame", http=True)
        self.skipped += len(bytes(self.buf[:upto]).strip())
        del self.buf[:upto]
        return None


def _peek_id(data: bytes) -> Any:
    m = _ID.search(data)
    if m is None:
        return None
    try:
        return json.loads(m.group(1))
    except ValueError:
        return None


def encode(message: dict) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
