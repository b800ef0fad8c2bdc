"""An OpenAI-compatible streaming completion client: one request, its real cadence measured.

vLLM, SGLang, TensorRT-LLM, llama.cpp's server and hosted endpoints such as Cerebras Inference
all speak the streaming ``POST /v1/completions`` API: Server-Sent Events (:mod:`.sse`) of
``data: {json}`` with the text delta in ``choices[0].text``, ended by ``data: [DONE]``.
Standard library only (``http.client``):

- :class:`RemoteConfig`: URL, model name, the *name* of the environment variable that holds
  the API key (never the key itself), timeouts and the prompt budget; validated by msgspec.
- :func:`stream_completion`: one streamed request; yields :class:`Chunk` values and fills a
  :class:`Measurement` — real time to first token, gaps between tokens, finish reason.

Every failure — connection refused or lost, a timeout, an HTTP error, an error event or garbage
in the stream — raises :class:`RemoteError` (``kind`` says which). A hostile engine is bounded:
each line is capped (``MAX_LINE_BYTES``), so is the text (``MAX_CHARS_PER_TOKEN`` per token
asked for), and a watchdog thread enforces the first-token, between-token and total deadlines
even against an engine that trickles a byte at a time.

Token counting: one text-carrying chunk counts as one token (llama.cpp, vLLM and SGLang send
one token per chunk by default); an engine that coalesces tokens shows up as fewer, burstier
tokens, which is what a user would see.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Iterator
from urllib.parse import urlsplit

import msgspec

from sparkls.decode.remote.sse import EventTooLarge, events

Pos = Annotated[float, msgspec.Meta(gt=0, le=3600)]
ERROR_BODY_BYTES = 4096
MAX_LINE_BYTES = 256 * 1024  # one SSE line; an OpenAI chunk is a few hundred bytes
MAX_CHARS_PER_TOKEN = 64  # a stream longer than max_tokens * this is cut there
WATCH_S = 0.1  # how often the watchdog looks at the clock


def redact_url(url: str) -> str:
    """``url`` without user:password@, query or fragment (they may hold keys), for messages and logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable url>"
    host = f"[{host}]" if ":" in host else host
    hidden = "?…" if parts.query or parts.fragment else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{hidden}"


class RemoteError(RuntimeError):
    """A remote completion failed; the message says where and why.

    ``kind`` is one of ``config`` (bad settings or a missing API key variable), ``connect``
    (refused, unreachable, DNS), ``timeout`` (connect, first token, gap between tokens, or
    total), ``http`` (a non-200 answer; ``status`` holds the code), ``stream`` (an error event
    from the engine), ``protocol`` (an answer that is not an OpenAI completion stream) or
    ``connection`` (the connection dropped mid-stream).
    """

    def __init__(self, message: str, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


class RemoteConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the served model is and how long to wait for it (server setting ``remote``)."""

    url: str  # http(s)://host:port, .../v1 or the full .../v1/completions
    model: str  # the served model's name, as the engine knows it
    api_key_env: str = ""  # NAME of the environment variable holding the key ("" = no auth)
    connect_timeout_s: Pos = 5.0
    first_token_timeout_s: Pos = 30.0  # request sent -> first token (prefill, queueing)
    read_timeout_s: Pos = 10.0  # longest gap between two chunks
    total_timeout_s: Pos = 120.0
    prompt_chars: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 4000  # tail of the prefix sent as prompt
    temperature: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0.0
    extra: dict[str, Any] = {}  # more body fields for the engine (top_p, seed, ...)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"remote url must be http(s)://host[:port][/path], got {redact_url(self.url)!r}")

    @classmethod
    def from_settings(cls, settings: dict | RemoteConfig) -> RemoteConfig:
        """Validate a settings table; raises :class:`RemoteError` (kind ``config``) naming the problem."""
        if isinstance(settings, RemoteConfig):
            return settings
        if isinstance(settings, dict) and any(k in settings for k in ("api_key", "key", "token")):
            raise RemoteError(
                "remote settings must not hold the API key: put it in an environment variable "
                "and give that variable's name as api_key_env", "config")
        try:
            return msgspec.convert(settings, cls)
        except (msgspec.ValidationError, ValueError) as e:
            raise RemoteError(f"invalid remote settings: {e}", "config") from None

    @property
    def endpoint(self) -> str:
        """The full ``/v1/completions`` URL."""
        u = self.url.rstrip("/")
        if u.endswith("/completions"):
            return u
        return u + ("/completions" if u.endswith("/v1") else "/v1/completions")

    def api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise RemoteError(f"remote: environment variable {self.api_key_env} (api_key_env) is not set", "config")
        return key


@dataclass
class Chunk:
    text: str
    t: float  # seconds since the request started (connect included)
    finish_reason: str | None = None


@dataclass
class Measurement:
    """What one remote request really did. Times are seconds since the request started
    (before connecting, so TTFT includes connect, request upload, queueing and prefill)."""

    endpoint: str
    model: str
    prompt_chars: int = 0
    prompt_tokens_estimate: int = 0  # from the caller's tokenizer; usage wins when reported
    connect_s: float | None = None
    token_times: list[float] = field(default_factory=list)  # one per text-carrying chunk
    pieces: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict | None = None
    end_s: float | None = None
    error: RemoteError | None = None
    cancelled: bool = False

    @property
    def tokens(self) -> int:
        return len(self.token_times)

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def ttft_s(self) -> float | None:
        return self.token_times[0] if self.token_times else None

    @property
    def gaps_s(self) -> list[float]:
        t = self.token_times
        return [b - a for a, b in zip(t, t[1:])]

    @property
    def tokens_per_s(self) -> float | None:
        """Output rate of the stream after the first token (as Artificial Analysis counts it)."""
        t = self.token_times
        span = t[-1] - t[0] if len(t) > 1 else 0.0
        return (len(t) - 1) / span if span > 0 else None

    @property
    def prompt_tokens(self) -> int:
        reported = (self.usage or {}).get("prompt_tokens")
        return int(reported) if isinstance(reported, int) and reported > 0 else self.prompt_tokens_estimate

    def summary(self) -> dict:
        gaps = sorted(self.gaps_s)
        return dict(endpoint=self.endpoint, model=self.model, tokens=self.tokens, ttft_s=self.ttft_s,
                    gap_p50_s=gaps[len(gaps) // 2] if gaps else None, tokens_per_s=self.tokens_per_s,
                    total_s=self.end_s, finish_reason=self.finish_reason,
                    error=str(self.error) if self.error else None)


def _connection(cfg: RemoteConfig) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(cfg.endpoint)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=cfg.connect_timeout_s,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=cfg.connect_timeout_s)
    return conn, path


def _error_message(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:300]
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        doc["error"]["message"] = str(doc["error"].get("message", "")).split("\n\n")[0]  # no tracebacks
    err = doc.get("error", doc.get("detail", doc)) if isinstance(doc, dict) else doc
    if isinstance(err, dict):
        err = err.get("message", err)
    return str(err)[:300]


class _Fired(Exception):
    """The watchdog ended the read (see ``_Watchdog.fired``)."""


class _Watchdog(threading.Thread):
    """Ends a read that would outlive its deadline: socket timeouts bound each ``recv``, but an
    engine sending a byte every few seconds never trips them. Shutting the socket down wakes
    the reading thread at once; ``fired`` says why (or "cancelled")."""

    def __init__(self, sock: socket.socket, total_s: float, cancelled: Callable[[], bool]) -> None:
        super().__init__(name="sparkls-remote-watchdog", daemon=True)
        now = time.monotonic()
        self.sock, self.cancelled = sock, cancelled
        self.total_at = now + total_s
        self.next_at, self.waiting_for = self.total_at, "first token"
        self.fired: str | None = None
        self.finished = threading.Event()

    def expect(self, what: str, within_s: float) -> None:
        """The next event (``what``) must arrive within ``within_s`` seconds."""
        self.next_at, self.waiting_for = time.monotonic() + within_s, what

    def run(self) -> None:
        while not self.finished.wait(WATCH_S):
            now = time.monotonic()
            if self.cancelled():
                self.fired = "cancelled"
            elif now >= self.total_at:
                self.fired = "total"
            elif now >= self.next_at:
                self.fired = self.waiting_for
            if self.fired:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return


def stream_completion(
    cfg: RemoteConfig,
    prompt: str,
    max_tokens: int,
    stop: list[str] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    measurement: Measurement | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Iterator[Chunk]:
    """Stream one completion, yielding a :class:`Chunk` per text delta as it arrives.

    Closing the generator (or ``cancelled()`` turning true) closes the connection, which tells
    the engine to stop generating. Every failure raises :class:`RemoteError`; ``measurement``
    (if given) is filled as the stream goes, and keeps the error.
    """
    m = measurement if measurement is not None else Measurement(cfg.endpoint, cfg.model)
    m.prompt_chars = len(prompt)
    body: dict[str, Any] = {**cfg.extra, "model": cfg.model, "prompt": prompt, "max_tokens": max_tokens,
                            "temperature": cfg.temperature, "stream": True}
    if stop:
        body["stop"] = stop[:4]  # the OpenAI API takes at most four
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    where = f"remote {redact_url(cfg.endpoint)}"
    max_chars = max(1, max_tokens) * MAX_CHARS_PER_TOKEN
    t0 = clock()
    conn: http.client.HTTPConnection | None = None
    resp: http.client.HTTPResponse | None = None
    watchdog: _Watchdog | None = None
    phase = "connect"

    def timed_out(what: str) -> RemoteError:
        if what == "total":
            return RemoteError(f"{where}: total timeout of {cfg.total_timeout_s:g}s exceeded after {m.tokens} tokens",
                               "timeout")
        limit = cfg.first_token_timeout_s if what == "first token" else cfg.read_timeout_s
        return RemoteError(f"{where}: timed out waiting for the {what} ({limit:g}s) after {m.tokens} tokens", "timeout")

    def failure(exc: BaseException) -> RemoteError:
        """The RemoteError a low-level failure means, given the phase and the watchdog."""
        if watchdog is not None and watchdog.fired:
            return timed_out(watchdog.fired)
        if isinstance(exc, EventTooLarge):
            return RemoteError(f"{where}: {exc}", "protocol")
        if isinstance(exc, (TimeoutError, socket.timeout)):
            if phase == "connect":
                return RemoteError(f"{where}: timed out connecting ({cfg.connect_timeout_s:g}s)", "timeout")
            late = clock() - t0 >= cfg.total_timeout_s - 1e-3
            return timed_out("total" if late else "next token" if phase == "stream" else phase)
        if isinstance(exc, ConnectionRefusedError):
            return RemoteError(f"{where}: connection refused ({exc.strerror or exc}); is the engine running?", "connect")
        if phase == "connect":
            return RemoteError(f"{where}: cannot connect: {type(exc).__name__}: {exc}", "connect")
        return RemoteError(f"{where}: connection lost after {m.tokens} tokens: {type(exc).__name__}: {exc}", "connection")

    try:
        key = cfg.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        conn, path = _connection(cfg)
        conn.connect()
        sock = conn.sock  # kept: http.client drops conn.sock when the answer says Connection: close
        m.connect_s = clock() - t0
        phase = "first token"
        sock.settimeout(max(1e-3, min(cfg.first_token_timeout_s, cfg.total_timeout_s - m.connect_s)))
        watchdog = _Watchdog(sock, max(1e-3, cfg.total_timeout_s - m.connect_s), cancelled)
        watchdog.expect("first token", cfg.first_token_timeout_s)
        watchdog.start()
        conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        resp = conn.getresponse()
        if resp.status != 200:
            detail = _error_message(resp.read(ERROR_BODY_BYTES))
            raise RemoteError(f"{where}: HTTP {resp.status} {resp.reason}: {detail}", "http", resp.status)
        ctype = resp.getheader("Content-Type", "")
        if "text/event-stream" not in ctype:
            raise RemoteError(f"{where}: expected text/event-stream, got {ctype or 'no Content-Type'} "
                              f"({_error_message(resp.read(ERROR_BODY_BYTES))})", "protocol")
        done = False

        def lines() -> Iterator[bytes]:
            while True:
                line = resp.readline(MAX_LINE_BYTES + 1)
                if watchdog.fired:
                    raise _Fired()
                if len(line) > MAX_LINE_BYTES:
                    raise RemoteError(f"{where}: a stream line over {MAX_LINE_BYTES} bytes", "protocol")
                if not line:
                    return
                yield line

        chars = 0
        for ev in events(lines(), max_bytes=MAX_LINE_BYTES):
            if ev.data.strip() == "[DONE]":
                done = True
                break
            try:
                doc = json.loads(ev.data)
            except ValueError:
                raise RemoteError(f"{where}: not JSON in the stream: {ev.data[:200]!r}", "protocol") from None
            if not isinstance(doc, dict):
                raise RemoteError(f"{where}: unexpected stream event {ev.data[:200]!r}", "protocol")
            if "error" in doc:
                raise RemoteError(f"{where}: engine error: {_error_message(ev.data.encode())}", "stream")
            if doc.get("usage"):
                m.usage = doc["usage"]
            choices = doc.get("choices") or []
            choice = choices[0] if choices and isinstance(choices[0], dict) else {}
            piece = choice.get("text") or ""
            if not isinstance(piece, str):
                raise RemoteError(f"{where}: choices[0].text is not a string", "protocol")
            finish = choice.get("finish_reason")
            now = clock() - t0
            if finish:
                m.finish_reason = finish
            if piece:
                piece = piece[: max_chars - chars]
                chars += len(piece)
                m.token_times.append(now)
                m.pieces.append(piece)
                yield Chunk(piece, now, finish)
                if m.tokens >= max_tokens or chars >= max_chars:
                    # The engine owes us no more than max_tokens; one that goes on is cut here.
                    m.finish_reason = m.finish_reason or "length"
                    return
            if cancelled():
                m.cancelled = True
                return
            if piece and phase != "stream":
                phase = "stream"
            left = cfg.total_timeout_s - (clock() - t0)
            if left <= 0:
                raise timed_out("total")
            gap = cfg.read_timeout_s if phase == "stream" else cfg.first_token_timeout_s
            sock.settimeout(min(gap, left))
            if piece:
                watchdog.expect("next token", cfg.read_timeout_s)
        if watchdog.fired == "cancelled" or cancelled():
            m.cancelled = True
            return
        if watchdog.fired:
            raise timed_out(watchdog.fired)
        if not done and m.finish_reason is None:
            raise RemoteError(f"{where}: connection closed mid-stream after {m.tokens} tokens", "connection")
    except (RemoteError, _Fired, EventTooLarge, OSError, http.client.HTTPException) as exc:
        # (TimeoutError and ConnectionRefusedError are OSErrors.)
        if watchdog is not None and watchdog.fired == "cancelled" and not isinstance(exc, RemoteError):
            m.cancelled = True
            return
        m.error = exc if isinstance(exc, RemoteError) else failure(exc)
        raise m.error from None
    finally:
        m.end_s = clock() - t0
        if watchdog is not None:
            watchdog.finished.set()
        if resp is not None:
            resp.close()
        if conn is not None:
            conn.close()
