"""GPU serving from first principles, shared by ``nvidia-hopper`` and ``nvidia-blackwell``.

One pass of the serving engine (:class:`GpuCost`) for ``B`` decoding streams and prompt
chunks of ``c`` tokens (context ``ctx`` already cached) on ``N`` tensor-parallel GPUs::

    tokens = B·a + Σc                  (a: tokens a speculative step verifies)
    t_mem  = (weights touched + KV(Σctx)) / (η_m·BW·N)
    t_comp = 2·P_act·tokens / (η_c·F·N) + 4·L·d·(B·a·ctx + Σ(c·ctx + c²/2)) / (η_a·F_bf16·N)
    t_gpu  = max(t_mem, t_comp) + t_comm(tokens) + L·t_layer
    t_host = t_step + B·t_seq          (overlapped in part with --async-scheduling)
    t      = (t_gpu + t_host) · (1 + draft cost, when decoding)

Weights touched: all of a dense model; for a mixture of experts, the shared weights and the
distinct routed experts the pass's tokens pick, at its own η (grouped GEMMs, dequantised FP4
on parts without FP4 units; block-scaled FP8 at the stack's measured rates). Collectives: two
all-reduces per dense layer, and per MoE layer either all-reduce plus expert dispatch and
combine (expert parallelism) or the dense layer's two all-reduces (experts split across the
tensor-parallel GPUs), over NVLink within a domain. Past one NVLink domain the layers split into pipeline stages and every pass pays a
hop per stage boundary (latency + the tokens' hidden states over the scale-out link).

Queueing, continuous batching, chunked prefill and the KV room (HBM × memory fraction −
reserved − weights) come from :mod:`sparkls.backends.load`; the API server's queue in front
(per-request, per-token and per-chunk CPU work) from :mod:`sparkls.backends.frontend`.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec

from sparkls.backends.frontend import FrontendCost
from sparkls.backends.load import Capacity
from sparkls.backends.served import Replica, ServedBackend
from sparkls.plugins.api import Fraction, NonNeg, Positive, Request

Pos, Frac = Positive, Fraction


class GpuSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One GPU part and the serving stack's efficiencies (see ``nvidia-*.toml``)."""

    part: str
    hbm_bytes: Pos  # per GPU
    hbm_bw: Pos  # bytes/s per GPU
    bf16_flops: Pos  # dense tensor FLOP/s per GPU
    fp8_flops: Pos
    fp4_flops: Pos  # parts without FP4 units run FP4 weights at the FP8 rate
    link_bw: Pos  # NVLink bytes/s per GPU per direction
    nvlink_domain: Annotated[int, msgspec.Meta(ge=1)]  # GPUs in one NVLink domain
    scaleout_bw: Pos  # bytes/s per GPU beyond the NVLink domain
    scaleout_latency_s: NonNeg = 5e-6  # one pipeline hop between NVLink domains (RDMA send)
    bw_efficiency: Frac  # η_m: achieved / nominal HBM bandwidth in decode
    compute_efficiency: Frac  # η_c: achieved / dense peak in prefill and large-batch decode
    weight_fraction: Frac  # share of HBM the weights may take when choosing the GPU count
    hbm_usable_bytes: NonNeg = 0.0  # per GPU, the total CUDA reports (torch.cuda.mem_get_info); 0: hbm_bytes
    memory_fraction: Frac = 0.9  # share of HBM the engine allocates (vLLM gpu_memory_utilization)
    reserved_bytes: NonNeg = 1e9  # per GPU, of that share, memory outside PyTorch's allocator the profile run
    # sees grow: cuBLAS workspaces, NCCL and custom all-reduce buffers (0.1-0.2 GiB on one GPU in vLLM's logs,
    # more with tensor parallelism). Activations are computed from the model (GpuBackend.activation_peak);
    # CUDA graph pools are captured after the KV cache is sized and sit outside the fraction (vLLM < 0.21)
    sampler_bytes_per_logit: NonNeg = 22.0  # live bytes per logit at the sampler's peak: BF16 logits, their
    # FP32 copy, top-k/top-p sort (FP32 values, int64 indices), FP32 probabilities
    attention_efficiency: Frac = 0.5  # η_a: achieved / dense peak in prompt attention (FlashAttention)
    sequence_overhead_s: NonNeg = 0.0  # host scheduling and sampling per running stream per step
    async_scheduling: bool = False  # schedule the next step while the GPU runs this one (vLLM --async-scheduling)
    async_hidden: Frac = 0.5  # share of the host work per step that async scheduling hides (the rest is
    # output processing that still waits for the step)
    frontend_s: NonNeg = 0.02  # API server latency every request sees, uncontended (sockets, inter-process hops)
    # The API server's serial CPU work (backends/frontend.py): a burst of prompts shares it, streams are capped by it
    admit_s: NonNeg = 0.0  # per request: HTTP, validation, hand-over to the engine
    template_s: NonNeg = 0.0  # per request whose model's chat format is a Jinja template (parsed and rendered in
    # Python); models the server renders natively (gpt-oss's Harmony, in Rust) skip it
    tokenize_s: NonNeg = 0.0  # per prompt token
    chunk_s: NonNeg = 0.0  # per streamed chunk: detokenise, build and write the server-sent event
    moe_bw_efficiency: Frac = 1.0  # η_m for mixture-of-experts weights (grouped GEMMs, dequantisation)
    moe_compute_efficiency: Frac = 1.0  # η_c likewise
    expert_parallel: bool = True  # MoE layers dispatch tokens to their experts' GPUs (all-to-all); False: every
    # expert is split across the tensor-parallel GPUs and the layer ends in an all-reduce (vLLM's default)
    fp8_vs_bf16: NonNeg = 0.0  # block-scaled FP8 GEMMs' rate over BF16's as the stack runs them (0: the part's
    # fp8_flops): per-128-channel scales are applied on CUDA cores between tensor-core steps
    fp8_bw_efficiency: NonNeg = 0.0  # η_m for block-scaled FP8 weights with few tokens (0: as other weights)
    layer_overhead_s: NonNeg  # kernel launches and small-GEMM inefficiency per layer per step
    collective_latency_s: NonNeg  # one small all-reduce / all-to-all over NVLink
    step_overhead_s: NonNeg  # sampling and scheduling per decode step
    network_rtt_s: NonNeg  # client round trip plus API front end
    rtt_jitter: NonNeg = 0.25  # lognormal sigma of the round trip
    jitter: NonNeg = 0.0  # lognormal sigma of a step's duration
    max_batch: Annotated[int, msgspec.Meta(ge=1)] = 256  # streams decoding at once (vLLM max_num_seqs)
    chunk_tokens: Annotated[int, msgspec.Meta(ge=1)] = 8192  # tokens per iteration (max_num_batched_tokens)


class GpuCost:
    """One iteration of a tensor-parallel (and, past one NVLink domain, pipeline-parallel) replica."""

    def __init__(self, backend: GpuBackend, req: Request, n_gpus: int) -> None:
        s = backend.spec
        self.b, self.req, self.m = backend, req, req.model
        self.stages = max(1, math.ceil(n_gpus / s.nvlink_domain))
        self.tp = max(1, n_gpus // self.stages)  # GPUs a token's layer runs on

    def iteration(self, decode: int, decode_ctx: float, chunks: list[tuple[int, int]]) -> float:
        b, s, m = self.b, self.b.spec, self.m
        acc = m.speculative.accept
        prefill = sum(c for c, _ in chunks)
        tokens = decode * acc + prefill
        w = m.sliding_window
        attn = m.attention_flops(decode_ctx * acc, decode * acc * w, decode=True)
        attn += m.attention_flops(sum(c * ctx + c * c / 2 for c, ctx in chunks),
                                  sum(c * min(w, ctx + c / 2) for c, ctx in chunks))
        kv = (decode_ctx + sum(ctx for _, ctx in chunks)) * m.kv_per_token
        eta_m, eta_c = (s.moe_bw_efficiency, s.moe_compute_efficiency) if m.moe else (s.bw_efficiency,
                                                                                    s.compute_efficiency)
        # each GPU reads its share of the weights and of the KV cache (all of it where tensor
        # parallelism outnumbers the KV heads: MLA's one latent is read whole on every GPU)
        eta_w = s.fp8_bw_efficiency if m.precision == "fp8" and s.fp8_bw_efficiency else eta_m
        mem = b.weights_read(self.req, tokens) / (eta_w * s.hbm_bw * self.tp)
        mem += kv / (eta_m * s.hbm_bw * m.kv_shards(self.tp))
        compute = 2 * m.active * tokens / (eta_c * b.flops(m.precision) * self.tp)
        compute += attn / (s.attention_efficiency * b.flops("bf16") * self.tp)
        gpu = max(mem, compute) + b.comm(self.req, self.tp, tokens) + m.layers * s.layer_overhead_s
        if m.moe:  # the k expert outputs per token are written out and summed by a separate, memory-bound
            # kernel, on every tensor-parallel GPU (the activations are replicated)
            gpu += m.layers * tokens * (m.experts_per_token or 1) * m.hidden * 2 / (eta_m * s.hbm_bw)
        host = s.step_overhead_s + decode * s.sequence_overhead_s
        if s.async_scheduling:
            hidden = host * s.async_hidden
            t = max(gpu, hidden) + host - hidden
        else:
            t = gpu + host
        if self.stages > 1:  # a pass crosses every stage in turn: each hop sends the tokens' states
            t += (self.stages - 1) * (s.scaleout_latency_s + tokens * m.hidden * 2 / s.scaleout_bw)
        return t * (1 + m.speculative.draft_cost) if decode else t


class GpuBackend(ServedBackend):
    """Tensor-parallel GPU serving with continuous batching (subclasses pick the part file)."""

    spec_type = GpuSpec
    spec: GpuSpec

    def flops(self, precision: str) -> float:
        if precision == "fp8" and self.spec.fp8_vs_bf16:
            return self.spec.bf16_flops * self.spec.fp8_vs_bf16
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
        """Per-pass collectives: two tensor-parallel all-reduces of the tokens' hidden states per
        dense layer; an expert-parallel MoE layer instead sends each GPU's share of the tokens to
        their experts and back (all-to-all) around one attention all-reduce."""
        m = req.model
        state = tokens * m.hidden * 2  # BF16 activations
        if not m.moe or not self.spec.expert_parallel:
            return m.layers * 2 * self.collective(n_gpus, state)
        fanout = m.experts_per_token or 1
        a2a = self.collective(n_gpus, state * fanout / n_gpus / 2)  # ring formula sends 2x
        return m.layers * (self.collective(n_gpus, state / n_gpus) + 2 * a2a)

    def weights_read(self, req: Request, tokens: float) -> float:
        """Bytes of weights a pass touches: all of a dense model; of a mixture of experts, the
        weights every token uses (attention, shared experts, embeddings) and the routed experts
        its tokens pick, ``E·(1 − (1 − k/E)^tokens)`` of the ``E`` (uniform routing). One routed
        expert is ``3·d·ffn`` parameters a layer, so ``E`` and the shared part follow from the
        model's total and active parameters; without ``ffn``, active/total per token."""
        m = req.model
        if not m.moe:
            return m.weight_bytes
        n = max(tokens, 1)
        k = m.experts_per_token or 1
        expert = m.layers * 3 * m.hidden * m.ffn
        shared = m.active - k * expert
        if not expert or shared <= 0 or m.params - shared <= k * expert:
            return m.weight_bytes * (1 - (1 - m.active / m.params) ** n)
        routed = m.params - shared
        return (shared + routed * (1 - (1 - k * expert / routed) ** n)) * m.bytes_per_param

    def activation_peak(self, req: Request, tp: int) -> float:
        """Bytes per GPU the engine's profile run peaks at beyond the weights (vLLM sizes the KV
        cache from it): a dummy pass of ``chunk_tokens`` tokens, whose widest moment is the MLP
        (residual and normed input, the gate/up projection and its activation; for a mixture of
        experts the k routed copies of each token, fused-MoE's intermediate caches), then the
        sampler on ``min(max_batch, chunk_tokens)`` rows of logits over the whole vocabulary (every
        tensor-parallel rank gathers them and samples), the pass's hidden states held throughout."""
        s, m = self.spec, req.model
        t, h = s.chunk_tokens, m.hidden
        ffn = m.ffn or 4 * h
        mlp = (m.experts_per_token or 1) * (3 * ffn / tp + h) if m.moe else 3 * ffn / tp
        forward = t * 2 * (2 * h + mlp)
        sampler = min(s.max_batch, t) * m.vocab * s.sampler_bytes_per_logit
        return t * h * 2 + max(forward, sampler)

    def kv_room(self, req: Request, n: int) -> float:
        """KV cache room of the replica, in bytes of unreplicated KV (what ``kv_per_token`` counts):
        per GPU, memory × fraction − its weights − non-PyTorch buffers − the profile run's peak
        (vLLM's gpu_worker), over the GPUs one token's KV is split across."""
        s, m = self.spec, req.model
        stages = max(1, math.ceil(n / s.nvlink_domain))
        tp = max(1, n // stages)
        per_gpu = ((s.hbm_usable_bytes or s.hbm_bytes) * s.memory_fraction - m.weight_bytes / n - s.reserved_bytes
                   - self.activation_peak(req, tp))
        return max(per_gpu, 0.02 * s.hbm_bytes) * stages * m.kv_shards(tp)

    def replica(self, request: Request) -> Replica:
        s = self.spec
        n = self.gpus(request)
        kv_room = self.kv_room(request, n)
        template = s.template_s if request.model.chat_format == "jinja" else 0.0
        front = FrontendCost(request_s=s.admit_s + template, token_s=s.tokenize_s, chunk_s=s.chunk_s)
        cap = Capacity(max_batch=s.max_batch, chunk_tokens=s.chunk_tokens, kv_bytes=kv_room, front=front)
        return Replica(GpuCost(self, request, n), cap, n)
