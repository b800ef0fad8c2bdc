"""``remote``: real tokens from a model served elsewhere, shown as they arrive.

The tokens come from :class:`sparkls.decode.remote.remote_engine.RemoteEngine` (configured in the
user's own settings); this backend is its registry entry (``sparkls.backends`` entry point
``remote``). Its timeline is "as produced" like ``local``'s, so the server shows each remote
token when it arrives; its estimated figures follow the last measured request
(:meth:`RemoteBackend.update`), seeded from ``remote.toml`` with what llama.cpp's server measured
on a 2-core machine. :func:`timeline_of` and :func:`request_of` put a measured request beside
the modelled backends.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import msgspec

from sparkls.plugins.api import ModelSpec, Request, Timeline, TomlBackend

Pos = Annotated[float, msgspec.Meta(gt=0, le=3600)]


def timeline_of(measurement: Any, backend: str = "remote") -> Timeline | None:
    """A measured request's cadence as a Timeline (real times, not a model), or None without tokens."""
    if not measurement.token_times:
        return None
    return Timeline(backend=backend, token_times=tuple(measurement.token_times), as_produced=True)


def request_of(measurement: Any, model: ModelSpec) -> Request | None:
    """A measured request's shape, to ask the modelled backends what they predict for it."""
    if not measurement.token_times:
        return None
    return Request(model=model, prompt_tokens=measurement.prompt_tokens, new_tokens=measurement.tokens)


class RemoteSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    part: str = "OpenAI-compatible server"
    ttft_s: Annotated[float, msgspec.Meta(ge=0)]
    tokens_per_s: Pos


class RemoteBackend(TomlBackend):
    """Tokens from a remote engine, shown as they arrive (the cadence is real, not modelled)."""

    name = "remote"
    priority = 0.0  # chosen by name only: it needs an engine configured in the settings
    spec_type = RemoteSpec
    spec: RemoteSpec

    def update(self, measurement: Any) -> None:
        """Follow a measured request (a :class:`~sparkls.decode.remote.remote_client.Measurement`): its TTFT and
        output rate become the estimates."""
        changes: dict[str, float] = {}
        if measurement.ttft_s is not None:
            changes["ttft_s"] = measurement.ttft_s
        tps = measurement.tokens_per_s
        if tps is not None and math.isfinite(tps) and tps > 0:
            changes["tokens_per_s"] = tps
        self.spec = msgspec.structs.replace(self.spec, **changes)

    def timeline(self, request: Request, seed: int = 0) -> Timeline:
        dt = 1 / self.spec.tokens_per_s
        return Timeline(
            backend=self.name,
            token_times=tuple(self.spec.ttft_s + i * dt for i in range(request.new_tokens)),
            chips=1,
            concurrency=1,
            as_produced=True,
        )
