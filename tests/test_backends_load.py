"""The load model: continuous batching, chunked prefill and queueing move with concurrency."""

import math

import pytest

from sparkls.backends import load
from sparkls.backends.frontend import ApiServer, FrontendCost
from sparkls.plugins.api import load_model
from sparkls.plugins.api import Request
from sparkls.plugins.registry import Host

HOST = Host(autoload=False)


class FlatCost:
    """A toy engine: a pass costs a fixed time plus a time per token (decode and prompt alike)."""

    def __init__(self, base=0.01, per_token=1e-4):
        self.base, self.per_token = base, per_token

    def iteration(self, decode, decode_ctx, chunks):
        return self.base + self.per_token * (decode + sum(c for c, _ in chunks))


SHAPE = load.Shape(prompt=1000, cached=0, new=100)


def test_single_stream_is_prefill_then_steps():
    """Ensure one stream's first token comes after its chunked prefill and then one token per pass."""
    cap = load.Capacity(max_batch=8, chunk_tokens=400)
    r = load.run(FlatCost(), SHAPE, 1, cap)
    # 1000 prompt tokens in chunks of 400, 400, 200: three passes before the first token.
    assert r.probe_times[0] == pytest.approx(3 * 0.01 + 1000 * 1e-4)
    gaps = {round(b - a, 9) for a, b in zip(r.probe_times, r.probe_times[1:])}
    assert gaps == {round(0.01 + 1e-4, 9)} and len(r.probe_times) == 100


def test_batch_cap_queues_the_burst():
    """Ensure streams beyond max_batch wait for a slot: TTFT's upper tail grows with the burst."""
    cap = load.Capacity(max_batch=8, chunk_tokens=8192)
    few = load.run(FlatCost(), SHAPE, 8, cap, rounds=2)
    many = load.run(FlatCost(), SHAPE, 32, cap, rounds=2)
    assert load.percentile(many.ttfts, 0.9) > 3 * load.percentile(few.ttfts, 0.9)
    assert max(many.mean_batch, few.mean_batch) <= 8


def test_kv_room_limits_the_batch():
    """Ensure the KV cache room bounds how many streams decode at once."""
    shape = load.Shape(prompt=1000, cached=0, new=100, kv_per_token=1.0)
    cap = load.Capacity(max_batch=64, chunk_tokens=8192, kv_bytes=4 * 1100)
    r = load.run(FlatCost(), shape, 32, cap, rounds=2)
    assert r.mean_batch <= 4


def test_prefill_steals_decode_time():
    """Ensure a stream's steps slow down while other streams' prompts share the passes."""
    cap = load.Capacity(max_batch=64, chunk_tokens=8192)
    alone = load.run(FlatCost(), SHAPE, 1, cap)
    shared = load.run(FlatCost(), SHAPE, 16, cap, rounds=3)
    assert load.percentile(shared.rates, 0.5) < 0.8 * (99 / (alone.probe_times[-1] - alone.probe_times[0]))


def test_seeded_and_deterministic():
    cap = load.Capacity(max_batch=16, chunk_tokens=2048)
    a = load.run(FlatCost(), SHAPE, 8, cap, jitter=0.05, seed=3)
    b = load.run(FlatCost(), SHAPE, 8, cap, jitter=0.05, seed=3)
    c = load.run(FlatCost(), SHAPE, 8, cap, jitter=0.05, seed=4)
    assert a.probe_times == b.probe_times and a.ttfts == b.ttfts and a.ttfts != c.ttfts


def spread(backend, model="llama-3.1-70b", overrides=None, **shape):
    req = Request(model=load_model(model, overrides), **{"prompt_tokens": 1000, "new_tokens": 200, **shape})
    return HOST.get(backend, strict=True).spread(req)


@pytest.mark.parametrize("backend", ["nvidia-hopper", "nvidia-blackwell"])
def test_gpu_load_curve_moves_like_published_ones(backend):
    """Ensure a 70B model shared by 128 streams starts later and decodes slower per user than alone:
    TTFT's p90 over 2.5x one stream's (above a second on H100s), median tok/s/user under half."""
    fp8 = {"bytes_per_param": 1.0, "deployment": {"chips": 8}}
    one = spread(backend, overrides=fp8)
    busy = spread(backend, overrides=fp8, concurrency=128)
    assert busy.ttft_s[2] > 2.5 * one.ttft_s[2]
    assert busy.ttft_s[2] > 1.0 or backend == "nvidia-blackwell"
    assert busy.tokens_per_s[1] < 0.5 * one.tokens_per_s[1]
    assert busy.ttft_s[0] <= busy.ttft_s[1] <= busy.ttft_s[2]


def test_many_wafer_moe_prefill_costs_pipeline_and_hops():
    """Ensure a 10k-token prompt to a 1T MoE over many wafers costs more than one to a model on one
    wafer, and more wafers (more hops) cost more."""
    few = spread("cerebras-wse3", "kimi-k2", {"deployment": {"chips": 15}}, prompt_tokens=10000, new_tokens=50)
    many = spread("cerebras-wse3", "kimi-k2", {"deployment": {"chips": 48}, "bytes_per_param": 2.0},
                  prompt_tokens=10000, new_tokens=50)
    small = spread("cerebras-wse3", "llama-3.1-8b", prompt_tokens=10000, new_tokens=50)
    assert many.ttft_s[1] > few.ttft_s[1] > small.ttft_s[1]
    assert math.isfinite(many.tokens_per_s[1]) and many.tokens_per_s[1] < few.tokens_per_s[1]


def test_api_server_shares_a_burst_so_its_first_tokens_wait_together():
    """Ensure a burst's preprocessing is processor-shared (one event loop interleaves the requests):
    the engine sees them all after about C x request_s, so even the earliest first token waits that long."""
    front = FrontendCost(request_s=0.01)
    cap = load.Capacity(max_batch=1024, chunk_tokens=8192, front=front)
    shape = load.Shape(prompt=16, cached=0, new=2)
    r = load.run(FlatCost(base=1e-4, per_token=0.0), shape, 200, cap, rounds=1)
    assert min(r.ttfts) == pytest.approx(200 * 0.01, rel=0.05)
    assert load.percentile(r.ttfts, 0.5) == pytest.approx(200 * 0.01, rel=0.05)


def test_api_server_tokenises_per_prompt_token():
    """Ensure the per-token cost makes longer prompts wait longer in the API server."""
    front = FrontendCost(token_s=1e-5)
    cap = load.Capacity(max_batch=1024, chunk_tokens=1 << 20, front=front)
    short = load.run(FlatCost(base=1e-4, per_token=0.0), load.Shape(prompt=100, cached=0, new=2), 50, cap, rounds=1)
    long = load.run(FlatCost(base=1e-4, per_token=0.0), load.Shape(prompt=1000, cached=0, new=2), 50, cap, rounds=1)
    assert load.percentile(long.ttfts, 0.5) == pytest.approx(10 * load.percentile(short.ttfts, 0.5), rel=0.1)


def test_api_server_streaming_caps_tokens_per_user():
    """Ensure per-chunk work caps the streams: B streams get at most 1 / (B x chunk_s) tokens/s each."""
    fast = FlatCost(base=1e-4, per_token=0.0)
    shape = load.Shape(prompt=16, cached=0, new=200)
    free = load.run(fast, shape, 100, load.Capacity(max_batch=1024, chunk_tokens=8192), rounds=1)
    capped = load.run(fast, shape, 100, load.Capacity(max_batch=1024, chunk_tokens=8192,
                                                      front=FrontendCost(chunk_s=1e-4)), rounds=1)
    assert load.percentile(free.rates, 0.5) > 5000
    assert load.percentile(capped.rates, 0.5) == pytest.approx(1 / (100 * 1e-4), rel=0.05)


def test_api_server_queue_is_processor_shared():
    """Ensure the API server's admission jobs share its time equally and output work goes first."""
    api = ApiServer(FrontendCost(request_s=1.0))
    assert api.arrive(0.0, "a", 0) == []
    assert api.arrive(0.5, "b", 0) == []  # a has had 0.5 s alone
    assert api.next_done() == pytest.approx(1.5)  # then a's last 0.5 s at half speed
    assert api.advance(1.5) == [(pytest.approx(1.5), "a")]
    api.stream(250)  # no chunk cost: nothing queued
    assert api.advance(3.0) == [(pytest.approx(2.0), "b")]
    api = ApiServer(FrontendCost(request_s=1.0, chunk_s=0.01))
    api.arrive(0.0, "c", 0)
    assert api.stream(50) == pytest.approx(0.5)
    assert api.advance(2.0) == [(pytest.approx(1.5), "c")]


def test_api_server_tokenises_first_come_first_served():
    """Ensure tokenising (one worker thread) keeps the burst's order: a long prompt ahead of a
    short one holds it up, rather than the short one overtaking."""
    api = ApiServer(FrontendCost(request_s=0.001, token_s=1e-3))
    api.arrive(0.0, "long", 1000)
    api.arrive(0.0, "short", 10)
    done = api.advance(5.0)
    assert [p for _, p in done] == ["long", "short"]
    assert done[0][0] == pytest.approx(0.002 + 1.0) and done[1][0] == pytest.approx(0.002 + 1.01)


def test_harmony_models_skip_the_chat_template_cost():
    """Ensure the per-request Jinja template cost applies to templated models and not to gpt-oss,
    whose chat format the server renders natively (Harmony)."""
    hw = HOST.get("nvidia-hopper:h100+vllm", overrides={"template_s": 0.05}, strict=True)
    for model, burdened in (("gpt-oss-20b", False), ("qwen3-14b", True)):
        req = Request(model=load_model(model, {"deployment": {"chips": 1}}), prompt_tokens=128, new_tokens=4)
        front = hw.replica(req).capacity.front
        assert (front.request_s >= 0.05) == burdened
