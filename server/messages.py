"""Every message sparkls adds to LSP, as msgspec Structs: what goes on the wire, field by field.

docs/protocol.md shows the same fields in its tables (tests/test_messages.py keeps the two equal, and
the VS Code extension's TypeScript interfaces of the same names). The server sends its messages
with :func:`notify` and answers with :func:`result`; it reads the client's with :func:`receive`
(pygls hands a non-LSP method's params over as namedtuples, a command's arguments as dicts). The
LSP answers to ``textDocument/inlineCompletion`` and ``textDocument/completion`` are built here
too (``lsp_*``, as jedi-language-server names them).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeVar

import msgspec
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams


class Message(msgspec.Struct, rename="camel", kw_only=True):
    """A sparkls message: snake_case here, camelCase on the wire, every field always sent."""


class Position(Message, kw_only=True):
    line: int
    character: int


class Range(Message, kw_only=True):
    start: Position
    end: Position

    @classmethod
    def of(cls, r: types.Range) -> "Range":
        return cls(start=Position(line=r.start.line, character=r.start.character),
                   end=Position(line=r.end.line, character=r.end.character))


# --- capabilities (initialize) ----------------------------------------------------------------


class ClientCapabilities(Message, kw_only=True):
    """``capabilities.experimental.sparkls`` in the client's ``initialize``."""

    inline_completion_stream: bool = False


class ServerCapabilities(Message, kw_only=True):
    """``capabilities.experimental.sparkls`` in the server's ``initialize`` result."""

    inline_completion_stream: bool = True
    inline_edit: bool = True


# --- streamed ghost text ----------------------------------------------------------------------


class StreamNotification(Message, kw_only=True):
    """The whole text so far of one streamed completion (never a delta)."""

    METHOD: ClassVar[str] = "sparkls/inlineCompletionStream"
    stream_id: str
    request_id: int | str | None
    uri: str
    version: int
    index: int = 0
    range: Range
    text: str
    done: bool
    cancelled: bool = False
    backend: str
    tokens_per_second: float | None
    kept_up: bool
    elapsed_ms: float


class AcceptArguments(Message, kw_only=True):
    """The argument of the ``sparkls.accept`` command an inline item carries."""

    COMMAND: ClassVar[str] = "sparkls.accept"
    stream_id: str
    index: int = 0


class Accepted(AcceptArguments, kw_only=True):
    """``sparkls.accept`` as a client runs it: the item's argument, and how much was accepted."""

    accepted_chars: int = 0
    kind: Literal["full", "word", "line"] = "full"


# --- feedback: each suggestion's life ----------------------------------------------------------


class SuggestionRef(Message, kw_only=True):
    """Names a suggestion: ``streamId`` for a completion, ``id`` for a next edit."""

    stream_id: str | None = None
    id: str | None = None

    @property
    def key(self) -> str | None:
        return self.stream_id or self.id


class ItemCommand(Message, kw_only=True):
    """The command of a shown item, as far as the server reads it."""

    command: str = ""
    arguments: list[SuggestionRef] = []


class ShownItem(Message, kw_only=True):
    """An item (inline completion or next edit) a client reports back; only its command is read."""

    command: ItemCommand | None = None

    @property
    def key(self) -> str | None:
        args = self.command.arguments if self.command else []
        return args[0].key if args else None


class DidDismiss(SuggestionRef, kw_only=True):
    """``sparkls/didDismiss``: the suggestion ended without being accepted."""

    METHOD: ClassVar[str] = "sparkls/didDismiss"
    reason: str | None = None  # "typedPast" or "dismissed"; anything else counts as "dismissed"


class DidShowCompletion(Message, kw_only=True):
    METHOD: ClassVar[str] = "textDocument/didShowCompletion"
    item: ShownItem


class DidPartiallyAcceptCompletion(Message, kw_only=True):
    METHOD: ClassVar[str] = "textDocument/didPartiallyAcceptCompletion"
    item: ShownItem
    accepted_length: int = 0


class DidShowInlineEdit(Message, kw_only=True):
    """``{"item": <the edit>}``; a client that sends the edit itself is read by its ``command``."""

    METHOD: ClassVar[str] = "textDocument/didShowInlineEdit"
    item: ShownItem | None = None
    command: ItemCommand | None = None

    @property
    def key(self) -> str | None:
        return (self.item.key if self.item else None) or ShownItem(command=self.command).key


class SuggestionCounts(Message, kw_only=True):
    """What became of one kind of suggestion (``completion`` or ``nextEdit``) so far."""

    offered: int = 0
    gated: int = 0
    shown: int = 0
    accepted: int = 0
    partially_accepted: int = 0
    accepted_chars: int = 0
    typed_past: int = 0
    dismissed: int = 0
    superseded: int = 0
    accept_rate: float | None = None


class Status(Message, kw_only=True):
    """``sparkls/status``: the selected backend, how the last stream with it went, the counts."""

    METHOD: ClassVar[str] = "sparkls/status"
    backend: str
    engine: str
    kernel_path: str | None
    modelled_tokens_per_second: float | None
    measured_tokens_per_second: float | None
    ttft_ms: float | None
    kept_up: bool
    requests: int
    typeahead: int
    superseded: int
    live_streams: int
    suggestions: dict[str, SuggestionCounts]


class SuggestionInfoParams(SuggestionRef, kw_only=True):
    METHOD: ClassVar[str] = "sparkls/suggestionInfo"


class SuggestionInfo(Message, kw_only=True):
    """What the server recorded about one suggestion (the gate's view, and its life so far)."""

    id: str
    kind: Literal["completion", "nextEdit"]
    features: dict[str, float] | None
    score: float | None
    gated: bool
    shown: bool
    accepted: Literal["full", "partial"] | None
    accepted_chars: int
    ended: Literal["typedPast", "dismissed", "superseded"] | None


# --- next edits (GitHub Copilot's language server's shapes) -------------------------------------


class VersionedDocument(Message, kw_only=True):
    uri: str
    version: int | None = None


class InlineEditParams(Message, kw_only=True):
    METHOD: ClassVar[str] = "textDocument/copilotInlineEdit"
    text_document: VersionedDocument
    position: Position


class AcceptInlineEdit(Message, kw_only=True):
    """The argument of ``sparkls.acceptInlineEdit``, carried by each edit's command."""

    COMMAND: ClassVar[str] = "sparkls.acceptInlineEdit"
    id: str


class EditCommand(Message, kw_only=True):
    title: str
    command: str
    arguments: list[AcceptInlineEdit]


class InlineEdit(Message, kw_only=True):
    text: str
    range: Range
    text_document: VersionedDocument
    command: EditCommand


class InlineEditList(Message, kw_only=True):
    edits: list[InlineEdit]


# --- backends ----------------------------------------------------------------------------------


class SelectedBackend(Message, kw_only=True):
    """The result of ``sparkls.selectBackend`` (its argument is the backend's name)."""

    COMMAND: ClassVar[str] = "sparkls.selectBackend"
    backend: str


class BackendInfo(Message, kw_only=True):
    """One entry of ``sparkls.listBackends``'s result."""

    COMMAND: ClassVar[str] = "sparkls.listBackends"
    name: str
    available: bool
    reason: str
    active: bool


# --- sending and reading -----------------------------------------------------------------------

M = TypeVar("M", bound=Message)


def notify(ls, message: Message) -> None:
    """Send a server notification (its class names the method)."""
    ls.protocol.notify(message.METHOD, msgspec.to_builtins(message))


def result(message: Message | list[Message] | None) -> Any:
    """A request's or command's answer, as pygls sends it (plain JSON values)."""
    return msgspec.to_builtins(message)


def receive(params: Any, kind: type[M]) -> M:
    """A client's params (namedtuple, dict or None) as ``kind``; malformed ones raise InvalidParams
    (a request's client gets -32602, a notification's is logged)."""
    try:
        return msgspec.convert(plain(params) if params is not None else {}, kind)
    except msgspec.ValidationError as exc:
        name = getattr(kind, "METHOD", None) or getattr(kind, "COMMAND", None) or kind.__name__
        raise JsonRpcInvalidParams(f"{name}: {exc}") from None


def plain(value: Any) -> Any:
    """pygls's namedtuples (nested too) as dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# --- the LSP answers ---------------------------------------------------------------------------


def lsp_accept_command(stream_id: str, index: int = 0) -> types.Command:
    """The command an editor runs when the user accepts an item."""
    args = result(AcceptArguments(stream_id=stream_id, index=index))
    return types.Command(title="sparkls: accept", command=AcceptArguments.COMMAND, arguments=[args])


def lsp_inline_list(text: str, range_: types.Range, command: types.Command | None = None) -> types.InlineCompletionList:
    """One inline item replacing ``range_`` (the word typed so far) with ``text``."""
    if not text:
        return types.InlineCompletionList(items=[])
    item = types.InlineCompletionItem(insert_text=text, range=range_, command=command)
    return types.InlineCompletionList(items=[item])


def lsp_completion_list(text: str, range_: types.Range) -> types.CompletionList:
    """The same suggestion as a completion item, for clients without inline completion.

    ``isIncomplete`` makes the client ask again as the user types, since the suggestion
    depends on everything before the cursor, not just the word. The edit is a snippet (with
    ``$``, ``}`` and ``\\`` escaped, so it inserts literally) because Neovim 0.11 inserts a
    plain-text item only up to its first space.
    """
    if not text:
        return types.CompletionList(is_incomplete=True, items=[])
    first, _, rest = text.partition("\n")
    if not first.strip() and rest.strip():  # the next lines at a line's end: named by the first of them
        first, _, rest = rest.lstrip("\n").partition("\n")
        first = "↵ " + first.strip()
    item = types.CompletionItem(
        label=first + ("…" if rest else ""),
        kind=types.CompletionItemKind.Text,
        detail="sparkls",
        documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=text) if rest else None,
        sort_text="0",
        filter_text=text,
        insert_text_format=types.InsertTextFormat.Snippet,
        text_edit=types.TextEdit(range=range_, new_text=_snippet_literal(text) + "$0"),
    )
    return types.CompletionList(is_incomplete=True, items=[item])


def _snippet_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}")
