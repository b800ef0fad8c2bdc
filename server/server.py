"""The sparkls language server: documents in, inline completions (or completion items) out.

The data path: a request → :func:`inline_completion` → a :class:`~sparkls.server.streams.Stream`
runs the decode engine in a worker thread, paced at the active backend's timeline → the
first text goes back as an ``InlineCompletionList`` whose range covers the word typed so far,
and the rest follows as ``sparkls/inlineCompletionStream`` notifications (docs/protocol.md).

Handlers are plain module functions; :func:`register` (at the end) is their table of contents, and
:func:`make_server` builds a new server with all of them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import msgspec
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from sparkls.decode.copy_choice import CopyChoice
from sparkls.decode.ngram.ngram_engine import NgramEngine
from sparkls.decode.ngram.ngram_model import CodeModel
from sparkls.server import gate_lsp, messages, next_edit_lsp, safe_files, user_config
from sparkls.server.completion import completion_context, typed_word
from sparkls.server.line_breaks import lf, lf_edit, line_break
from sparkls.server.exclusions import Exclusions
from sparkls.server.engines import RemoteWithFallback, load_neural_engine, neural_model_path
from sparkls.server.documents import Document, DocumentStore, PositionError
from sparkls.server.indexer import IndexReport, index_workspace
from sparkls.server.lsp_log import LspLogHandler
from sparkls.server.gate import Gate
from sparkls.server.next_edit import NextEdits
from sparkls.server.options import Options, parse_options
from sparkls.server.protocol import SparklsProtocol, shutdown_received
from sparkls.server.cadence import Pacer, TypingRate, adaptive_debounce, served_model_file
from sparkls.server.streams import Stream, StreamFollower, StreamHub, View
from sparkls.server.suggestion_log import SuggestionLog
from sparkls.server.workspace import WorkspaceContext, uri_path
from sparkls.plugins import builtin_models, host, registry

log = logging.getLogger("sparkls")
WARM_DELAY_S = 0.3  # quiet after didOpen before its document is prefilled (see SparklsServer.warm)
CLOSE_TIMEOUT_S = 5.0  # how long SparklsServer.shutdown waits for its worker threads
SETTINGS_PULL_S = 5.0  # how long to wait for the client's workspace/configuration answer

try:
    __version__ = version("sparkls")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"


class SparklsServer(LanguageServer):
    """Holds the open documents, the decode model and the running completion jobs.

    :attr documents: open documents by URI, kept in the client's position encoding.
    :attr model: n-gram counts of the workspace and open documents.
    :attr hub: completion streams, one live stream per document.
    :attr pacer: the active backend and its timelines.
    :attr options: the current `sparkls` settings.
    """

    def __init__(self) -> None:
        super().__init__("sparkls", __version__, protocol_cls=SparklsProtocol)
        self.documents = DocumentStore()
        self.model = CodeModel()
        self.local_engine = NgramEngine(self.model)  # becomes the neural engine once it loads
        self.remote_engine: RemoteWithFallback | None = None
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sparkls-decode")
        # Workspace files are read here, never on the event loop or in the decode pool: a
        # stalled file system may block one of these threads, not the server (safe_files.py).
        self.io_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sparkls-io")
        self.hub = StreamHub(lambda: self.engine, self.pool)
        self.pacer = Pacer()
        self.streaming = False  # the client opted in to sparkls/inlineCompletionStream
        self.requests: dict[str, asyncio.Task] = {}  # the newest completion request per document
        self.followers: dict[str, StreamFollower] = {}  # the stream notifier per document
        self.typing: dict[str, TypingRate] = {}
        self.model_path: Path | None = None
        self.engine_label = "ngram"  # what serverInfo and the log say serves
        self.load_task: asyncio.Task | None = None
        # Counts for sparkls/status: requests, those answered by typing along a stream, those superseded.
        self.counts = {"requests": 0, "typeahead": 0, "superseded": 0}
        self.options = Options()
        self.pull_on_start = False  # no initializationOptions: ask the client (workspace/configuration) once initialized
        self.index_task: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # set once serving, for worker threads
        self.loop_thread: int | None = None
        self.exit_code = 0  # LSP: `exit` without `shutdown` first exits with 1
        self.warming: threading.Event | None = None  # stop flag of the background prefill, if any (one at a time)
        self.warm_timer: asyncio.TimerHandle | None = None  # its delayed start
        # Files never read into a prompt or the index, and the workspace's files as prompt context.
        self.exclusions = Exclusions(None)
        self.workspace_context = WorkspaceContext(None, self.exclusions)
        self.next_edits = NextEdits()  # edit histories: next-edit suggestions (server/next_edit.py)
        self.suggestions = SuggestionLog()  # each suggestion's life, for sparkls/status and the gate
        self.gate = Gate.load()  # whether to show a suggestion (server/gate.py), learning from the outcomes
        self.suggestions.listeners.append(self._learn)

    def _learn(self, life, accepted: bool) -> None:
        if life.features is not None and self.options.gate.learn:
            self.gate.learn(life.features, accepted)

    @property
    def engine(self):
        """The engine that serves the next request."""
        return self.remote_engine or self.local_engine

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

    def apply_options(self) -> None:
        """Settings that live outside ``options``: the backend, the served model, the remote engine."""
        self.pacer.setting, self.pacer.remote = self.options.backend, False
        self.io_pool.submit(registry.set_disabled, self.options.backends.disabled)  # may start plugins: not on the loop
        self.pacer.model_name = self.options.served_model
        self.pacer.model_spec = None
        if self.options.served_model not in builtin_models():
            self.load_served_model(self.options.served_model)
        self.remote_engine = None
        if self.options.model.engine == "remote":
            try:  # destination and key from the user's own configuration only (user_config.py)
                self.remote_engine = RemoteWithFallback(
                    user_config.remote_settings(self.options.remote), lambda: self.local_engine, on_measure=_measured_remote
                )
            except Exception as exc:  # bad settings: say so, serve locally
                log.error("remote engine not started: %s", exc)
                return
            self.pacer.remote = True  # its tokens arrive at their real cadence

    def load_served_model(self, path: str) -> None:
        """Read a served-model TOML named in settings, in the I/O pool (safe_files: inside the
        workspace or the user's config folder, a small regular file); until then, or if it
        fails (logged), the default served model paces."""
        roots = [r for r in (self.root(), user_config.config_path().parent) if r is not None]
        future = self.io_pool.submit(served_model_file, path, roots)

        def done(f) -> None:  # in the worker
            try:
                spec = f.result()
            except Exception as exc:
                log.error("served model not loaded: %s", exc)
                return
            if self.loop is not None and self.options.served_model == path:
                self.loop.call_soon_threadsafe(setattr, self.pacer, "model_spec", spec)

        future.add_done_callback(done)

    def choose_model(self) -> None:
        """The neural model file to load for the current settings, and the label the log and serverInfo show."""
        self.model_path = neural_model_path(self.options.model)
        self.engine_label = f"neural: {self.model_path.name}" if self.model_path else "ngram"
        if self.remote_engine is not None:
            self.engine_label = f"remote: {self.remote_engine.remote.config.model}, local: {self.engine_label}"

    def apply_settings(self, raw) -> None:
        """Settings the client sent or was asked for, from the next request on (bad ones: reported, old kept)."""
        self.options, error = parse_options(raw, self.options)
        if error:
            log.warning(error)
        self.apply_options()
        self.set_workspace()
        self.hub.reset()  # suggestions made under the old settings must not be served again
        self.send_status()

    def can_pull_settings(self) -> bool:
        workspace = self.client_capabilities.workspace
        return bool(workspace and workspace.configuration)

    async def pull_settings(self) -> bool:
        """Ask the client for the `sparkls` section (`workspace/configuration`) and apply it; whether it gave one."""
        item = types.ConfigurationItem(section="sparkls")
        try:
            answer = await asyncio.wait_for(
                self.workspace_configuration_async(types.ConfigurationParams(items=[item])), SETTINGS_PULL_S
            )
        except Exception as exc:  # no answer, an error, or a client that does not serve it: the settings stay
            log.warning("workspace/configuration: no settings (%s)", exc or type(exc).__name__)
            return False
        section = answer[0] if isinstance(answer, (list, tuple)) and answer else None
        if section is None:
            return False
        self.apply_settings(section)
        return True

    def set_workspace(self) -> None:
        """Exclusions and workspace context for the current root and `exclude` setting."""
        root = self.root()
        root = root if root is not None and root.is_dir() else None
        self.exclusions = Exclusions(root, self.options.exclude)
        self.workspace_context = WorkspaceContext(root, self.exclusions)

    def excluded(self, uri: str) -> bool:
        """A document whose text must never go into a prompt (a secret by name, gitignored, `exclude`)."""
        return self.exclusions.excluded(uri_path(uri) or uri)

    def context(self, doc: Document, offset: int):
        """What the engine sees at ``offset`` of ``doc`` (snippets computed only if it asks)."""
        return completion_context(
            doc, offset, self.options.max_tokens, self.documents.values(), self.options.context, self.workspace_context
        )

    def warm(self, uri: str) -> None:
        """Prefill the local neural engine's session for a just-opened document, in a worker thread.

        Starts after WARM_DELAY_S of quiet (an editor restoring a session opens many files at
        once, and a request right after didOpen makes warming pointless); one at a time (a
        newer one, any completion request or closing documents stops it); only the neural
        engine has anything to prefill (``Engine.warm``). A cold 1k-token prefill takes seconds on 2 cores, which
        the document's first completion then no longer waits for.
        """
        self.stop_warming()
        if not self.options.model.warm_on_open or self.loop is None or self.excluded(uri):
            return
        stop = self.warming = threading.Event()
        self.warm_timer = self.loop.call_later(WARM_DELAY_S, self._start_warming, uri, stop)

    def _start_warming(self, uri: str, stop: threading.Event) -> None:
        engine, doc = self.engine, self.documents.get(uri)
        if stop.is_set() or doc is None:
            return
        ctx = self.context(doc, len(doc.text))
        started = time.perf_counter()

        def done(future) -> None:  # in the worker thread; the log handler hands over to the loop
            if future.cancelled():
                return
            if future.exception() is not None:
                log.error("prefill of %s failed: %s", uri, future.exception())
            elif future.result():
                log.info("prefilled %s: %d tokens cached in %.2f s", uri, future.result(), time.perf_counter() - started)

        self.pool.submit(engine.warm, ctx, stop.is_set).add_done_callback(done)

    def stop_warming(self) -> None:
        if self.warm_timer is not None:
            self.warm_timer.cancel()
            self.warm_timer = None
        if self.warming is not None:
            self.warming.set()
            self.warming = None

    def supersede(self, uri: str) -> None:
        """Cancel the document's older completion request still in progress (the newest one wins)."""
        self.stop_warming()  # a request outranks a background prefill
        older = self.requests.get(uri)
        self.counts["requests"] += 1
        if older is not None and older is not asyncio.current_task() and not older.done():
            older.cancel()
            self.counts["superseded"] += 1
        self.requests[uri] = asyncio.current_task()

    def debounce(self, uri: str, timeline, automatic: bool) -> float:
        if not automatic:
            return 0.0
        if self.options.debounce_ms != "auto":
            return self.options.debounce_ms / 1000
        rate = self.typing.get(uri)
        return adaptive_debounce(timeline.ttft_s, rate.gap if rate else None)

    def follow(self, follower: StreamFollower) -> None:
        """Start notifying a stream's growth, ending the document's previous notifier."""
        old = self.followers.get(follower.uri)
        if old is not None:
            old.stop(cancelled=True)
        self.followers[follower.uri] = follower
        follower.start()

    def stream_finished(self, stream: Stream) -> None:
        if stream.decoded and stream.decode_seconds > 0:
            self.pacer.measured(stream.decoded, stream.decode_seconds)
        self.last_stream = stream
        self.send_status()

    def send_status(self) -> None:
        """`sparkls/status`: the selected backend, and how the last stream with it went."""
        backend = self.pacer.backend_name
        s = getattr(self, "last_stream", None)
        if s is not None and s.timeline.backend != backend:
            s = None  # the last stream ran on another backend: nothing measured with this one yet
        messages.notify(
            self,
            messages.Status(
                backend=backend,
                engine=self.engine.name,
                kernel_path=self.engine.describe().get("kernelPath"),  # neural core's kernels
                modelled_tokens_per_second=_finite(s.timeline.tokens_per_s) if s else None,
                measured_tokens_per_second=round(s.decoded / s.decode_seconds, 1) if s and s.decoded and s.decode_seconds else None,
                ttft_ms=round(s.first_shown * 1000, 1) if s and s.first_shown is not None else None,
                kept_up=s.kept_up if s else True,
                requests=self.counts["requests"],
                typeahead=self.counts["typeahead"],
                superseded=self.counts["superseded"],
                live_streams=len(self.hub.live),  # decodes still running
                suggestions=self.suggestions.status(),
            ),
        )

    def report_server_error(self, error: Exception, source) -> None:
        """Log out-of-band errors (bad frames, failing notifications) instead of popping up messages."""
        log.error("%s: %s", getattr(source, "__name__", source), error or type(error).__name__)

    def shutdown(self) -> None:
        """Stop everything this server runs (pygls's ``shutdown``, extended), for a server living
        inside another process (the in-process replay, tests): what the end of a `sparkls serve`
        process does, whether or not the client sent the LSP ``shutdown``. Background tasks,
        decodes and streams stop; the decode, I/O and pygls pools are shut down; the log stops
        going to this client."""
        self.stop_warming()
        for task in (self.index_task, self.load_task, *self.requests.values()):
            if task is not None:
                task.cancel()
        for follower in self.followers.values():
            if follower.task is not None:
                follower.task.cancel()
        self.hub.cancel_all()
        root = logging.getLogger("sparkls")
        for handler in [h for h in root.handlers if isinstance(h, LspLogHandler) and h.server is self]:
            root.removeHandler(handler)
        pools = (self.pool, self.io_pool)
        # Joined in a helper thread: a worker stuck in a read must not hang the caller.
        joiner = threading.Thread(
            target=lambda: [p.shutdown(wait=True, cancel_futures=True) for p in pools], name="sparkls-close", daemon=True
        )
        joiner.start()
        super().shutdown()  # pygls: its stop event and its own thread pool
        joiner.join(CLOSE_TIMEOUT_S)
        if joiner.is_alive():
            log.warning("a worker thread did not end within %.0f s of shutdown", CLOSE_TIMEOUT_S)

    def root(self) -> Path | None:
        folders = self.workspace.folders
        uri = next(iter(folders.values())).uri if folders else self.workspace.root_uri
        path = to_fs_path(uri) if uri else None
        return Path(path) if path else None


def _measured_remote(measurement) -> None:
    remote = host().get("remote")
    if getattr(remote, "name", "") == "remote" and hasattr(remote, "update"):
        remote.update(measurement)


def _finite(x: float) -> float | None:
    return round(x, 1) if math.isfinite(x) else None


def initialize(ls: SparklsServer, params: types.InitializeParams) -> None:
    """Read the settings passed in initializationOptions."""
    ls.loop, ls.loop_thread = asyncio.get_running_loop(), threading.get_ident()
    logging.getLogger("sparkls").addHandler(LspLogHandler(ls))
    ls.options, error = parse_options(params.initialization_options)
    if error:
        log.warning(error)
    ls.pull_on_start = params.initialization_options is None
    experimental = params.capabilities.experimental
    try:
        caps = messages.receive(experimental.get("sparkls") if isinstance(experimental, dict) else None, messages.ClientCapabilities)
    except JsonRpcInvalidParams as exc:  # a client's odd experimental capability: no streaming, and say why
        log.warning("experimental.sparkls ignored: %s", exc)
        caps = messages.ClientCapabilities()
    ls.streaming = caps.inline_completion_stream
    ls.apply_options()
    ls.set_workspace()
    ls.choose_model()
    log.info("sparkls %s: engine %s, position encoding %s", __version__, ls.engine_label, ls.encoding)


async def initialized(ls: SparklsServer, params: types.InitializedParams) -> None:
    """Start counting the workspace's files and loading the neural model in the background; first, a client
    that sent no initializationOptions is asked for its settings."""
    ls.io_pool.submit(host)  # plugins load (guarded, time-boxed) off the event loop
    if ls.pull_on_start and ls.can_pull_settings() and await ls.pull_settings():
        ls.choose_model()
    root = ls.root()
    if root is not None and root.is_dir() and ls.options.index.enabled:
        ls.index_task = asyncio.ensure_future(_index(ls, root))
    if ls.model_path is not None:
        ls.load_task = asyncio.ensure_future(_load_model(ls, ls.model_path))


async def _load_model(ls: SparklsServer, path: Path) -> None:
    try:
        engine = await asyncio.get_running_loop().run_in_executor(ls.pool, load_neural_engine, path)
    except Exception as exc:  # a bad or missing file: keep serving with the n-gram core
        log.error("could not load %s (%s): serving with the n-gram core", path, exc)
        ls.engine_label = "ngram"
    else:
        ls.local_engine = CopyChoice(engine, NgramEngine(ls.model))
        log.info("neural engine ready: %s", path.name)
    ls.send_status()


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
        ls.io_pool,
        lambda: index_workspace(ls.model, root, ls.options.index, progress, key=lambda p: p.as_uri(),
                                skip=ls.exclusions.excluded),
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


def did_change_configuration(ls: SparklsServer, params: types.DidChangeConfigurationParams) -> None:
    """Apply settings pushed by the client; without any (``null``, the pull model), ask for them."""
    if params.settings in (None, {}) and ls.can_pull_settings():
        asyncio.ensure_future(ls.pull_settings())
        return
    ls.apply_settings(params.settings)


def did_open(ls: SparklsServer, params: types.DidOpenTextDocumentParams) -> None:
    item = params.text_document
    ls.documents[item.uri] = Document(item.uri, item.text, item.version, item.language_id)
    if ls.excluded(item.uri):
        return  # kept for its own edits, never counted nor warmed (edits to an uncounted document are ignored)
    ls.model.open_document(item.uri, lf(item.text))  # the model counts LF views (completion.py)
    ls.warm(item.uri)


def did_change(ls: SparklsServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    doc = ls.documents.get(uri)
    if doc is None:
        log.warning("didChange for a document that is not open: %s", uri)
        return
    ls.typing.setdefault(uri, TypingRate()).keystroke()
    for change in params.content_changes:
        old, had_cr = doc.text, doc.has_cr
        start, end, inserted = doc.apply(change, ls.encoding)
        ls.next_edits.record(uri, old, start, end, inserted, params.text_document.version)
        if had_cr or doc.has_cr:  # engines and the n-gram model see LF text
            start, end, inserted = lf_edit(old, start, end, inserted)
        ls.model.edit_document(uri, start, end, inserted)
    doc.version = params.text_document.version


def did_close(ls: SparklsServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    if ls.documents.pop(uri, None) is None:
        log.warning("didClose for a document that is not open: %s", uri)
        return  # never read a file because a client named it
    ls.hub.cancel(uri)
    ls.stop_warming()
    ls.next_edits.forget(uri)
    ls.suggestions.forget(uri)
    ls.model.close_document(uri, restore_file=False)
    ls.local_engine.release(uri)
    root = ls.root()
    path = to_fs_path(uri) if uri.startswith("file:") else None
    if root is not None and path and ls.options.index.enabled and not ls.excluded(uri):
        # The file on disk counts again as part of the workspace, read off the loop.
        asyncio.ensure_future(_restore_file(ls, uri, Path(path), root))


async def _restore_file(ls: SparklsServer, uri: str, path: Path, root: Path) -> None:
    result = await safe_files.read_text_async(path, ls.options.index.max_file_bytes, [root], ls.io_pool)
    text = safe_files.text_or_none(result, "didClose:")
    if text is not None:  # add_file skips it if it was reopened meanwhile
        await asyncio.get_running_loop().run_in_executor(ls.io_pool, ls.model.add_file, uri, lf(text))


async def _view(ls: SparklsServer, uri: str, position: types.Position, automatic: bool) -> tuple[View, types.Range] | None:
    """The stream view that answers a request at ``position``, and the range its text replaces.

    Typing along a live or recent suggestion reuses its stream; anything else waits out the
    debounce (automatic requests only) and starts a new one, stopping the document's old one.
    """
    doc = ls.documents.get(uri)
    if doc is None:
        log.warning("completion requested for a document that is not open: %s", uri)
        return None
    try:
        offset = doc.offset_at(position, ls.encoding)
    except PositionError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    # Snapshot before the first await: didChange may edit the document meanwhile.
    if ls.excluded(uri):
        log.debug("no completion in %s: excluded from prompts", uri)
        return None
    ctx = ls.context(doc, offset)
    word = typed_word(ctx.prefix)
    range_ = types.Range(doc.position_at(offset - len(word), ls.encoding), doc.position_at(offset, ls.encoding))
    ls.supersede(uri)
    hit = ls.hub.attach(uri, ctx.prefix, ctx.suffix)
    if hit is not None:
        stream, typed = hit
        log.debug("typeahead: %r typed along stream %s", typed, stream.id)
        ls.counts["typeahead"] += 1
        return View(stream, len(typed), word, ls.hub.next_id(), line_break(doc)), range_
    timeline = ls.pacer.timeline(uri, ctx)
    delay = ls.debounce(uri, timeline, automatic)
    if delay > 0:
        ls.hub.cancel(uri)  # whatever it was decoding is stale now
        await asyncio.sleep(delay)  # a newer request or $/cancelRequest cancels us here
    stream = ls.hub.start(uri, ctx, timeline)
    if stream.task is not None:
        stream.task.add_done_callback(lambda _: ls.stream_finished(stream))
    return View(stream, 0, word, stream.id, line_break(doc)), range_


async def _answer(
    ls: SparklsServer, uri: str, position: types.Position, automatic: bool, stream: bool
) -> tuple[str, types.Range, View] | None:
    """Wait for what the request can show: the first paced text when ``stream``, all of it otherwise."""
    found = await _view(ls, uri, position, automatic)
    if found is None:
        return None
    view, range_ = found
    source = view.stream
    source.watchers += 1
    try:
        while not source.done and (not stream or not view.insert_text()):
            await source.changed()
    except asyncio.CancelledError:
        source.watchers -= 1
        ls.hub.orphaned(source)
        raise
    text = "" if source.failed and not stream else view.insert_text()  # a broken stream's text is not an answer
    if not stream or not text:
        source.watchers -= 1  # nothing will follow this answer
    return (text, range_, view) if text else None


async def inline_completion(ls: SparklsServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    """Ghost text at the cursor, for invoked and automatic triggers alike; streamed to clients that opt in."""
    uri = params.text_document.uri
    automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
    request_id = ls.protocol.msg_id
    rate = ls.typing.get(uri)
    since_key = time.monotonic() - rate.last if rate and rate.last is not None else None
    found = await _answer(ls, uri, params.position, automatic, ls.streaming)
    if found is None:
        return types.InlineCompletionList(items=[])
    text, range_, view = found
    if view.stream_id != view.stream.id:
        ls.suggestions.alias(view.stream_id, view.stream.id)  # typed along: the same suggestion
    elif not gate_lsp.offer(ls, uri, params.position, view, not automatic, since_key):
        if ls.streaming:
            view.stream.watchers -= 1  # no follower will watch it
        ls.hub.cancel(uri)
        return types.InlineCompletionList(items=[])
    if ls.streaming:
        version = ls.documents[uri].version if uri in ls.documents else 0
        ls.follow(StreamFollower(ls, view, request_id, uri, version, range_))
    return messages.lsp_inline_list(text, range_, messages.lsp_accept_command(view.stream_id))


async def completion(ls: SparklsServer, params: types.CompletionParams) -> types.CompletionList:
    """The same suggestion as a completion item, for clients without inline completion."""
    uri = params.text_document.uri
    invoked = params.context is None or params.context.trigger_kind == types.CompletionTriggerKind.Invoked
    # Completion items cannot grow: wait for the whole text.
    found = await _answer(ls, uri, params.position, automatic=not invoked, stream=False)
    if found is None:
        return types.CompletionList(is_incomplete=True, items=[])
    text, range_, _ = found
    return messages.lsp_completion_list(text, range_)


def select_backend(ls: SparklsServer, *args) -> dict:
    """Make ``args[0]`` the active backend for the next requests."""
    name = str(args[0]) if args else ""
    try:
        host().get(name, strict=True)
    except ValueError as exc:
        raise JsonRpcInvalidParams(f"{exc}; available: {', '.join(host().names())}") from None
    ls.options = msgspec.structs.replace(ls.options, backend=name)
    ls.pacer.setting = name
    log.info("backend: %s", name)
    ls.send_status()
    return messages.result(messages.SelectedBackend(backend=name))


def list_backends(ls: SparklsServer, *args) -> list[dict]:
    """Every backend the plugin host knows, built-in or third-party, with its availability."""
    h = host()
    return messages.result([
        messages.BackendInfo(name=e.name, available=e.available, reason=e.reason or "", active=e.name == ls.pacer.backend_name)
        for e in (h.entries[n] for n in h.names(available=False))
    ])


def accept(ls: SparklsServer, *args) -> None:
    """A suggestion (or part of it) was accepted: record it in the suggestion log (docs/protocol.md, "Feedback")."""
    accepted = messages.receive(args[0] if args else None, messages.Accepted)
    log.debug("accepted %s", accepted)
    ls.suggestions.accept(accepted.stream_id, accepted.kind, accepted.accepted_chars)
    ls.send_status()


def did_dismiss(ls: SparklsServer, params) -> None:
    """A suggestion was dismissed: do not offer it again from the cache."""
    dismissed = messages.receive(params, messages.DidDismiss)
    if dismissed.stream_id:
        ls.hub.forget(dismissed.stream_id)
    ls.suggestions.end(dismissed.key, dismissed.reason or "dismissed")
    ls.send_status()


def exit_(ls: SparklsServer, params: None) -> None:
    ls.exit_code = 0 if shutdown_received(ls.protocol) else 1


def shutdown(ls: SparklsServer, params: None) -> None:
    if ls.index_task is not None:
        ls.index_task.cancel()
    ls.hub.cancel_all()
    ls.pool.shutdown(wait=False, cancel_futures=True)


def register(server: SparklsServer) -> None:
    """Add every handler to ``server`` (the order is the order clients see the commands in)."""
    server.feature(types.INITIALIZE)(initialize)
    server.feature(types.INITIALIZED)(initialized)
    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    # documents
    server.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    server.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)
    server.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)
    # completions, and what became of them
    server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())(inline_completion)
    server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())(completion)
    server.command("sparkls.selectBackend")(select_backend)
    server.command("sparkls.listBackends")(list_backends)
    server.command("sparkls.accept")(accept)
    server.feature("sparkls/didDismiss")(did_dismiss)
    next_edit_lsp.register(server)
    gate_lsp.register(server)
    # the end of a session
    server.feature(types.EXIT)(exit_)
    server.feature(types.SHUTDOWN)(shutdown)


def make_server() -> SparklsServer:
    """A new server with every handler registered and no state from any other session:
    `sparkls serve` runs one; tests and the in-process replay make as many as they need."""
    server = SparklsServer()
    register(server)
    return server
