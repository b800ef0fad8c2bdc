"""``cerebras-wse3``: wafer-scale serving with weights resident in on-wafer SRAM.

Weights never leave SRAM (44 GB per wafer at 21 PB/s), so bandwidth is not the limit:
8B in BF16 at 1,800 tok/s reads 28.9 TB/s, 0.14 % of one wafer's SRAM bandwidth. Each
layer occupies its own region of the wafer and a token flows through them in a pipeline,
so a decode step costs the per-layer pipeline latency times the layers (longer for a
mixture-of-experts layer, which routes to its experts and back), plus a hop per extra wafer.
The model spans the fewest wafers that hold the weights and the streams' KV cache.
Concurrent streams fill the pipeline instead of slowing it, until the wafers' compute for
every token exceeds the chain latency; KV room in SRAM caps how many run at once::

    chain  = L·t_layer + (W-1)·(t_hop + d·2 / io_bw)
    t_pass = max(t_sched + chain, FLOPs / (η_c·F·W), (W-1)·tokens·d·2 / io_bw)
             + bytes / (η_m·BW·W) + t_a2a      (tokens: every stream's next + up to g prompt tokens)
    t_a2a  = 2·L·(t_hop + tokens·k·d·2·(1 - 1/span) / io_bw)   (a layer wider than a wafer)

Prompts stream through the same pipeline in chunks (:mod:`sparkls.backends.load`). Fitted
(``sparkls backends calibrate``): Llama 3.1 8B and 70B at launch (16 µs per layer,
synchronous wafer I/O), the current software at 6 µs per dense layer, 16 µs per MoE layer
(Artificial Analysis' gpt-oss-120B; Kimi K2.6 held out), and g = 5 prompt tokens per trip
from the first-answer time AA measured for gpt-oss-120B on a 10k-token prompt (SemiAnalysis,
pricing Cerebras, likewise assumes prefill runs 5-20x the decode rate). A 10k-token prompt
to a 1T mixture of experts on 15-50 wafers thus starts after 2-3 s, not 0.2 s.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec

from sparkls.backends.load import Capacity
from sparkls.backends.served import Replica, ServedBackend
from sparkls.plugins.api import Fraction, NonNeg, Positive, Request

Pos, Frac = Positive, Fraction


class WaferSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One wafer and the serving software's latencies (see ``cerebras-wse3.toml``)."""

    part: str
    sram_bytes: Pos
    sram_bw: Pos
    flops: Pos
    io_bw: Pos
    weight_fraction: Frac
    bw_efficiency: Frac
    compute_efficiency: Frac
    prefill_tokens_per_pass: Annotated[int, msgspec.Meta(ge=1)]  # prompt tokens one trip through the pipeline carries
    layer_latency_s: NonNeg
    moe_layer_latency_s: NonNeg = 0.0  # a mixture-of-experts layer's pass (0: as a dense layer)
    wafer_hop_s: NonNeg
    step_overhead_s: NonNeg
    network_rtt_s: NonNeg
    frontend_s: NonNeg = 0.0  # API server work before the first token, beyond the round trip
    rtt_jitter: NonNeg = 0.25
    jitter: NonNeg = 0.0
    max_batch: Annotated[int, msgspec.Meta(ge=1)] = 256


class WaferCost:
    """One pass of tokens through the wafer pipeline.

    A pass is one trip through the chain: every decoding stream's next token rides it, and
    a few prompt tokens with them (``prefill_tokens_per_pass``, the scheduler's budget), so
    a prompt is prefilled at a small multiple of the decode rate rather than at the wafers'
    FLOP/s, and prompts queue for those places. A pass lasts the chain latency unless the
    wafers' compute for its tokens is longer; every wafer boundary forwards the tokens'
    activations over the 150 GB/s system I/O.
    When one layer is bigger than a wafer (a ~1T-parameter mixture of experts in 16 bits),
    its experts span wafers and each token's hidden state goes to its experts and back across
    wafers, twice per layer (expert-parallel all-to-all).
    """

    def __init__(self, backend: CerebrasWSE3, req: Request, wafers: int) -> None:
        s, m = backend.spec, req.model
        self.s, self.m, self.w = s, m, wafers
        self.chain = backend.chain(req, wafers)
        layer_bytes = m.weight_bytes / m.layers
        self.span = max(1, math.ceil(layer_bytes / (s.weight_fraction * s.sram_bytes))) if m.moe else 1

    def a2a(self, tokens: float) -> float:
        """Expert dispatch and combine across the wafers one MoE layer spans, for every layer."""
        if self.span == 1:
            return 0.0
        s, m = self.s, self.m
        cross = tokens * (m.experts_per_token or 1) * m.hidden * 2 * (1 - 1 / self.span)
        return m.layers * 2 * (s.wafer_hop_s + cross / s.io_bw)

    def iteration(self, decode: int, decode_ctx: float, chunks: list[tuple[int, int]]) -> float:
        s, m, w = self.s, self.m, self.w
        acc = m.speculative.accept
        tokens = decode * acc
        prefill = sum(c for c, _ in chunks)
        attn = decode_ctx * acc
        pre_attn = sum(c * ctx + c * c / 2 for c, ctx in chunks)
        flops = 2 * m.active * (tokens + prefill) + 4 * m.layers * m.hidden * (attn + pre_attn)
        compute = flops / (s.compute_efficiency * s.flops * w)
        transfer = (w - 1) * (tokens + prefill) * m.hidden * 2 / s.io_bw
        mem = (m.active * m.bytes_per_param + decode_ctx * m.kv_per_token) / (s.bw_efficiency * s.sram_bw * w)
        t = max(s.step_overhead_s + self.chain, compute, transfer) + mem + self.a2a(tokens + prefill)
        return t * (1 + m.speculative.draft_cost) if decode else t


class CerebrasWSE3(ServedBackend):
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
        s, m = self.spec, req.model
        per_layer = s.moe_layer_latency_s if m.moe and s.moe_layer_latency_s else s.layer_latency_s
        return m.layers * per_layer + (wafers - 1) * (
            s.wafer_hop_s + req.model.hidden * 2 / s.io_bw
        )

    def replica(self, request: Request) -> Replica:
        s, m = self.spec, request.model
        w = self.wafers(request)
        kv_room = max(w * s.sram_bytes - m.weight_bytes, (1 - s.weight_fraction) * w * s.sram_bytes)
        cap = Capacity(max_batch=s.max_batch, chunk_tokens=s.prefill_tokens_per_pass, kv_bytes=kv_room,
                       decode_in_budget=False)
        return Replica(WaferCost(self, request, w), cap, w)
