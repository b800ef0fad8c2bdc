"""GPU serving from first principles, shared by ``nvidia-hopper`` and ``nvidia-blackwell``.

Weights live in HBM, so a decode step at small batch is bound by how fast each GPU reads
its shard of them (η_m × HBM bandwidth × tensor-parallel GPUs); at large batch it turns
compute-bound. Every layer pays kernel-launch overhead, and with tensor parallelism each
layer pays two all-reduces (three collectives for a mixture-of-experts layer: attention
all-reduce, expert dispatch and combine) whose small-message latency dominates at batch 1:

    t_step = (max(bytes / (η_m·BW·N), 2·P_act·B·a / (η_c·F·N)) + t_comm + L·t_layer + t_sched)
             · (1 + draft cost)
    TTFT   = t_rtt + t_queue + max(FLOPs / (η_c·F·N), weights / (η_m·BW·N)) + t_comm(n tokens),
             FLOPs = 2·P_act·n + 4·L·d·(n·n_cached + n²/2)

Continuous batching: ``concurrency`` streams share each step, so per-stream speed falls
slowly while tokens per GPU rise (the cost lever); a new request waits half a step.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec

from sparkls.backends.stream import TomlBackend, stream
from sparkls.plugins.api import Fraction, NonNeg, Positive, Request, Timeline

Pos, Frac = Positive, Fraction


class GpuSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One GPU part and the serving stack's efficiencies (see ``nvidia-*.toml``)."""

    part: str
    variant: str = ""
    hbm_bytes: Pos  # per GPU
    hbm_bw: Pos  # bytes/s per GPU
    bf16_flops: Pos  # dense tensor FLOP/s per GPU
    fp8_flops: Pos
    fp4_flops: Pos  # parts without FP4 units run FP4 weights at the FP8 rate
    link_bw: Pos  # NVLink bytes/s per GPU per direction
    nvlink_domain: Annotated[int, msgspec.Meta(ge=1)]  # GPUs in one NVLink domain
    scaleout_bw: Pos  # bytes/s per GPU beyond the NVLink domain
    bw_efficiency: Frac  # η_m: achieved / nominal HBM bandwidth in decode
    compute_efficiency: Frac  # η_c: achieved / dense peak in prefill and large-batch decode
    weight_fraction: Frac  # share of HBM the weights may take (the rest: KV, activations)
    layer_overhead_s: NonNeg  # kernel launches and small-GEMM inefficiency per layer per step
    collective_latency_s: NonNeg  # one small all-reduce / all-to-all over NVLink
    step_overhead_s: NonNeg  # sampling and scheduling per decode step
    network_rtt_s: NonNeg  # client round trip plus API front end
    jitter: NonNeg = 0.0  # lognormal sigma of a step's duration


class GpuBackend(TomlBackend):
    """Tensor-parallel GPU serving with continuous batching (subclasses pick the part file)."""

    spec_type = GpuSpec
    spec: GpuSpec

    def flops(self, precision: str) -> float:
        return getattr(self.spec, f"{precision}_flops")

    def gpus(self, req: Request) -> int:
        """The deployment's GPUs, else the fewest (a power of two) whose HBM holds weights and KV."""
        if req.model.deployment.chips:
            return req.model.deployment.chips
        m = req.model
        need = m.weight_bytes + req.streams * m.kv_per_token * (req.prompt_tokens + req.new_tokens)
        n = math.ceil(need / (self.spec.weight_fraction * self.spec.hbm_bytes))
        return 1 << max(n - 1, 0).bit_length()

    def collective(self, n_gpus: int, nbytes: float) -> float:
        """One ring all-reduce of ``nbytes`` across ``n_gpus``: latency plus 2(N-1)/N of the data."""
        if n_gpus == 1:
            return 0.0
        s = self.spec
        link = s.link_bw if n_gpus <= s.nvlink_domain else s.scaleout_bw
        return s.collective_latency_s + 2 * (n_gpus - 1) / n_gpus * nbytes / link

    def comm(self, req: Request, n_gpus: int, tokens: float) -> float:
        """Per-step collectives: two tensor-parallel all-reduces of the tokens' hidden states per
        dense layer; an expert-parallel MoE layer instead sends each GPU's share of the tokens to
        their experts and back (all-to-all) around one attention all-reduce."""
        m = req.model
        state = tokens * m.hidden * 2  # BF16 activations
        if not m.moe:
            return m.layers * 2 * self.collective(n_gpus, state)
        fanout = m.experts_per_token or 1
        a2a = self.collective(n_gpus, state * fanout / n_gpus / 2)  # ring formula sends 2x
        return m.layers * (self.collective(n_gpus, state / n_gpus) + 2 * a2a)

    def weights_read(self, req: Request, tokens: float) -> float:
        """Bytes of weights a step touches: active experts at batch 1, more as tokens spread out."""
        m = req.model
        if not m.moe:
            return m.weight_bytes
        return m.weight_bytes * (1 - (1 - m.active / m.params) ** tokens)

    def step(self, req: Request, n_gpus: int, ctx: int) -> float:
        """One decode step for all streams at context ``ctx``, drafting included."""
        s, m = self.spec, req.model
        tokens = req.streams * m.speculative.accept
        mem = (self.weights_read(req, tokens) + req.streams * m.kv_per_token * ctx) / (
            s.bw_efficiency * s.hbm_bw * n_gpus
        )
        compute = 2 * m.active * tokens / (s.compute_efficiency * self.flops(m.precision) * n_gpus)
        fixed = m.layers * s.layer_overhead_s + s.step_overhead_s
        return (max(mem, compute) + self.comm(req, n_gpus, tokens) + fixed) * (1 + m.speculative.draft_cost)

    def prefill(self, req: Request, n_gpus: int) -> float:
        s, m = self.spec, req.model
        n, c = req.fresh_tokens, req.cached_tokens
        flops = 2 * m.active * n + 4 * m.layers * m.hidden * (n * c + n * n / 2)
        compute = flops / (s.compute_efficiency * self.flops(m.precision) * n_gpus)
        mem = self.weights_read(req, max(n, 1)) / (s.bw_efficiency * s.hbm_bw * n_gpus)
        fixed = m.layers * s.layer_overhead_s + s.step_overhead_s
        return max(compute, mem) + self.comm(req, n_gpus, n) + fixed

    def timeline(self, request: Request, seed: int = 0) -> Timeline:
        n_gpus = self.gpus(request)
        queue = 0.5 * self.step(request, n_gpus, request.prompt_tokens) if request.streams > 1 else 0.0
        ttft = self.spec.network_rtt_s + queue + self.prefill(request, n_gpus)
        return stream(
            self.name,
            request,
            ttft,
            lambda ctx: self.step(request, n_gpus, ctx),
            chips=n_gpus,
            jitter=self.spec.jitter,
            seed=seed,
        )
