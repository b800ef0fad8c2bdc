"""sparkls.plugins: the backend contract and the host that discovers backends.

What the server uses::

    from sparkls.plugins import host, Request
    from sparkls.backends.stream import load_model

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
    check_timeline,
    load_spec,
)
from sparkls.plugins.registry import DISABLE_AUTOLOAD, FALLBACK, GROUP, Host, host, reset

__all__ = [
    "Backend", "Deployment", "InvalidTimeline", "ModelSpec", "Request", "SpecError", "Speculative",
    "Timeline", "check_timeline", "load_spec", "DISABLE_AUTOLOAD", "FALLBACK", "GROUP", "Host", "host", "reset",
]
