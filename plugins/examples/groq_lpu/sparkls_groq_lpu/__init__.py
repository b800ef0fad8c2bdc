"""A worked example of a sparkls backend plugin: the Groq LPU.

An LPU has 230 MB of SRAM and no HBM, so a model is spread over as many chips as its
weights need (Llama 3.1 8B in BF16: 16.1 GB, 78 chips; 70B: 141 GB, 683 chips), and a token
walks through all of them. A decode step is the layers' latency plus a hop per chip:

    t_step = L·t_layer + chips·t_hop,   TTFT = t_rtt + t_step + 2·P·n / (η·F·chips)

Chip figures: Groq's GroqChip product brief (230 MB SRAM, 80 TB/s, 188 TFLOPS FP16).
Fitted to Llama 3.1 8B at 751 and 70B at 250 output tokens/s per user, as Artificial
Analysis measured Groq's API in 2024 (artificialanalysis.ai, provider Groq).

It uses only the public contract in :mod:`sparkls.plugins.api`: :class:`TomlBackend` reads
``groq-lpu.toml`` next to this file, merges the user's own ``groq-lpu.toml`` over it and
validates the result into :class:`LpuSpec`.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec

from sparkls.plugins.api import Request, Timeline, TomlBackend

Pos = Annotated[float, msgspec.Meta(gt=0)]


class LpuSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    part: str = "GroqChip (LPU v1)"
    sram_bytes: Pos
    sram_bw: Pos
    flops: Pos
    weight_fraction: Annotated[float, msgspec.Meta(gt=0, le=1)]
    layer_latency_s: Pos
    chip_hop_s: Pos
    network_rtt_s: Annotated[float, msgspec.Meta(ge=0)]


class GroqLPU(TomlBackend):
    """Groq LPU v1 chips, weights in SRAM, layers pipelined over hundreds of chips."""

    name = "groq-lpu"
    priority = 0.5  # below local's 10: chosen by name, never by "auto"
    spec_type = LpuSpec
    spec: LpuSpec

    def timeline(self, request: Request, seed: int = 0) -> Timeline:
        s, m = self.spec, request.model
        chips = m.deployment.chips or math.ceil(m.weight_bytes / (s.weight_fraction * s.sram_bytes))
        step = m.layers * s.layer_latency_s + chips * s.chip_hop_s
        prefill = 2 * m.active * request.fresh_tokens / (0.5 * s.flops * chips)
        ttft = s.network_rtt_s + step + prefill
        steps = [ttft + i * step / m.speculative.accept for i in range(request.new_tokens)]
        return Timeline(backend=self.name, token_times=tuple(steps), chips=chips, concurrency=request.streams)
