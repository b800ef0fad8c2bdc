"""What the modelled serving engines share: turning one replica's iteration cost into a seeded
token timeline under load (:class:`ServedBackend`, through :mod:`sparkls.backends.load`).
Their TOML specs, variants and user overrides come from :class:`sparkls.plugins.api.TomlBackend`."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sparkls.backends import load
from sparkls.plugins.api import Request, Timeline, TomlBackend


@dataclass(frozen=True)
class Replica:
    """What a backend says about one model replica for a request: the forward pass, the room."""

    cost: load.Cost
    capacity: load.Capacity
    chips: int


@dataclass(frozen=True)
class Spread:
    """p10 / p50 / p90 of time to first token and of one stream's tokens/s under the modelled
    load and jitter, over every request of the simulated benchmarks (``samples`` of them)."""

    ttft_s: tuple[float, float, float]
    tokens_per_s: tuple[float, float, float]
    samples: int
    mean_batch: float


class ServedBackend(TomlBackend):
    """A modelled serving engine: subclasses say what one iteration costs (:meth:`replica`);
    queueing, continuous batching and chunked prefill come from :func:`load.run`.

    The spec must have ``network_rtt_s`` (client round trip, added to the first token),
    ``frontend_s`` (the API server's fixed latency; its queue under load is the replica's ``capacity.front``), ``rtt_jitter`` (the round trip's
    lognormal sigma) and ``jitter`` (a step's).
    """

    def replica(self, request: Request) -> Replica:
        raise NotImplementedError

    def _shape(self, req: Request, length_sigma: float = 0.0) -> load.Shape:
        m = req.model
        return load.Shape(prompt=req.prompt_tokens, cached=min(req.cached_tokens, req.prompt_tokens),
                          new=req.new_tokens, accept=m.speculative.accept, kv_per_token=m.kv_per_token,
                          length_sigma=length_sigma)

    def _run(self, request: Request, seed: int, rounds: int | None = None,
             length_sigma: float = 0.0) -> tuple[load.Run, float, Replica]:
        rep = self.replica(request)
        r = load.run(rep.cost, self._shape(request, length_sigma), request.streams, rep.capacity,
                     jitter=self.spec.jitter, seed=seed, rounds=rounds or load.ROUNDS)
        rtt = self.spec.frontend_s + self.spec.network_rtt_s * load.jitter_factor(random.Random(seed ^ 0x5EED),
                                                                             self.spec.rtt_jitter)
        return r, rtt, rep

    def timeline(self, request: Request, seed: int = 0) -> Timeline:
        r, rtt, rep = self._run(request, seed)
        return Timeline(backend=self.name, token_times=tuple(rtt + x for x in r.probe_times),
                        chips=rep.chips, concurrency=request.streams)

    def spread(self, request: Request, seed: int = 0, rounds: int | None = None, min_samples: int = 24,
               length_sigma: float = 0.0) -> Spread:
        """Percentiles over seeded benchmark runs (``rounds`` requests per stream; lengths
        spread as a dataset's with ``length_sigma``) until ``min_samples`` requests were seen."""
        ttfts: list[float] = []
        rates: list[float] = []
        batch = 0.0
        runs = 0
        while len(ttfts) < min_samples and runs < 16:
            r, _, _ = self._run(request, seed + runs, rounds, length_sigma)
            runs += 1
            batch += r.mean_batch
            rng = random.Random(seed + runs)
            ttfts += [t + self.spec.frontend_s + self.spec.network_rtt_s * load.jitter_factor(rng, self.spec.rtt_jitter)
                      for t in r.ttfts]
            rates += r.rates
        q = (0.1, 0.5, 0.9)
        pick = lambda xs: tuple(load.percentile(xs, p) for p in q)  # noqa: E731
        return Spread(ttft_s=pick(ttfts), tokens_per_s=pick(rates) if rates else (math.inf,) * 3,
                      samples=len(ttfts), mean_batch=batch / runs)
