"""Drive `sparkls serve` over stdio as an editor would (a real subprocess, real JSON-RPC)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

FIXTURE_PROJECT = Path(__file__).parent / "fixtures" / "project"

INLINE_CAPS = types.ClientCapabilities(
    text_document=types.TextDocumentClientCapabilities(
        inline_completion=types.InlineCompletionClientCapabilities(),
        synchronization=types.TextDocumentSyncClientCapabilities(),
    ),
    window=types.WindowClientCapabilities(work_done_progress=True),
)
COMPLETION_ONLY_CAPS = types.ClientCapabilities(
    text_document=types.TextDocumentClientCapabilities(completion=types.CompletionClientCapabilities()),
    general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf8]),
)


class EditorClient(LanguageClient):
    """A pygls client that records what the server sends on its own."""

    def __init__(self) -> None:
        super().__init__("sparkls-tests", "1")
        self.log_messages: list[types.LogMessageParams] = []
        self.progress: list[object] = []
        self.index_done = asyncio.Event()
        self.stderr: list[bytes] = []  # the server's log lines

        @self.feature(types.WINDOW_LOG_MESSAGE)
        def _log(params: types.LogMessageParams) -> None:
            self.log_messages.append(params)
            if params.message.startswith("indexed "):
                self.index_done.set()

        @self.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def _create(params: types.WorkDoneProgressCreateParams) -> None:
            return None

        @self.feature(types.PROGRESS)
        def _progress(params: types.ProgressParams) -> None:
            self.progress.append(params.value)

    async def open(self, uri: str, text: str, version: int = 1, language: str = "python") -> None:
        self.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text))
        )

    def edit(self, uri: str, version: int, line: int, char: int, end_line: int, end_char: int, text: str) -> None:
        rng = types.Range(types.Position(line, char), types.Position(end_line, end_char))
        self.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=version, uri=uri),
                [types.TextDocumentContentChangePartial(range=rng, text=text)],
            )
        )

    def inline_params(self, uri: str, line: int, char: int, automatic: bool = False) -> types.InlineCompletionParams:
        kind = types.InlineCompletionTriggerKind.Automatic if automatic else types.InlineCompletionTriggerKind.Invoked
        return types.InlineCompletionParams(
            context=types.InlineCompletionContext(trigger_kind=kind),
            text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(line, char),
        )


async def start_server(
    capabilities: types.ClientCapabilities = INLINE_CAPS,
    options: dict | None = None,
    root: Path = FIXTURE_PROJECT,
    before_initialize=None,
) -> tuple[EditorClient, types.InitializeResult]:
    """A server over stdio, initialized; ``before_initialize(client)`` registers client handlers first."""
    client = EditorClient()
    if before_initialize is not None:
        before_initialize(client)
    await client.start_io(sys.executable, "-m", "sparkls.server", "serve")
    # Drain stderr as an editor does: an unread pipe fills up and blocks the server's logging.
    client.stderr_task = asyncio.create_task(_drain(client._server.stderr, client.stderr))
    result = await client.initialize_async(
        types.InitializeParams(
            capabilities=capabilities,
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(root.as_uri(), root.name)],
            initialization_options=options,
        )
    )
    client.initialized(types.InitializedParams())
    return client, result


async def _drain(stream: asyncio.StreamReader, into: list[bytes]) -> None:
    while line := await stream.readline():
        into.append(line)
        del into[:-2000]


async def stop_server(client: EditorClient) -> int:
    """shutdown → exit; the server's exit code."""
    await client.shutdown_async(None)
    client.exit(None)
    proc = client._server
    code = await asyncio.wait_for(proc.wait(), 10)
    await client.stop()
    return code
