"""The backend contract: what a served model looks like, what a request asks, what a backend answers.

A backend describes its hardware in a msgspec Struct loaded from TOML and answers one
question: for a :class:`Request` (prompt tokens, tokens already cached, tokens to generate,
the :class:`ModelSpec` served and how many streams share it), when does each token reach
the user? The answer is a :class:`Timeline`: time to first token and the emission time of
every later token, in seconds from the moment the request was sent. It is deterministic for
a given ``seed``: jitter and speculative-decoding bursts are modelled, not sampled from the
wall clock.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec

Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNeg = Annotated[float, msgspec.Meta(ge=0)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Fraction = Annotated[float, msgspec.Meta(gt=0, le=1)]
DraftKind = Literal["none", "medusa", "eagle", "mtp", "draft-model"]

# Fraction of a target decode step spent drafting, when a model does not say.
DRAFT_COST = {"none": 0.0, "medusa": 0.05, "eagle": 0.1, "mtp": 0.1, "draft-model": 0.2}


class SpecError(ValueError):
    """A hardware or model description that failed validation (the message names the file)."""


class InvalidTimeline(ValueError):
    """A backend answered with negative, non-monotonic, non-finite or mis-sized times."""


class Speculative(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Speculative decoding: a cheap draft proposes tokens, one target step verifies them."""

    draft: DraftKind = "none"
    accept: Annotated[float, msgspec.Meta(ge=1)] = 1.0  # mean tokens emitted per target step
    cost: float = -1.0  # drafting time as a fraction of a target step; <0: DRAFT_COST[draft]

    @property
    def draft_cost(self) -> float:
        return DRAFT_COST[self.draft] if self.cost < 0 else self.cost


class Deployment(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the model is laid out: chips (or wafers), 0 = the fewest that hold it; streams sharing it."""

    chips: Count = 0
    concurrency: Annotated[int, msgspec.Meta(ge=1)] = 1


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A served model, described rather than assumed."""

    name: str
    params: Positive  # total parameters (all experts)
    active_params: NonNeg = 0.0  # parameters used per token; 0 = dense (= params)
    layers: Annotated[int, msgspec.Meta(ge=1)]
    hidden: Annotated[int, msgspec.Meta(ge=1)]  # d_model
    experts_per_token: Count = 0  # routed experts per token (mixture of experts); 0 = dense
    bytes_per_param: Positive = 2.0  # 2 BF16, 1 FP8, ~0.5 FP4
    kv_bytes_per_token: NonNeg = 0.0  # all layers, K and V; 0 = estimate as full MHA in BF16
    heads: Count = 0  # informational: query heads
    kv_heads: Count = 0  # informational: key/value heads (GQA)
    ffn: Count = 0  # informational: feed-forward width
    vocab: Count = 0  # informational
    speculative: Speculative = Speculative()
    deployment: Deployment = Deployment()
    source: str = ""  # where the architecture figures come from

    @property
    def active(self) -> float:
        return self.active_params or self.params

    @property
    def moe(self) -> bool:
        return self.experts_per_token > 0 or self.active < self.params

    @property
    def weight_bytes(self) -> float:
        return self.params * self.bytes_per_param

    @property
    def kv_per_token(self) -> float:
        return self.kv_bytes_per_token or 2 * self.layers * self.hidden * 2.0

    @property
    def precision(self) -> str:
        """The tensor-core precision the weights run at: bf16, fp8 or fp4."""
        return "bf16" if self.bytes_per_param >= 2 else "fp8" if self.bytes_per_param >= 1 else "fp4"


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """One completion request, as the hardware sees it."""

    model: ModelSpec
    prompt_tokens: Count
    new_tokens: Annotated[int, msgspec.Meta(ge=1)]
    cached_tokens: Count = 0  # prompt tokens whose KV is already cached (prefix reuse)
    concurrency: Count = 0  # streams sharing the deployment; 0 = model.deployment.concurrency

    @property
    def streams(self) -> int:
        return self.concurrency or self.model.deployment.concurrency

    @property
    def fresh_tokens(self) -> int:
        """Prompt tokens that must be prefilled."""
        return max(self.prompt_tokens - self.cached_tokens, 0)


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    """When each generated token reaches the user, in seconds since the request was sent."""

    backend: str
    token_times: tuple[float, ...]  # token_times[0] is the time to first token
    chips: int = 1  # chips (or wafers) serving this stream's model replica
    concurrency: int = 1
    as_produced: bool = False  # True: emit each token as soon as the decode core made it

    @property
    def ttft_s(self) -> float:
        return self.token_times[0]

    @property
    def total_s(self) -> float:
        return self.token_times[-1]

    @property
    def tokens_per_s(self) -> float:
        """Steady-state output rate of this stream, counted after the first token."""
        n = len(self.token_times)
        span = self.token_times[-1] - self.token_times[0]
        return (n - 1) / span if n > 1 and span > 0 else math.inf

    def due(self, i: int) -> float:
        """Emission time of token ``i`` (0-based); past the end, continue at the steady rate."""
        n = len(self.token_times)
        if i < n:
            return self.token_times[i]
        step = 1 / self.tokens_per_s if n > 1 and math.isfinite(self.tokens_per_s) else 0.0
        return self.token_times[-1] + (i - n + 1) * step


def check_timeline(tl: object, req: Request) -> Timeline:
    """Return ``tl`` if it is a sane answer to ``req``, else raise :class:`InvalidTimeline`."""
    if not isinstance(tl, Timeline):
        raise InvalidTimeline(f"expected a Timeline, got {type(tl).__name__}")
    times = tl.token_times
    if len(times) != req.new_tokens:
        raise InvalidTimeline(f"{len(times)} token times for {req.new_tokens} tokens")
    if not all(math.isfinite(t) and t >= 0 for t in times):
        raise InvalidTimeline("negative, NaN or infinite token time")
    if any(b < a for a, b in zip(times, times[1:])):
        raise InvalidTimeline("token times go backwards")
    if tl.chips < 1:
        raise InvalidTimeline(f"chips = {tl.chips}")
    return tl


S = TypeVar("S", bound=msgspec.Struct)


def merge(base: dict, over: dict) -> dict:
    """Deep-merge two TOML tables: ``over`` wins, sub-tables merge."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_spec(kind: type[S], source: str | Path | dict, overrides: dict | None = None) -> S:
    """Read a TOML file (or a table) into ``kind``, validating every field; errors name the file."""
    where = "<table>"
    if isinstance(source, dict):
        table = source
    else:
        where = str(source)
        try:
            table = tomllib.loads(Path(source).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise SpecError(f"{where}: {e}") from None
    try:
        return msgspec.convert(merge(table, overrides or {}), kind)
    except msgspec.ValidationError as e:
        raise SpecError(f"{where}: {e}") from None


class Backend:
    """Base class for hardware backends (subclassing is optional: duck typing is enough).

    A backend has a ``name``, a ``priority`` (reading it raises RuntimeError, with the
    reason, when the backend cannot run here: it is then not viable) and ``timeline``.
    ``spec_file`` is the TOML its hardware description loads from, merged with ``overrides``.
    """

    name: ClassVar[str] = ""
    priority: float = 0.0
    spec_type: ClassVar[type[msgspec.Struct]]
    spec_file: ClassVar[Path | None] = None

    def __init__(self, spec: Any = None, overrides: dict | None = None) -> None:
        if spec is None and self.spec_file is not None:
            spec = load_spec(self.spec_type, self.spec_file, overrides)
        self.spec = spec

    def timeline(self, request: Request, seed: int = 0) -> Timeline:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
