"""The sparkls trace format: an LSP session as JSON Lines (see docs/traces.md).

Line 1 is a :class:`Header`; every other line is a :class:`Message` (one JSON-RPC message
and which way it went), an :class:`Invalid` frame, or the closing :class:`End`. Lines are
encoded and validated with msgspec, so a truncated or hand-edited trace fails loudly, with
the line number, instead of replaying something else.

Redaction (:class:`Redactor`) replaces the code in a trace — documents' text, edits, and the
completions computed from them — by placeholder text of the same shape: the same length in
UTF-8 bytes and UTF-16 units, the same line breaks, each identifier replaced consistently.
Every position and range in the trace still points at the same place.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Literal, Union

import msgspec

FORMAT = "sparkls-trace"
VERSION = 1

Direction = Literal["c2s", "s2c"]  # client → server, server → client


class Client(msgspec.Struct, omit_defaults=True):
    name: str = ""
    version: str = ""


class Header(msgspec.Struct, tag="header", tag_field="type", kw_only=True, omit_defaults=True):
    """What was recorded, with what, and how times are measured."""

    format: str = FORMAT
    version: int = VERSION
    sparkls: str = ""  # the recording sparkls's version
    created: str = ""  # wall-clock start, ISO 8601 UTC (information only)
    clock: str = "monotonic"  # every `t` is seconds on a monotonic clock since the recording started
    client: Client = msgspec.field(default_factory=Client)  # InitializeParams.clientInfo
    capabilities: dict[str, Any] = msgspec.field(default_factory=dict)  # InitializeParams.capabilities
    root_uri: str | None = msgspec.field(default=None, name="rootUri")  # the workspace root at recording time
    backend: str = "local"  # the backend asked for in initializationOptions (sparkls's default: local)
    server: list[str] = msgspec.field(default_factory=list)  # the server command that was recorded
    redacted: bool = False

    def __post_init__(self) -> None:
        if self.format != FORMAT:
            raise ValueError(f"not a {FORMAT} (format {self.format!r})")
        if self.version > VERSION:
            raise ValueError(f"trace version {self.version} is newer than this sparkls reads ({VERSION})")


class Message(msgspec.Struct, tag="message", tag_field="type"):
    """One JSON-RPC message as it crossed the wire."""

    dir: Direction
    t: float
    msg: dict[str, Any]

    def __post_init__(self) -> None:
        m = self.msg
        if m.get("jsonrpc") != "2.0":
            raise ValueError("msg is not JSON-RPC 2.0")
        if "method" in m:
            if not isinstance(m["method"], str):
                raise ValueError("msg.method must be a string")
        elif "id" not in m or ("result" in m) == ("error" in m):
            raise ValueError("msg is neither a request, a notification nor a response")

    @property
    def method(self) -> str | None:
        return self.msg.get("method")

    @property
    def id(self) -> int | str | None:
        return self.msg.get("id")

    @property
    def is_request(self) -> bool:
        return "method" in self.msg and "id" in self.msg

    @property
    def is_notification(self) -> bool:
        return "method" in self.msg and "id" not in self.msg

    @property
    def is_response(self) -> bool:
        return "method" not in self.msg


class Invalid(msgspec.Struct, tag="invalid", tag_field="type"):
    """A frame whose body is not a JSON-RPC message (forwarded all the same)."""

    dir: Direction
    t: float
    raw: str
    error: str = ""


class End(msgspec.Struct, tag="end", tag_field="type", omit_defaults=True):
    """The session ended: the server's exit code (128 + signal if killed) and why."""

    t: float
    exit: int | None = None
    reason: str = ""


Record = Union[Header, Message, Invalid, End]
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


def encode(record: Record) -> bytes:
    """One trace line, newline included."""
    return _encoder.encode(record) + b"\n"


def decode(line: bytes | str) -> Record:
    return _decoder.decode(line)


class TraceError(ValueError):
    pass


class Trace(msgspec.Struct):
    header: Header
    records: list[Message | Invalid | End]

    @property
    def messages(self) -> list[Message]:
        return [r for r in self.records if isinstance(r, Message)]

    @property
    def end(self) -> End | None:
        return next((r for r in reversed(self.records) if isinstance(r, End)), None)


def read(path: str | Path) -> Trace:
    """Load and validate a whole trace; errors name the file and line."""
    with open(path, "rb") as f:
        return parse(f, str(path))


def parse(lines: Iterable[bytes], name: str = "<trace>") -> Trace:
    header, records = None, []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = decode(line)
        except msgspec.ValidationError as exc:
            raise TraceError(f"{name}:{n}: {exc}") from None
        except msgspec.DecodeError as exc:
            raise TraceError(f"{name}:{n}: not JSON ({exc})") from None
        if header is None:
            if not isinstance(rec, Header):
                raise TraceError(f"{name}:{n}: the first line must be the header")
            header = rec
        elif isinstance(rec, Header):
            raise TraceError(f"{name}:{n}: a second header")
        else:
            records.append(rec)
    if header is None:
        raise TraceError(f"{name}: empty trace")
    return Trace(header, records)


def write(path: str | Path, trace: Trace) -> None:
    with open(path, "wb") as f:
        f.write(encode(trace.header))
        for rec in trace.records:
            f.write(encode(rec))


def header_from_initialize(params: dict[str, Any], server: list[str], redacted: bool) -> Header:
    """The header for a session whose first message is ``initialize`` with ``params``."""
    info = params.get("clientInfo") or {}
    opts = params.get("initializationOptions")
    opts = opts.get("sparkls", opts) if isinstance(opts, dict) else {}
    folders = params.get("workspaceFolders") or []
    root = params.get("rootUri") or (folders[0].get("uri") if folders else None)
    return Header(
        sparkls=sparkls_version(),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        client=Client(name=str(info.get("name", "")), version=str(info.get("version", ""))),
        capabilities=params.get("capabilities") or {},
        root_uri=root,
        backend=str(opts.get("backend", "local")) if isinstance(opts, dict) else "local",
        server=list(server),
        redacted=redacted,
    )


def sparkls_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sparkls")
    except PackageNotFoundError:
        return "0+unknown"


# --- framing -----------------------------------------------------------------------------


class FrameReader:
    """Cuts a byte stream into LSP message bodies (``Content-Length`` framing), however the
    bytes were split across reads. Headers other than Content-Length are skipped."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            length = None
            for line in bytes(self.buf[:end]).split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    try:
                        length = int(value.strip())
                    except ValueError:
                        length = None
            if length is None:  # a broken header: drop it, resynchronise on the next one
                del self.buf[: end + 4]
                continue
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            yield body


def frame(msg: dict[str, Any] | bytes) -> bytes:
    body = msg if isinstance(msg, bytes) else _encoder.encode(msg)
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def to_record(direction: Direction, t: float, body: bytes) -> Message | Invalid:
    """A frame's body as a trace record (Invalid when it is not a JSON-RPC message)."""
    try:
        msg = msgspec.json.decode(body)
        if not isinstance(msg, dict):
            raise ValueError("not an object")
        return Message(direction, t, msg)
    except (msgspec.DecodeError, ValueError) as exc:
        return Invalid(direction, t, body.decode("utf-8", "replace"), str(exc))


# --- redaction ---------------------------------------------------------------------------

# Methods whose params (requests, notifications) or results (responses) carry code.
CODE_METHODS = {
    "textDocument/didOpen",
    "textDocument/didChange",
    "textDocument/didSave",
    "textDocument/inlineCompletion",
    "textDocument/completion",
    "completionItem/resolve",
    "sparkls/inlineCompletionStream",
}
# Inside those, the string values under these keys are code (nested `value`s too: snippets).
CODE_KEYS = {"text", "insertText", "newText", "filterText", "label", "textEditText", "sortText"}
KEYWORDS = set(
    "and as assert async await break case catch class const continue def del do elif else end enum except export "
    "extends false finally fn for from func function go if impl import in is lambda let local match mod module "
    "new nil none not null or package pass private pub public raise return self static struct super switch then "
    "this throw true try type use var void while with yield None True False".split()
)
_WORD = re.compile(r"[^\W\d]\w*")
# Same length in UTF-8 bytes and UTF-16 units as the character replaced, by UTF-8 length.
_LETTER = {2: "ß", 3: "中", 4: "𝑥"}
_OTHER = {2: "¤", 3: "■", 4: "🀫"}
_LOWER, _UPPER = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Redactor:
    """Same-shape placeholders for code; one salt (random unless given) per trace, so an
    identifier maps to the same placeholder throughout it but cannot be looked up."""

    def __init__(self, salt: bytes | None = None) -> None:
        self.salt = os.urandom(16) if salt is None else salt
        self.names: dict[str, str] = {}

    def text(self, text: str) -> str:
        out, pos = [], 0
        for m in _WORD.finditer(text):
            out.append(_other(text[pos : m.start()]))
            out.append(self._name(m.group()))
            pos = m.end()
        out.append(_other(text[pos:]))
        return "".join(out)

    def _name(self, word: str) -> str:
        if word in KEYWORDS:
            return word
        if (new := self.names.get(word)) is None:
            digest = hashlib.blake2b(word.encode(), key=self.salt, digest_size=32).digest()
            chars = []
            for i, c in enumerate(word):
                b = digest[i % len(digest)] + i
                if "a" <= c <= "z":
                    chars.append(_LOWER[b % 26])
                elif "A" <= c <= "Z":
                    chars.append(_UPPER[b % 26])
                elif "0" <= c <= "9":
                    chars.append(str(b % 10))
                elif c.isascii():
                    chars.append(c)  # "_"
                else:
                    chars.append(_LETTER[_u8len(c)])
            new = self.names[word] = "".join(chars)
        return new

    def message(self, msg: dict[str, Any], method: str | None) -> dict[str, Any]:
        """``msg`` redacted; ``method`` names the request a response answers.

        Code (CODE_METHODS, CODE_KEYS) becomes same-shape placeholders; settings keep only
        numbers, booleans and known names; every other string keeps its words but loses file
        paths (each component replaced consistently) and URL userinfo and queries."""
        method = msg.get("method", method)
        out = dict(msg)
        for key in ("params", "result", "error"):
            if key not in out:
                continue
            value = out[key]
            if (method, key) in SETTINGS_AT:
                value = _settings(value, SETTINGS_AT[(method, key)])
            out[key] = self._walk(value, False, method in CODE_METHODS)
        return out

    def raw(self, text: str) -> str:
        """An invalid frame's body: all of it may be code, settings or keys."""
        return self.text(text)

    def _walk(self, value: Any, code: bool, code_method: bool) -> Any:
        if isinstance(value, str):
            return self.text(value) if code else self.scrub(value)
        if isinstance(value, list):
            return [self._walk(v, code, code_method) for v in value]
        if isinstance(value, dict):
            out = {k: self._walk(v, code or (code_method and k in CODE_KEYS), code_method) for k, v in value.items()}
            if "uri" in out and isinstance(out.get("name"), str):  # a workspace folder's name is its path's
                out["name"] = self._component(value["name"])
            return out
        return value

    def scrub(self, text: str) -> str:
        """File paths (plain or file: URIs) with each component replaced; other URLs keep
        scheme, host and port, lose userinfo and query, and their path is replaced too."""
        if "/" not in text and "\\" not in text:
            return text
        return _PATHISH.sub(self._scrub_match, text)

    def _scrub_match(self, m: re.Match) -> str:
        if m.group("scheme"):
            rest = m.group("rest")
            if m.group("scheme").lower() == "file":
                return "file://" + self._path(rest)
            authority, slash, path = rest.partition("/")
            host = authority.rsplit("@", 1)[-1]
            path = path.split("?", 1)[0].split("#", 1)[0]
            return f"{m.group('scheme')}://{host}{slash}{self._path(path)}"
        return self._path(m.group("path"))

    def _path(self, path: str) -> str:
        parts = re.split(r"([/\\])", path)
        return "".join(p if p in ("/", "\\", "", ".", "..") else self._component(p) for p in parts)

    def _component(self, name: str) -> str:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and re.fullmatch(r"[A-Za-z0-9]{1,5}", ext):
            return self.text(stem) + "." + ext  # the extension says the language, not the project
        return self.text(name)


# A URL (scheme://...) or an absolute path (POSIX, ~, or a Windows drive) inside a string.
_PATHISH = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>[^\s'\"<>]*)"
    r"|(?P<path>(?<![\w/.:-])(?:~|[A-Za-z]:)?[/\\][^\s'\"<>,;:()]*[/\\][^\s'\"<>,;:()]*)"
)
# Settings: where they are in messages, and which of their strings are known names worth keeping.
SETTINGS_AT = {
    ("initialize", "params"): "initializationOptions",
    ("workspace/didChangeConfiguration", "params"): "settings",
    ("workspace/configuration", "result"): "",
}
SAFE_SETTINGS = {"advertise", "backend", "engine", "served_model", "debounce_ms"}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._:-]{0,63}")


def _settings(value: Any, at: str) -> Any:
    """``value`` with the settings under key ``at`` ("" = value itself) reduced to what is safe to keep."""
    if at:
        if not isinstance(value, dict) or at not in value:
            return value
        return {**value, at: _settings(value[at], "")}
    return _setting(value, "")


def _setting(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _setting(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_setting(v, key) for v in value]
    if isinstance(value, str):
        return value if key in SAFE_SETTINGS and _NAME.fullmatch(value) and not _looks_secret(value) else "<redacted>"
    return value  # numbers, booleans, null


def _looks_secret(value: str) -> bool:
    return bool(re.search(r"\d.*\d.*\d", value)) and len(value) > 20


def _other(text: str) -> str:
    """Non-identifier text: ASCII kept (whitespace, punctuation; digits zeroed), the rest replaced."""
    if text.isascii():
        return re.sub(r"\d", "0", text)
    return "".join(
        ("0" if c.isdigit() else c) if c.isascii() else _OTHER[_u8len(c)] for c in text
    )


def _u8len(c: str) -> int:
    return len(c.encode("utf-8", "surrogatepass"))
