"""`sparkls complete FILE:LINE:COL`: one completion without an editor, through the same pipeline."""

from __future__ import annotations

import logging
from pathlib import Path

from sparkls.decode.ngram_engine import NgramEngine
from sparkls.decode.ngram_model import CodeModel
from sparkls.server.completion import completion_context
from sparkls.server.documents import Document, UTF32
from sparkls.server.indexer import index_workspace
from sparkls.server.engines import load_neural_engine, neural_model_path
from sparkls.server.options import ModelOptions, Options

from lsprotocol import types

log = logging.getLogger("sparkls")


def complete_at(path: str, line: int, column: int, workspace: str | None = None, engine: str = "auto") -> str:
    """The completion at 1-based ``line`` and ``column`` (in characters) of the file at ``path``."""
    file = Path(path).resolve()
    text = file.read_text(encoding="utf-8")
    root = Path(workspace).resolve() if workspace else file.parent
    options = Options()
    model = CodeModel()
    report = index_workspace(model, root, options.index, key=lambda p: p.as_uri())
    log.info("indexed %d files (%d tokens) under %s in %.2fs", report.files, report.tokens, root, report.seconds)
    uri = file.as_uri()
    doc = Document(uri, text)
    model.open_document(uri, text)
    offset = doc.offset_at(types.Position(line - 1, column - 1), UTF32)
    ctx = completion_context(doc, offset, options.max_tokens)
    completer = NgramEngine(model)
    if engine != "ngram":
        path = neural_model_path(ModelOptions(engine=engine))
        if path is not None:
            completer = load_neural_engine(path)
    log.info("engine: %s", completer.name)
    text_out = ""
    for text_out in completer.complete(ctx, lambda: False):
        pass
    return text_out
