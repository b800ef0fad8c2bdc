"""A worked example of a sparkls backend plugin: the Groq LPU.

An LPU has 230 MB of SRAM and no HBM, so a model is spread over as many chips as its
weights need (Llama 3.1 8B in BF16: 16.1 GB, 78 chips; 70B: 141 GB, 683 chips), and a token
walks through all of them. A decode step is the layers' latency plus a hop per chip:

    t_step = L·t_layer + chips·t_hop,   TTFT = t_rtt + t_step + 2·P·n / (η·F·chips)

Fitted to Llama 3.1 8B at 751 and 70B at 250 tok/s (Artificial Analysis, hardware.md row 24).
It only uses the public contract in :mod:`sparkls.plugins.api`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import msgspec

from sparkls.plugins.api import Backend, Request, Timeline, load_spec, merge

Pos = Annotated[float, msgspec.Meta(gt=0)]


class LpuSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sram_bytes: Pos
    sram_bw: Pos
    flops: Pos
    weight_fraction: Annotated[float, msgspec.Meta(gt=0, le=1)]
    layer_latency_s: Pos
    chip_hop_s: Pos
    network_rtt_s: Annotated[float, msgspec.Meta(ge=0)]


class GroqLPU(Backend):
    """Groq LPU v1 chips, weights in SRAM, layers pipelined over hundreds of chips."""

    name = "groq-lpu"
    priority = 0.5
    spec_type = LpuSpec

    def __init__(self, variant: str = "", overrides: dict | None = None) -> None:
        table = msgspec.toml.decode((Path(__file__).with_name("groq-lpu.toml")).read_bytes())
        user = Path(os.environ.get("SPARKLS_BACKEND_DIR", "~/.config/sparkls/backends")).expanduser()
        if (user / "groq-lpu.toml").is_file():
            table = merge(table, msgspec.toml.decode((user / "groq-lpu.toml").read_bytes()))
        super().__init__(load_spec(LpuSpec, table, overrides))

    def timeline(self, request: Request, seed: int = 0) -> Timeline:
        s, m = self.spec, request.model
        chips = m.deployment.chips or math.ceil(m.weight_bytes / (s.weight_fraction * s.sram_bytes))
        step = m.layers * s.layer_latency_s + chips * s.chip_hop_s
        prefill = 2 * m.active * request.fresh_tokens / (0.5 * s.flops * chips)
        ttft = s.network_rtt_s + step + prefill
        steps = [ttft + i * step / m.speculative.accept for i in range(request.new_tokens)]
        return Timeline(backend=self.name, token_times=tuple(steps), chips=chips, concurrency=request.streams)
