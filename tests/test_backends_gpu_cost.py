"""One GPU pass: which expert weights a mixture of experts reads, how its layers communicate, and
how fast block-scaled FP8 runs on the vLLM stack (backends/gpu.py, nvidia-hopper.toml)."""

import pytest

from sparkls.backends.gpu import GpuCost
from sparkls.plugins.api import Request, load_model
from sparkls.plugins.registry import Host

HOST = Host(autoload=False)


def r1(chips=8):
    return Request(model=load_model("deepseek-r1", {"deployment": {"chips": chips}}), prompt_tokens=128,
                   new_tokens=4)


def test_moe_pass_reads_the_experts_its_tokens_route_to():
    """Ensure one token reads the active weights, a few tokens add only the distinct routed experts
    they pick (DeepSeek-R1: 8 of ~256, uniform routing), and a batch of 128 touches nearly all."""
    b, req = HOST.get("nvidia-hopper"), r1()
    m = req.model
    one = b.weights_read(req, 1)
    assert one == pytest.approx(m.active * m.bytes_per_param, rel=1e-9)
    expert = m.layers * 3 * m.hidden * m.ffn * m.bytes_per_param  # one routed expert, all layers
    routed = m.weight_bytes - (one - 8 * expert)
    n_experts = routed / expert
    assert 240 < n_experts < 260  # 256 in the config, derived here from total and active parameters
    four = b.weights_read(req, 4)
    distinct = n_experts * (1 - (1 - 8 / n_experts) ** 4)
    assert four - one == pytest.approx((distinct - 8) * expert, rel=1e-6)
    assert four < 4 * one and 0.97 < b.weights_read(req, 128) / m.weight_bytes < 1.0
    assert b.weights_read(req, 1e6) == pytest.approx(m.weight_bytes, rel=1e-9)


def test_tensor_parallel_moe_all_reduces_instead_of_dispatching():
    """Ensure vLLM's default (experts split across the tensor-parallel GPUs) costs an MoE layer two
    all-reduces like a dense layer, while expert parallelism dispatches and combines (all-to-all)."""
    req = r1()
    tp = HOST.get("nvidia-hopper:h200+vllm", strict=True)
    ep = HOST.get("nvidia-hopper:h200+vllm", overrides={"expert_parallel": True}, strict=True)
    assert not tp.spec.expert_parallel
    state = 4 * req.model.hidden * 2
    assert tp.comm(req, 8, 4) == pytest.approx(req.model.layers * 2 * tp.collective(8, state))
    assert ep.comm(req, 8, 4) > tp.comm(req, 8, 4)  # three small collectives a layer, latency-bound


def test_block_fp8_runs_at_the_stacks_measured_rates():
    """Ensure block-scaled FP8 on vLLM computes at 0.61 of BF16's rate and reads weights at its own
    bandwidth efficiency (vLLM's kernel benchmarks), while the optimised stack keeps the part's FP8
    rate and a BF16 model's pass does not change."""
    vllm = HOST.get("nvidia-hopper:h200+vllm", strict=True)
    base = HOST.get("nvidia-hopper:h200", strict=True)
    assert vllm.flops("fp8") == pytest.approx(0.61 * vllm.flops("bf16")) and base.flops("fp8") == 1979e12
    part_rates = HOST.get("nvidia-hopper:h200+vllm", overrides={"fp8_bw_efficiency": 0.0, "fp8_vs_bf16": 0.0},
                       strict=True)
    req = r1()
    decode = lambda b: GpuCost(b, req, 8).iteration(4, 4 * 300, [])  # noqa: E731
    prefill = lambda b: GpuCost(b, req, 8).iteration(0, 0, [(8192, 0)])  # noqa: E731
    assert decode(vllm) > 1.3 * decode(part_rates) and prefill(vllm) > 2 * prefill(part_rates)
    qwen = Request(model=load_model("qwen3-235b-a22b", {"deployment": {"chips": 8}}), prompt_tokens=128, new_tokens=4)
    assert GpuCost(vllm, qwen, 8).iteration(4, 1200, []) == GpuCost(part_rates, qwen, 8).iteration(4, 1200, [])
