"""Whether the neural core's kernels are already compiled on this machine (Numba's on-disk cache), so a
command can tell the user that its first run spends a while compiling them."""

from __future__ import annotations

import os
from pathlib import Path

# Warm-up compiles the forward pass after the kernels it calls (LlamaModel.warmup), so its index file marks a finished compile.
_MARK = "llama.forward-*.nbi"


def kernels_cached() -> bool:
    """True when Numba's cache (beside the sources, or under ``NUMBA_CACHE_DIR``) holds the forward pass."""
    places = [Path(__file__).parent / "__pycache__"]
    if os.environ.get("NUMBA_CACHE_DIR"):
        places.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    return any(any(p.rglob(_MARK)) for p in places if p.is_dir())
