"""Continuous batching under load: one replica's iterations, simulated step by step.

A backend describes one iteration of its serving engine (:class:`Cost`): how long a forward
pass takes for some decoding streams plus some prompt chunks. This module plays the
scheduler that vLLM, SGLang and TensorRT-LLM share (Orca-style continuous batching with
Sarathi-style chunked prefill) over ``concurrency`` closed-loop clients, as the load
generators behind published load curves run them (``vllm bench serve --max-concurrency``,
InferenceMAX, Artificial Analysis' parallel tests): each client sends a request, waits for
its last token and sends the next.

Per iteration the scheduler (1) lets every admitted stream decode one step, (2) spends the
rest of a token budget (``chunk_tokens``) on the oldest waiting prompts, a chunk at a time,
and (3) admits a prompt only while fewer than ``max_batch`` streams run and their KV cache
fits. So at load a new request waits for a batch slot or KV space (queueing), its prompt is
cut into chunks that share iterations with decode (prefill stealing decode time: every
stream's step grows while prompts are being prefilled), and each step reads more KV.

The outcome per request: time to first token (queueing + chunked prefill, server side) and
its decode rate. ``run`` also follows one *probe* request, arriving once the clients are in
steady state, token by token: that is the timeline a backend answers with.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from typing import Protocol

from sparkls.backends.frontend import ApiServer, FrontendCost

JITTER_CLIP = 3.0
ROUNDS = 6  # requests per client in one simulated benchmark


class Cost(Protocol):
    """One forward pass of the serving engine, in seconds."""

    def iteration(self, decode: int, decode_ctx: float, chunks: list[tuple[int, int]]) -> float:
        """``decode`` streams take one step with ``decode_ctx`` context tokens between them;
        ``chunks`` are prompt pieces ``(tokens, context already cached)`` prefilled alongside."""
        ...


@dataclass(frozen=True)
class Shape:
    """The workload: every client's request looks like this one."""

    prompt: int  # prompt tokens
    cached: int  # of which already in the KV cache
    new: int  # tokens generated
    accept: float = 1.0  # tokens emitted per decode step (speculative decoding)
    kv_per_token: float = 0.0  # bytes
    length_sigma: float = 0.0  # lognormal sigma of prompt and output lengths (0: outputs ±20 %, prompts fixed)


@dataclass(frozen=True)
class Capacity:
    """What one replica can hold at once."""

    max_batch: int  # streams decoding together
    chunk_tokens: int  # token budget per iteration
    decode_in_budget: bool = True  # decode tokens count against it (GPU engines), or ride along (a pipeline)
    front: FrontendCost = FrontendCost()  # the API server's serial work per request and per streamed chunk
    kv_bytes: float = math.inf  # KV cache room


@dataclass(eq=False)
class _Req:
    arrival: float
    ready: float  # when the API server handed it to the engine (inf until then)
    prompt: int
    cached: int
    new: int
    probe: bool = False
    admitted: bool = False  # its cached prefix is counted in the KV cache
    done_prefill: int = 0  # fresh tokens prefilled so far
    first: float = -1.0  # time of the first token
    ctx0: float = 0.0  # context when it (re)started decoding
    step0: int = 0  # decode iteration it (re)started at
    emitted: int = 0  # the probe's tokens so far
    seq: int = 0  # order of issue: ties broken by it, deterministically
    generated: int = 0  # tokens emitted before it was preempted (recomputed with the prompt)
    gen: int = 0  # bumped on preemption: older finish entries are stale

    @property
    def fresh(self) -> int:
        return max(self.prompt + self.generated - self.cached, 0)


@dataclass
class Run:
    """One simulated stretch of load: the probe's token times and every finished request's figures."""

    probe_times: list[float]  # since the probe's arrival; [0] is its first token
    ttfts: list[float] = field(default_factory=list)  # every finished request's, since its arrival
    rates: list[float] = field(default_factory=list)  # their decode tokens/s after the first token
    mean_batch: float = 0.0


def jitter_factor(rng: random.Random, sigma: float) -> float:
    """A mean-one lognormal factor, clipped at three sigma: run-to-run spread of a pass."""
    if sigma <= 0:
        return 1.0
    g = max(-JITTER_CLIP, min(JITTER_CLIP, rng.gauss(0.0, 1.0)))
    return math.exp(sigma * g - sigma * sigma / 2)


class _Replica:
    """The scheduler's state: a FIFO of prompts, the decoding streams, their KV."""

    def __init__(self, shape: Shape, cap: Capacity, rng: random.Random) -> None:
        self.shape, self.cap, self.rng = shape, cap, rng
        self.accept = max(shape.accept, 1.0)
        self.t = 0.0
        self.waiting: list[_Req] = []
        self.running: set[_Req] = set()
        self.finish: list[tuple[int, int, _Req]] = []  # (iteration it ends at, tiebreak, request)
        self.step_no = 0
        self.decode_ctx = 0.0
        self.kv_used = 0.0
        self.issued = 0
        self.tie = 0
        self.api = ApiServer(cap.front)
        self.out = Run(probe_times=[])

    def lengths(self) -> tuple[int, int]:
        """A request's (prompt, output) tokens: a dataset's spread around the shape's means."""
        sh, sigma = self.shape, self.shape.length_sigma
        if sigma <= 0:
            return sh.prompt, max(1, round(sh.new * self.rng.uniform(0.8, 1.2)))
        f = [math.exp(sigma * self.rng.gauss(0.0, 1.0) - sigma * sigma / 2) for _ in range(2)]
        return max(sh.cached + 1, round(sh.prompt * f[0])), max(1, round(sh.new * f[1]))

    def arrive(self, probe: bool = False) -> _Req:
        prompt, new = (self.shape.prompt, self.shape.new) if probe else self.lengths()
        r = _Req(arrival=self.t, ready=math.inf, prompt=prompt, cached=self.shape.cached, new=new, probe=probe,
                 seq=self.issued)
        self.issued += 1
        self.hand_over(self.api.arrive(self.t, r, prompt))
        return r

    def hand_over(self, done: list) -> None:
        """Requests the API server finished preprocessing join the engine's queue, in that order."""
        for t, r in done:
            r.ready = t
            self.waiting.append(r)

    def decode(self, r: _Req, ctx: float, tokens_left: int) -> None:
        """Start ``r`` decoding at context ``ctx`` with ``tokens_left`` tokens still to emit."""
        r.ctx0, r.step0 = ctx, self.step_no
        self.running.add(r)
        self.decode_ctx += ctx
        self.kv_used += self.shape.kv_per_token  # the token the prefill just produced
        self.tie += 1
        heapq.heappush(self.finish, (self.step_no + math.ceil(tokens_left / self.accept), self.tie, r.gen, r))

    def ctx(self, r: _Req) -> float:
        return r.ctx0 + self.accept * (self.step_no - r.step0)

    def retire(self, r: _Req, ctx: float | None = None) -> None:
        """``r`` is done: free its KV cache and record its figures."""
        ctx = self.ctx(r) if ctx is None else ctx
        if r in self.running:
            self.running.discard(r)
            self.decode_ctx -= ctx
        self.kv_used -= ctx * self.shape.kv_per_token
        self.out.ttfts.append(r.first - r.arrival)
        if r.new > 1 and self.t > r.first:
            self.out.rates.append((r.new - 1) / (self.t - r.first))

    def grow(self) -> None:
        """Every running stream's KV grows by its step; past the room, the newest are preempted
        (vLLM's recompute: KV freed, back to the head of the queue, prompt and output prefilled again)."""
        kv_tok = self.shape.kv_per_token
        self.kv_used += self.accept * len(self.running) * kv_tok
        while self.kv_used > self.cap.kv_bytes and len(self.running) > 1:
            r = max(self.running, key=lambda q: (q.step0, q.seq))
            ctx = self.ctx(r)
            self.running.discard(r)
            self.decode_ctx -= ctx
            self.kv_used -= ctx * kv_tok
            r.generated = r.emitted if r.probe else min(r.new - 1, int(round(ctx)) - r.prompt)
            r.gen += 1
            r.done_prefill, r.admitted = 0, False
            self.waiting.insert(0, r)

    def schedule(self) -> tuple[list[tuple[int, int]], list[tuple[_Req, int]]]:
        """This iteration's prompt chunks, oldest first, within the token budget, batch and KV
        (allocated chunk by chunk, as vLLM's paged KV cache does)."""
        left = self.cap.chunk_tokens - (len(self.running) if self.cap.decode_in_budget else 0)
        slots = self.cap.max_batch - len(self.running)
        kv_tok = self.shape.kv_per_token
        chunks, owners = [], []
        for r in self.waiting:
            if left <= 0 or slots <= 0:
                break
            take = min(r.fresh - r.done_prefill, left)
            need = (take + (0 if r.admitted else r.cached)) * kv_tok
            if self.kv_used + need > self.cap.kv_bytes and (self.running or owners):
                break  # no KV room: wait for a stream to finish
            self.kv_used += need
            r.admitted = True
            chunks.append((take, r.cached + r.done_prefill))
            owners.append((r, take))
            left -= take
            slots -= 1
        return chunks, owners


def run(cost: Cost, shape: Shape, concurrency: int, cap: Capacity, *, jitter: float = 0.0, seed: int = 0,
        rounds: int = ROUNDS) -> Run:
    """Simulate ``concurrency`` closed-loop clients on one replica and follow one probe request.

    As a benchmark runs them: every client sends its first request at once (a burst of
    prompts), then a new one as soon as its last finished, ``rounds`` requests each. Output
    lengths vary by ±20 % around the shape's (as InferenceMAX's do), which spreads the
    clients apart after the first round. The probe is one of those requests, picked by the
    seed; with one client every request is the same, so one is simulated.
    """
    rng = random.Random(seed)
    rep = _Replica(shape, cap, rng)
    acc = rep.accept
    if concurrency <= 1:
        rounds = 1
    limit = concurrency * rounds
    probe_no = rng.randrange(limit)
    times = rep.out.probe_times
    probe: _Req | None = None

    def issue() -> None:
        nonlocal probe
        if rep.issued < limit:
            is_probe = rep.issued == probe_no
            r = rep.arrive(probe=is_probe)
            if is_probe:
                probe = r

    for _ in range(concurrency):
        issue()
    batch_sum, iterations = 0.0, 0
    while True:
        rep.hand_over(rep.api.advance(rep.t))
        chunks, owners = rep.schedule()
        if not rep.running and not owners:
            if not rep.waiting:
                if not rep.api.busy:
                    break
                rep.t = rep.api.next_done()  # idle until the API server hands over the next request
                continue
            r = rep.waiting[0]
            # a fully cached prompt: its first token costs one token's pass
            if not r.admitted:
                rep.kv_used += r.cached * rep.shape.kv_per_token
                r.admitted = True
            owners, chunks = [(r, 0)], [(1, r.prompt)]
        step = cost.iteration(len(rep.running), rep.decode_ctx, chunks) * jitter_factor(rng, jitter)
        # every stream that gets a token this step is a chunk for the API server to stream out: the
        # step's tokens reach their users no faster than it can (a CPU-bound server caps the rate)
        firsts = sum(r.done_prefill + take >= r.fresh for r, take in owners)
        rep.t += max(step, rep.api.stream(len(rep.running) + firsts))
        iterations += 1
        batch_sum += len(rep.running)
        if rep.running:
            rep.step_no += 1
            rep.decode_ctx += acc * len(rep.running)
            probe_ran = probe is not None and probe in rep.running
            rep.grow()
            if probe_ran:
                k = int(acc + rng.random()) if acc != int(acc) else int(acc)
                k = min(k, probe.new - probe.emitted)
                times.extend([rep.t - probe.arrival] * k)
                probe.emitted += k
            while rep.finish and rep.finish[0][0] <= rep.step_no:
                _, _, gen, r = heapq.heappop(rep.finish)
                if gen != r.gen or r not in rep.running:
                    continue  # preempted since: a newer entry stands
                if r.probe and r.emitted < r.new:  # unlucky bursts: one more step
                    rep.tie += 1
                    heapq.heappush(rep.finish, (rep.step_no + 1, rep.tie, r.gen, r))
                    continue
                rep.retire(r)
                issue()
        for r, take in owners:
            r.done_prefill += take
            if r.done_prefill < r.fresh:
                continue
            rep.waiting.remove(r)
            if r.first < 0:
                r.first = rep.t
            if r.probe:
                times.append(rep.t - r.arrival)
                r.emitted += 1
            done = r.generated + 1  # the prefill (or its recompute) yields the next token
            if done < r.new:
                rep.decode(r, r.prompt + done, r.new - done)
            else:
                rep.retire(r, ctx=r.prompt + r.generated)
                issue()
        if iterations > 2_000_000:
            raise RuntimeError("load simulation did not finish")
    rep.out.mean_batch = batch_sum / iterations if iterations else 0.0
    return rep.out


def percentile(xs: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; NaN for no data."""
    if not xs:
        return math.nan
    s = sorted(xs)
    i = q * (len(s) - 1)
    lo = math.floor(i)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (i - lo)
