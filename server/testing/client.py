"""Drive `sparkls serve` over stdio as an editor would (a real subprocess, real JSON-RPC).

:func:`start_server` spawns the server in a process group of its own, so :func:`close_server`
can always end it (and anything it started) whatever state a failed test left it in.
Client capabilities come from recorded real-client sessions (:func:`recorded_capabilities`)
rather than being written by hand.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Sequence

from lsprotocol import types
from lsprotocol.converters import get_converter
from pygls.lsp.client import LanguageClient

from sparkls.server.protocol import client_process, expect_response
from sparkls.server.testing import trace

SERVE = [sys.executable, "-m", "sparkls.server", "serve"]


def recorded_capabilities(path: str | Path, **changes) -> types.ClientCapabilities:
    """The capabilities a recorded client sent in its ``initialize`` (a trace's header), with
    top-level ``changes`` (e.g. ``experimental={...}``) applied."""
    caps = {**trace.read(path).header.capabilities}
    caps.update(get_converter().unstructure(changes))
    return get_converter().structure(caps, types.ClientCapabilities)


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

    @property
    def process(self) -> asyncio.subprocess.Process:
        return client_process(self)

    def expect_response(self, msg_id: str | int):
        """A concurrent future for the response to a request this test writes to the server's stdin itself."""
        return expect_response(self.protocol, msg_id)

    async def spawn(self, command: Sequence[str] = SERVE) -> None:
        """Start the server in its own process group and drain its stderr, as an editor does
        (an unread pipe fills up and blocks the server's logging)."""
        await self.start_io(*command, start_new_session=True)
        self.stderr_task = asyncio.create_task(_drain(self.process.stderr, self.stderr))

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
    capabilities: types.ClientCapabilities,
    root: Path,
    options: dict | None = None,
    command: Sequence[str] = SERVE,
    setup: Callable[[EditorClient], None] | None = None,
) -> tuple[EditorClient, types.InitializeResult]:
    """Spawn the server, ``initialize`` it for the workspace ``root``, send ``initialized``;
    ``setup(client)`` first registers handlers for what the server asks the client."""
    client = EditorClient()
    if setup is not None:
        setup(client)
    await client.spawn(command)
    try:
        result = await client.initialize_async(
            types.InitializeParams(
                capabilities=capabilities,
                root_uri=root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(root.as_uri(), root.name)],
                initialization_options=options,
            )
        )
    except BaseException:
        await close_server(client)
        raise
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
    code = await asyncio.wait_for(client.process.wait(), 10)
    await client.stop()
    return code


async def close_server(client: EditorClient, grace: float = 5.0) -> None:
    """End a server whatever state it is in: shutdown → exit if it still answers within
    ``grace`` seconds, then SIGKILL to its whole process group; stop the client."""
    proc = client.process
    if proc is not None and proc.returncode is None:
        try:
            await asyncio.wait_for(stop_server(client), grace)
        except Exception:  # it hangs, or already refuses: it is killed below
            pass
    if proc is not None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its leader: kill it in any case
        except ProcessLookupError:
            pass
        await proc.wait()
    if not client.stopped:
        await client.stop()
    task = getattr(client, "stderr_task", None)
    if task is not None:
        task.cancel()


async def engine_ready(client: LanguageClient, engine: str = "neural", timeout: float = 300) -> list:
    """Wait until the server's `sparkls/status` says `engine` serves; the returned list keeps every status that follows
    (call it right after the server starts, so its first status is not missed)."""
    statuses: list = []
    ready = asyncio.Event()

    def on_status(params) -> None:
        statuses.append(params)
        if params.engine == engine:
            ready.set()

    client.feature("sparkls/status")(on_status)
    await asyncio.wait_for(ready.wait(), timeout)
    return statuses
