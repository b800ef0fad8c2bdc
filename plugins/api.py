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

import inspect
import math
import os
import tomllib
from pathlib import Path
from typing import Annotated, ClassVar, Literal, TypeVar

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
    heads: Count = 0  # query heads (0: attention costed as 4·hidden FLOPs per token pair per layer)
    kv_heads: Count = 0  # key/value heads (GQA; 1 for MLA's shared latent): tensor parallelism past this
    # many GPUs replicates the KV cache rather than splitting it (vLLM keeps max(1, kv_heads/tp) per GPU)
    head_dim: Count = 0  # query/key dims per head in prompt attention (0: hidden / heads); MLA: nope + rope
    v_head_dim: Count = 0  # value dims per head (0: head_dim)
    kv_lora_rank: Count = 0  # MLA: latent width; decode attends in the latent (absorbed) space, rank + rope
    rope_head_dim: Count = 0  # MLA: the decoupled rotary key dims carried beside the latent
    sliding_window: Count = 0  # tokens a sliding-window layer attends to (0: none)
    sliding_layers: Count = 0  # of the layers, how many use the sliding window
    ffn: Count = 0  # feed-forward width (per expert for a mixture of experts)
    vocab: Count = 0  # vocabulary: the sampler's logits per sequence
    chat_format: Literal["jinja", "harmony"] = "jinja"  # how a chat request becomes a prompt: the model's Jinja
    # chat template (rendered in the API server's Python), or OpenAI's Harmony format (rendered in Rust; gpt-oss)
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

    def attention_flops(self, pairs: float, window_pairs: float = -1.0, decode: bool = False) -> float:
        """FLOPs of attention over ``pairs`` (query token, context token) pairs summed over a pass,
        ``window_pairs`` of them within the sliding window (<0: all), all layers: QK^T and PV,
        2·heads·(d_qk + d_v) per pair per layer. MLA prefill attends in the decompressed heads
        (d_qk = nope + rope, d_v); its decode attends in the latent (d_qk = rank + rope, d_v = rank)."""
        if not self.heads:
            return 4 * self.layers * self.hidden * pairs
        dqk = self.head_dim or self.hidden / self.heads
        dv = self.v_head_dim or dqk
        if decode and self.kv_lora_rank:
            dqk, dv = self.kv_lora_rank + self.rope_head_dim, self.kv_lora_rank
        per_pair = 2 * self.heads * (dqk + dv)
        windowed = min(self.sliding_layers, self.layers) if self.sliding_window else 0
        window_pairs = pairs if window_pairs < 0 else window_pairs
        return per_pair * ((self.layers - windowed) * pairs + windowed * window_pairs)

    def kv_shards(self, tp: int) -> int:
        """Over how many of ``tp`` tensor-parallel GPUs one token's KV cache is split (the rest replicate)."""
        return max(1, min(tp, self.kv_heads)) if self.kv_heads else tp

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


# -- TOML descriptions ----------------------------------------------------------------------
#
# Hardware and served models are TOML files validated by msgspec Structs. A user changes any
# field without touching an installed package: a partial file of the same name in their own
# configuration folder is deep-merged over the packaged one.


def config_dir() -> Path:
    """The user's sparkls configuration folder: ``$XDG_CONFIG_HOME/sparkls`` (default ``~/.config/sparkls``)."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "sparkls"


def user_spec_dir() -> Path:
    """Where a user's partial backend TOML files live: ``$SPARKLS_BACKEND_DIR``, else ``config_dir()/backends``."""
    return Path(os.environ.get("SPARKLS_BACKEND_DIR") or config_dir() / "backends")


def merge(base: dict, over: dict) -> dict:
    """Deep-merge two TOML tables: ``over`` wins, sub-tables merge."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_toml(path: str | Path) -> dict:
    """A TOML file as a table; :class:`SpecError` naming the file if it cannot be read or parsed."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise SpecError(f"{path}: {e}") from None


def load_spec(kind: type[S], source: str | Path | dict, overrides: dict | None = None, where: str = "") -> S:
    """Read a TOML file (or a table from ``where``) into ``kind``, validating every field; errors
    name the file."""
    where = where or ("<table>" if isinstance(source, dict) else str(source))
    table = source if isinstance(source, dict) else read_toml(source)
    try:
        return msgspec.convert(merge(table, overrides or {}), kind)
    except msgspec.ValidationError as e:
        raise SpecError(f"{where}: {e}") from None


MODELS = Path(__file__).with_name("models")  # the served-model catalogue: <name>.toml


def builtin_models() -> list[str]:
    """Names of the packaged served-model descriptions (``llama-3.1-70b``, ``qwen3-32b``, ...)."""
    return sorted(p.stem for p in MODELS.glob("*.toml"))


def load_model(name_or_path: str | Path, overrides: dict | None = None) -> ModelSpec:
    """A :class:`ModelSpec` from a TOML file, or by name from the packaged catalogue."""
    path = Path(name_or_path)
    if not path.is_file() and (MODELS / f"{name_or_path}.toml").is_file():
        path = MODELS / f"{name_or_path}.toml"
    return load_spec(ModelSpec, path, overrides)


# -- backends -------------------------------------------------------------------------------


class Backend:
    """What the host needs from a backend (subclassing is optional: duck typing is enough).

    ``name`` is what users type; ``priority`` ranks it when the ``backend`` setting is
    ``"auto"`` (``local`` is 10); reading it raises RuntimeError, with the reason, when the
    backend cannot run here (it is then not viable). ``timeline`` answers a request.

    The host calls the class named by the entry point with no arguments at discovery, and as
    ``cls(variant=..., overrides=...)`` for ``"name:variant"`` or field overrides: that is the
    constructor :class:`TomlBackend` documents.
    """

    name: ClassVar[str] = ""
    priority: float = 0.0

    def timeline(self, request: Request, seed: int = 0) -> Timeline:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class TomlBackend(Backend):
    """A backend whose hardware is described by a TOML file and validated by ``spec_type``.

    The file is ``spec_file`` (relative to the subclass's module), by default ``<name>.toml``. Load
    order: that table; deep-merged with the user's ``<user_spec_dir()>/<name>.toml`` if there
    is one; then the chosen ``[variants.<variant>]`` tables in turn (a part, a release or a
    serving stack: ``"h100+vllm"`` applies both; without one, the file's top-level ``variant``
    key, if any); then ``overrides``. Every field is validated; errors name the file.
    ``self.spec`` is the result, ``self.variant`` the variant applied and ``self.variants`` the
    ones the file offers.
    """

    spec_type: ClassVar[type[msgspec.Struct]]
    spec_file: ClassVar[str | Path | None] = None

    def __init__(self, variant: str = "", overrides: dict | None = None) -> None:
        path = self.spec_path()
        table = read_toml(path)
        where = str(path)
        user = user_spec_dir() / f"{self.name}.toml"
        if user.is_file():
            table = merge(table, read_toml(user))
            where += f" with {user}"
        variants = table.pop("variants", {})
        default = table.pop("variant", "")
        if not isinstance(variants, dict) or not isinstance(default, str):
            raise SpecError(f"{where}: `variant` must be a string and `variants` a table of tables")
        self.variant = variant or default
        for part in filter(None, self.variant.split("+")):
            if part not in variants:
                raise SpecError(f"{path}: no variant {part!r} (have: {', '.join(variants) or 'none'})")
            table = merge(table, variants[part])
        self.variants = tuple(variants)
        self.spec = load_spec(self.spec_type, table, overrides, where)

    @classmethod
    def spec_path(cls) -> Path:
        """The packaged TOML description."""
        return Path(inspect.getfile(cls)).parent / (cls.spec_file or f"{cls.name}.toml")
