"""``cerebras-wse3``: wafer-scale serving with weights resident in on-wafer SRAM.

Weights never leave SRAM (44 GB per wafer at 21 PB/s), so bandwidth is not the limit:
8B in BF16 at 1,800 tok/s reads 28.9 TB/s, 0.14 % of one wafer's SRAM bandwidth. Each
layer occupies its own region of the wafer and a token flows through them in a pipeline,
so a decode step costs the per-layer pipeline latency times the layers, plus a hop per
extra wafer when the model is split across wafers (the fewest that hold the weights and
the streams' KV cache). Concurrent streams fill the pipeline instead of slowing it, until
one layer's work for all of them exceeds the chain latency; more streams need more wafers::

    t_step = (max(t_sched + L·t_layer + (W-1)·t_hop, 2·P_act·B·a / (η_c·F·W))
              + (P_act·b + B·KV·ctx) / (η_m·BW·W)) · (1 + draft cost)
    TTFT   = t_rtt + L·t_layer + (W-1)·t_hop + (2·P_act·n + 4·L·d·(n·c + n²/2)) / (η_c·F·W)

Published figures it reproduces (hardware.md §2; ``sparkls backends calibrate``): Llama
3.1 8B at 1,800 tok/s on one CS-3 and 70B at 450 tok/s on four (rows 3-4) with the
``launch-2024-08`` variant (16 µs per layer, synchronous wafer I/O); with the current
software (6 µs per layer, asynchronous wafer I/O, hardware.md §4) 70B at 2,100 tok/s with
speculative decoding (row 5), 405B at 969 tok/s and 0.24 s TTFT on 20 wafers (row 6) and
Qwen3-32B at 2,100-2,600 tok/s (row 9); Qwen3-235B-A22B at 1,400-1,500 (row 9) was held out.
"""

from __future__ import annotations

import math
import msgspec

from sparkls.backends.stream import TomlBackend, stream
from sparkls.plugins.api import Fraction, NonNeg, Positive, Request, Timeline

Pos, Frac = Positive, Fraction


class WaferSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One wafer and the serving software's latencies (see ``cerebras-wse3.toml``)."""

    part: str
    variant: str = ""
    sram_bytes: Pos
    sram_bw: Pos
    flops: Pos
    io_bw: Pos
    weight_fraction: Frac
    bw_efficiency: Frac
    compute_efficiency: Frac
    layer_latency_s: NonNeg
    wafer_hop_s: NonNeg
    step_overhead_s: NonNeg
    network_rtt_s: NonNeg
    jitter: NonNeg = 0.0


class CerebrasWSE3(TomlBackend):
    """Cerebras CS-3 wafers, weights in SRAM, layers pipelined across wafers."""

    name = "cerebras-wse3"
    priority = 3.0
    spec_type = WaferSpec
    spec: WaferSpec

    def wafers(self, req: Request) -> int:
        if req.model.deployment.chips:
            return req.model.deployment.chips
        m = req.model
        need = m.weight_bytes + req.streams * m.kv_per_token * (req.prompt_tokens + req.new_tokens)
        return max(1, math.ceil(need / (self.spec.weight_fraction * self.spec.sram_bytes)))

    def chain(self, req: Request, wafers: int) -> float:
        """A token's trip through every layer and wafer: the pipeline latency."""
        s = self.spec
        return req.model.layers * s.layer_latency_s + (wafers - 1) * (
            s.wafer_hop_s + req.model.hidden * 2 / s.io_bw
        )

    def step(self, req: Request, wafers: int, ctx: int) -> float:
        s, m = self.spec, req.model
        tokens = req.streams * m.speculative.accept
        compute = 2 * m.active * tokens / (s.compute_efficiency * s.flops * wafers)
        mem = (m.active * m.bytes_per_param + req.streams * m.kv_per_token * ctx) / (
            s.bw_efficiency * s.sram_bw * wafers
        )
        busy = max(s.step_overhead_s + self.chain(req, wafers), compute)
        return (busy + mem) * (1 + m.speculative.draft_cost)

    def timeline(self, request: Request, seed: int = 0) -> Timeline:
        s, m = self.spec, request.model
        w = self.wafers(request)
        n, c = request.fresh_tokens, request.cached_tokens
        flops = 2 * m.active * n + 4 * m.layers * m.hidden * (n * c + n * n / 2)
        ttft = s.network_rtt_s + self.chain(request, w) + flops / (s.compute_efficiency * s.flops * w)
        return stream(
            self.name,
            request,
            ttft,
            lambda ctx: self.step(request, w, ctx),
            chips=w,
            jitter=s.jitter,
            seed=seed,
        )
