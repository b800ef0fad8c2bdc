"""``local``: this machine's decode core as it really runs, measured rather than modelled.

Its timeline says "emit each token as soon as the decode core produced it"
(``as_produced=True``); the times in it only estimate when that will be, from a measured
decode rate the server keeps current with :meth:`LocalBackend.update`. It is the fallback
whenever another backend is unavailable, so it never raises for a valid request.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec

from sparkls.plugins.api import Request, Timeline, TomlBackend

Pos = Annotated[float, msgspec.Meta(gt=0)]


class LocalSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    part: str = "this machine"
    tokens_per_s: Pos
    prefill_tokens_per_s: Pos


class LocalBackend(TomlBackend):
    """The decode core on this machine; its speed is whatever was last measured."""

    name = "local"
    priority = 10.0  # the default: the real thing, unpaced; a modelled backend is opted into
    spec_type = LocalSpec
    spec: LocalSpec

    def update(self, tokens_per_s: float, prefill_tokens_per_s: float | None = None) -> None:
        """Record measured rates (tokens per second); non-finite or non-positive values are ignored."""
        changes = {}
        if math.isfinite(tokens_per_s) and tokens_per_s > 0:
            changes["tokens_per_s"] = float(tokens_per_s)
        if prefill_tokens_per_s and math.isfinite(prefill_tokens_per_s) and prefill_tokens_per_s > 0:
            changes["prefill_tokens_per_s"] = float(prefill_tokens_per_s)
        self.spec = msgspec.structs.replace(self.spec, **changes)

    def timeline(self, request: Request, seed: int = 0) -> Timeline:
        dt = 1 / self.spec.tokens_per_s
        ttft = request.fresh_tokens / self.spec.prefill_tokens_per_s + dt
        return Timeline(
            backend=self.name,
            token_times=tuple(ttft + i * dt for i in range(request.new_tokens)),
            chips=1,
            concurrency=1,
            as_produced=True,
        )
