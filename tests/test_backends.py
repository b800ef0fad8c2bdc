"""Each built-in hardware model moves the right way with prompt, batch, model size and speculation."""

import math

import msgspec
import pytest

from sparkls.plugins.api import Request, SpecError, builtin_models, check_timeline, load_model
from sparkls.plugins.registry import Host

HOST = Host(autoload=False)
MODELLED = ["cerebras-wse3", "nvidia-blackwell", "nvidia-hopper"]


def run(backend, model="llama-3.1-70b", seed=0, overrides=None, hw=None, **shape):
    shape = {"prompt_tokens": 1000, "new_tokens": 200, **shape}
    req = Request(model=load_model(model, overrides), **shape)
    b = HOST.get(backend, overrides=hw, strict=True)
    return check_timeline(b.timeline(req, seed), req)


@pytest.mark.parametrize("backend", MODELLED)
def test_timeline_is_sane_and_seeded(backend):
    """Ensure timelines are monotonic, sized, deterministic per seed, and jittered across seeds."""
    a, b, c = run(backend), run(backend), run(backend, seed=1)
    assert a == b and a != c
    assert all(t1 >= t0 for t0, t1 in zip(a.token_times, a.token_times[1:]))
    assert 0 < a.ttft_s < a.total_s and math.isfinite(a.tokens_per_s)


@pytest.mark.parametrize("backend", MODELLED)
def test_longer_prompts_take_longer_and_cache_helps(backend):
    """Ensure TTFT grows with prompt length and shrinks when the prefix is cached."""
    short, long = run(backend, prompt_tokens=1000), run(backend, prompt_tokens=64000)
    cached = run(backend, prompt_tokens=64000, cached_tokens=63000)
    assert short.ttft_s < long.ttft_s and cached.ttft_s < long.ttft_s


@pytest.mark.parametrize("backend", MODELLED)
def test_bigger_models_are_slower(backend):
    """Ensure per-stream speed falls with model size, 8B > 70B > 405B, on the same GPUs."""
    same = {"bytes_per_param": 1.0, "deployment": {"chips": 8}} if backend.startswith("nvidia") else None
    speeds = [run(backend, m, overrides=same).tokens_per_s for m in ("llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b")]
    assert speeds[0] > speeds[1] > speeds[2]


@pytest.mark.parametrize("backend", ["nvidia-blackwell", "nvidia-hopper"])
def test_batching_trades_stream_speed_for_cost(backend):
    """Ensure more concurrent streams slow each stream but raise tokens per GPU."""
    fp8 = {"bytes_per_param": 1.0, "deployment": {"chips": 8}}
    one, many = run(backend, overrides=fp8), run(backend, overrides=fp8, concurrency=64)
    assert many.tokens_per_s < one.tokens_per_s
    assert many.tokens_per_s * 64 / many.chips > 10 * one.tokens_per_s / one.chips


def test_blackwell_beats_hopper_and_speculation_helps():
    """Ensure B200 outruns H100 on the same deployment, and accepted drafts raise tok/s."""
    fp8 = {"bytes_per_param": 1.0, "deployment": {"chips": 8}}
    assert run("nvidia-blackwell", overrides=fp8).tokens_per_s > run("nvidia-hopper", overrides=fp8).tokens_per_s
    spec = {**fp8, "speculative": {"draft": "eagle", "accept": 3.0}}
    assert run("nvidia-hopper", overrides=spec).tokens_per_s > 2 * run("nvidia-hopper", overrides=fp8).tokens_per_s


def test_cerebras_wafer_count_follows_model_bytes():
    """Ensure the fewest wafers hold the weights: 8B on 1, 70B on 4 (as Cerebras says), 405B on 20."""
    assert [run("cerebras-wse3", m).chips for m in ("llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b")] == [1, 4, 20]
    assert run("cerebras-wse3", concurrency=64, prompt_tokens=8000).chips > 4  # KV cache needs SRAM too


def test_local_is_measured_and_paced_as_produced():
    """Ensure local follows the decode core, at the last measured rate, ignoring bad measurements."""
    local = Host(autoload=False).get("local")
    req = Request(model=load_model("smollm2-135m"), prompt_tokens=0, new_tokens=11)
    local.update(50.0)
    local.update(math.nan)
    tl = local.timeline(req)
    assert tl.as_produced and tl.tokens_per_s == pytest.approx(50.0)


def test_specs_validate_and_user_overrides_merge(tmp_path, monkeypatch):
    """Ensure a user's partial TOML overrides a field, and a bad value fails naming the file."""
    monkeypatch.setenv("SPARKLS_BACKEND_DIR", str(tmp_path))
    (tmp_path / "nvidia-hopper.toml").write_text("network_rtt_s = 0.0\n")
    from sparkls.backends.hopper import Hopper

    assert Hopper().spec.network_rtt_s == 0.0 and Hopper().spec.hbm_bw == 3.35e12
    (tmp_path / "nvidia-hopper.toml").write_text("hbm_bw = -1\n")
    with pytest.raises(SpecError, match="hbm_bw") as err:
        Hopper()
    assert str(tmp_path / "nvidia-hopper.toml") in str(err.value)


def test_user_overrides_live_in_the_xdg_config_folder(tmp_path, monkeypatch):
    """Ensure $XDG_CONFIG_HOME/sparkls/backends/<name>.toml overrides fields, variants included."""
    monkeypatch.delenv("SPARKLS_BACKEND_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "sparkls" / "backends").mkdir(parents=True)
    (tmp_path / "sparkls" / "backends" / "nvidia-hopper.toml").write_text('variant = "h200"\nnetwork_rtt_s = 0.0\n')
    from sparkls.backends.hopper import Hopper

    default, h100 = Hopper(), Hopper(variant="h100")
    assert (default.variant, default.spec.hbm_bw, default.spec.network_rtt_s) == ("h200", 4.8e12, 0.0)
    assert (h100.variant, h100.spec.hbm_bw) == ("h100", 3.35e12)
    assert {"h100", "h200", "vllm"} <= set(default.variants)


@pytest.mark.parametrize("name", builtin_models())
def test_model_descriptions_load(name):
    """Ensure every shipped model description validates."""
    m = load_model(name)
    assert m.active <= m.params and m.kv_per_token > 0


def test_smollm2_description():
    """Ensure the local model is described as the decode core runs it."""
    m = load_model("smollm2-135m")
    assert (m.layers, m.hidden, m.heads, m.kv_heads, m.ffn, m.vocab) == (30, 576, 9, 3, 1536, 49152)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"name": "x", "params": -1, "layers": 1, "hidden": 1}, type(m))
