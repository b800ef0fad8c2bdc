"""sparkls.plugins: the backend contract and the host that discovers backends.

What the server uses::

    from sparkls.plugins import host, load_model, Request

    h = host()                                    # discovered once per process
    backend = h.get("nvidia-blackwell:gb200")     # unknown/unavailable -> "local" (logged)
    req = Request(model=load_model("llama-3.1-70b"), prompt_tokens=1800, new_tokens=64)
    tl = h.timeline(None, req, backend=backend)   # checked; on failure local answers
    h.get("local").update(tokens_per_s=measured)  # keep local's measured rate current

and ``sparkls.server.cadence.pace(tl, snapshots, RealClock())`` streams at ``tl``'s cadence.
Plugin authors: see docs/plugins.md.
"""

from sparkls.plugins.api import (
    Backend,
    Deployment,
    InvalidTimeline,
    ModelSpec,
    Request,
    SpecError,
    Speculative,
    Timeline,
    TomlBackend,
    builtin_models,
    check_timeline,
    config_dir,
    load_model,
    load_spec,
    merge,
    read_toml,
    user_spec_dir,
)
from sparkls.plugins.registry import AUTO, DISABLE_AUTOLOAD, FALLBACK, GROUP, SELECT, Host, host, reset

__all__ = [
    "Backend", "Deployment", "InvalidTimeline", "ModelSpec", "Request", "SpecError", "Speculative", "Timeline",
    "TomlBackend", "builtin_models", "check_timeline", "config_dir", "load_model", "load_spec", "merge", "read_toml",
    "user_spec_dir", "AUTO", "DISABLE_AUTOLOAD", "FALLBACK", "GROUP", "SELECT", "Host", "host", "reset",
]
