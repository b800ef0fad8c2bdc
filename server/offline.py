"""One completion without an editor, through the same pipeline: `sparkls complete` and `sparkls race`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from lsprotocol import types

from sparkls.decode.engine import CompletionContext, Engine
from sparkls.decode.neural.compiled import kernels_cached
from sparkls.decode.ngram.ngram_engine import NgramEngine
from sparkls.decode.ngram.ngram_model import CodeModel
from sparkls.server.completion import completion_context
from sparkls.server.documents import UTF32, Document
from sparkls.server.engines import load_neural_engine, neural_model_path
from sparkls.server.indexer import index_workspace, read_text
from sparkls.server.options import ModelOptions, Options

log = logging.getLogger("sparkls")


def prepare_at(
    path: str, line: int, column: int, workspace: str | None = None, engine: str = "auto", max_tokens: int = 64
) -> tuple[Engine, CompletionContext, CodeModel]:
    """The engine and context for 1-based ``line`` and ``column`` (characters) of a file.

    Indexes the workspace (default: the file's folder), opens the file as the editor would
    with its folder's other files of the same kind open too (they supply snippets).
    """
    file = Path(path).resolve()
    text = file.read_text(encoding="utf-8")
    root = Path(workspace).resolve() if workspace else file.parent
    options = Options()
    model = CodeModel()
    report = index_workspace(model, root, options.index, key=lambda p: p.as_uri())
    log.info("indexed %d files (%d tokens) under %s in %.2fs", report.files, report.tokens, root, report.seconds)
    doc = Document(file.as_uri(), text)
    model.open_document(doc.uri, text)
    others = [
        Document(p.as_uri(), t)
        for p in sorted(file.parent.glob(f"*{file.suffix}"))[:8]
        if p != file and (t := read_text(p, options.index.max_file_bytes)) is not None
    ]
    offset = doc.offset_at(types.Position(line - 1, column - 1), UTF32)
    ctx = completion_context(doc, offset, max_tokens, others)
    completer: Engine = NgramEngine(model)
    if engine != "ngram":
        model_path = neural_model_path(ModelOptions(engine=engine))
        if model_path is not None:
            if not kernels_cached():  # otherwise the first run is silent for ~15 s
                print("sparkls: compiling the neural decode core for this CPU (first run only, about 15 seconds)",
                      file=sys.stderr, flush=True)
            completer = load_neural_engine(model_path)
    log.info("engine: %s", completer.name)
    return completer, ctx, model


def complete_at(path: str, line: int, column: int, workspace: str | None = None, engine: str = "auto") -> str:
    """The completion at 1-based ``line`` and ``column`` (in characters) of the file at ``path``."""
    completer, ctx, _ = prepare_at(path, line, column, workspace, engine)
    text = ""
    for text in completer.complete(ctx, lambda: False):
        pass
    return text
