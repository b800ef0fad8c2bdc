"""The API server in front of a serving engine, as its own queue.

vLLM's OpenAI-compatible server is one Python process (one asyncio event loop) in front of the
engine process: every request is parsed, rendered through the model's chat template and
tokenised there before the engine sees it, and every streamed chunk is detokenised and written
out as a server-sent event there. Two consequences under load, both from one CPU thread:

- *Admission is processor-shared.* Each request's preprocessing awaits several times (the
  engine client, the tokeniser's executor, the socket to the engine), so a burst of N
  requests interleaves on the loop: they finish preprocessing together, after about the sum of
  their work, rather than one at a time. A burst's first tokens all wait ~N × (work per request).
  Tokenising runs after that on one worker thread (vLLM's tokenizer executor), first come
  first served, at ``token_s`` per prompt token.
- *Streaming is capped.* Every running stream's chunk costs the loop ``chunk_s``, so B streams
  cannot be served faster than one chunk per ``B × chunk_s`` each, however fast the GPU steps,
  and that output work takes the loop's time from admission.

:class:`ApiServer` is that loop: output work first (the engine's output handler wakes on
every step), admission shared equally among the requests being preprocessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EPS = 1e-12


@dataclass(frozen=True)
class FrontendCost:
    """CPU seconds the API server spends, serially, per request and per streamed chunk."""

    request_s: float = 0.0  # per request: HTTP, validation, chat template, handing over to the engine
    token_s: float = 0.0  # per prompt token: tokenisation
    chunk_s: float = 0.0  # per streamed chunk: detokenise, build and write the SSE event


@dataclass
class ApiServer:
    """One thread shared by admission jobs (processor sharing) and output work (first)."""

    cost: FrontendCost
    t: float = 0.0
    output: float = 0.0  # output work not yet done, seconds
    jobs: list[list] = field(default_factory=list)  # [remaining seconds, payload, prompt tokens]
    tokenised: list[tuple[float, object]] = field(default_factory=list)  # (done at, payload), in order
    tokeniser_free: float = 0.0

    def arrive(self, t: float, payload: object, prompt_tokens: int) -> list[tuple[float, object]]:
        """A request arrives at ``t``; returns what finished preprocessing by then (possibly it)."""
        done = self.advance(t)
        if self.cost.request_s <= 0:
            self._tokenise(t, payload, prompt_tokens)
            return done + self._release(t)
        self.jobs.append([self.cost.request_s, payload, prompt_tokens])
        return done

    def _tokenise(self, t: float, payload: object, prompt_tokens: int) -> None:
        self.tokeniser_free = max(t, self.tokeniser_free) + self.cost.token_s * prompt_tokens
        self.tokenised.append((self.tokeniser_free, payload))

    def _release(self, t: float) -> list[tuple[float, object]]:
        n = 0
        while n < len(self.tokenised) and self.tokenised[n][0] <= t + EPS:
            n += 1
        out, self.tokenised = self.tokenised[:n], self.tokenised[n:]
        return out

    @property
    def busy(self) -> bool:
        """Requests are still being preprocessed."""
        return bool(self.jobs or self.tokenised)

    def stream(self, chunks: float) -> float:
        """Queue the output work of ``chunks`` streamed chunks; returns its seconds."""
        w = chunks * self.cost.chunk_s
        self.output += w
        return w

    def next_done(self) -> float:
        """When the next request is handed over if nothing else arrives (inf if none)."""
        shared = self.t + self.output + min(j[0] for j in self.jobs) * len(self.jobs) if self.jobs else float("inf")
        return min(shared, self.tokenised[0][0] if self.tokenised else float("inf"))

    def advance(self, t: float) -> list[tuple[float, object]]:
        """Run the loop until ``t``; returns (time, payload) of every request preprocessed meanwhile."""
        while self.t < t - EPS:
            if self.output > EPS:
                d = min(self.output, t - self.t)
                self.output -= d
                self.t += d
                continue
            if not self.jobs:
                self.output = 0.0
                self.t = t
                break
            n = len(self.jobs)
            least = min(j[0] for j in self.jobs)
            share = min(least, (t - self.t) / n)
            self.t += share * n
            for j in self.jobs:
                j[0] -= share
            finished = [j for j in self.jobs if j[0] <= EPS]
            if finished:
                self.jobs = [j for j in self.jobs if j[0] > EPS]
                for j in finished:
                    self._tokenise(self.t, j[1], j[2])
        return self._release(t)
