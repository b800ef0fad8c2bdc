"""The sparkls language server: documents in, inline completions (or completion items) out.

The data path: a request → :func:`inline_completion` → :class:`Completer` runs the
decode engine in a worker thread → the suggestion goes back as an
``InlineCompletionList`` whose range covers the word typed so far.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from sparkls.decode.ngram_engine import NgramEngine
from sparkls.decode.ngram_model import CodeModel
from sparkls.server import convert
from sparkls.server.completion import Completer, completion_context, typed_word
from sparkls.server.documents import Document, DocumentStore, PositionError
from sparkls.server.indexer import IndexReport, index_workspace, read_text
from sparkls.server.lsp_log import LspLogHandler
from sparkls.server.options import Options, parse_options
from sparkls.server.protocol import SparklsProtocol

log = logging.getLogger("sparkls")

try:
    __version__ = version("sparkls")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"


class SparklsServer(LanguageServer):
    """Holds the open documents, the decode model and the running completion jobs.

    :attr documents: open documents by URI, kept in the client's position encoding.
    :attr model: n-gram counts of the workspace and open documents.
    :attr completer: runs the engine, one job per document.
    :attr options: the current `sparkls` settings.
    """

    def __init__(self) -> None:
        super().__init__("sparkls", __version__, protocol_cls=SparklsProtocol)
        self.documents = DocumentStore()
        self.model = CodeModel()
        self.engine = NgramEngine(self.model)
        self.completer = Completer(self.engine)
        self.options = Options()
        self.index_task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # set once serving, for worker threads
        self.loop_thread: int | None = None
        self.exit_code = 0  # LSP: `exit` without `shutdown` first exits with 1

    @property
    def encoding(self) -> str:
        return self.workspace.position_encoding or types.PositionEncodingKind.Utf16

    def advertised(self, caps: types.ClientCapabilities) -> tuple[bool, bool]:
        """``(inline, completion)``: which completion methods to advertise to this client."""
        mode = self.options.advertise
        has_inline = bool(caps.text_document and caps.text_document.inline_completion is not None)
        if mode == "auto":
            return has_inline, not has_inline
        return mode in ("inline", "both"), mode in ("completion", "both")

    def report_server_error(self, error: Exception, source) -> None:
        """Log out-of-band errors (bad frames, failing notifications) instead of popping up messages."""
        log.error("%s: %s", getattr(source, "__name__", source), error or type(error).__name__)

    def root(self) -> Path | None:
        folders = self.workspace.folders
        uri = next(iter(folders.values())).uri if folders else self.workspace.root_uri
        path = to_fs_path(uri) if uri else None
        return Path(path) if path else None


SERVER = SparklsServer()


@SERVER.feature(types.INITIALIZE)
def initialize(ls: SparklsServer, params: types.InitializeParams) -> None:
    """Read the settings passed in initializationOptions."""
    ls.loop, ls.loop_thread = asyncio.get_running_loop(), threading.get_ident()
    logging.getLogger("sparkls").addHandler(LspLogHandler(ls))
    ls.options, error = parse_options(params.initialization_options)
    if error:
        log.warning(error)
    log.info("sparkls %s: engine %s, position encoding %s", __version__, ls.engine.name, ls.encoding)


@SERVER.feature(types.INITIALIZED)
async def initialized(ls: SparklsServer, params: types.InitializedParams) -> None:
    """Start counting the workspace's files in the background."""
    root = ls.root()
    if root is not None and root.is_dir() and ls.options.index.enabled:
        ls.index_task = asyncio.ensure_future(_index(ls, root))


async def _index(ls: SparklsServer, root: Path) -> IndexReport:
    loop = asyncio.get_running_loop()
    caps = ls.client_capabilities.window
    token = None
    if caps is not None and caps.work_done_progress:
        token = "sparkls-index"
        try:
            await ls.work_done_progress.create_async(token)
            ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(title="sparkls: indexing", percentage=0))
        except Exception:  # a client that refuses progress still gets an index
            token = None

    def progress(report: IndexReport) -> None:
        if token is not None:
            message = f"{report.files} files, {report.tokens} tokens"
            loop.call_soon_threadsafe(
                ls.work_done_progress.report, token, types.WorkDoneProgressReport(message=message)
            )

    report = await loop.run_in_executor(
        ls.completer.pool,
        lambda: index_workspace(ls.model, root, ls.options.index, progress, key=lambda p: p.as_uri()),
    )
    summary = (
        f"indexed {report.files} files ({report.tokens} tokens) in {report.seconds:.1f}s"
        + (f", skipped {report.skipped}" if report.skipped else "")
        + (" (bounded: stopped early)" if report.truncated else "")
    )
    if token is not None:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=summary))
    log.info(summary)
    return report


@SERVER.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def did_change_configuration(ls: SparklsServer, params: types.DidChangeConfigurationParams) -> None:
    """Apply settings pushed by the client (they affect the next request)."""
    ls.options, error = parse_options(params.settings, ls.options)
    if error:
        log.warning(error)


@SERVER.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: SparklsServer, params: types.DidOpenTextDocumentParams) -> None:
    item = params.text_document
    ls.documents[item.uri] = Document(item.uri, item.text, item.version, item.language_id)
    ls.model.open_document(item.uri, item.text)


@SERVER.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: SparklsServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    doc = ls.documents.get(uri)
    if doc is None:
        log.warning("didChange for a document that is not open: %s", uri)
        return
    for change in params.content_changes:
        start, end, inserted = doc.apply(change, ls.encoding)
        ls.model.edit_document(uri, start, end, inserted)
    doc.version = params.text_document.version


@SERVER.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: SparklsServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    ls.completer.cancel(uri)
    ls.documents.pop(uri, None)
    path = to_fs_path(uri)
    disk = read_text(Path(path), ls.options.index.max_file_bytes) if path else None
    ls.model.close_document(uri, disk_text=disk)


async def _suggest(
    ls: SparklsServer, uri: str, position: types.Position, automatic: bool = False
) -> tuple[str, types.Range] | None:
    """The completion at ``position`` and the range it replaces, or None."""
    doc = ls.documents.get(uri)
    if doc is None:
        log.warning("completion requested for a document that is not open: %s", uri)
        return None
    try:
        offset = doc.offset_at(position, ls.encoding)
    except PositionError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    # Snapshot before the first await: didChange may edit the document meanwhile.
    ctx = completion_context(doc, offset, ls.options.max_tokens)
    typed = typed_word(ctx.prefix)
    range_ = types.Range(doc.position_at(offset - len(typed), ls.encoding), doc.position_at(offset, ls.encoding))
    delay = ls.options.debounce_ms / 1000 if automatic else 0.0
    text = await ls.completer.complete(uri, ctx, delay)
    return (typed + text, range_) if text else None


@SERVER.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(ls: SparklsServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    """Ghost text at the cursor, for invoked and automatic triggers alike."""
    automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
    found = await _suggest(ls, params.text_document.uri, params.position, automatic)
    return convert.lsp_inline_list(*found) if found else types.InlineCompletionList(items=[])


@SERVER.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())
async def completion(ls: SparklsServer, params: types.CompletionParams) -> types.CompletionList:
    """The same suggestion as a completion item, for clients without inline completion."""
    invoked = params.context is None or params.context.trigger_kind == types.CompletionTriggerKind.Invoked
    found = await _suggest(ls, params.text_document.uri, params.position, automatic=not invoked)
    return convert.lsp_completion_list(*found) if found else types.CompletionList(is_incomplete=True, items=[])


@SERVER.feature(types.EXIT)
def exit_(ls: SparklsServer, params: None) -> None:
    ls.exit_code = 0 if ls.protocol._shutdown else 1


@SERVER.feature(types.SHUTDOWN)
def shutdown(ls: SparklsServer, params: None) -> None:
    if ls.index_task is not None:
        ls.index_task.cancel()
    ls.completer.shutdown()
