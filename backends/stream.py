"""What the built-in hardware models share: spec loading with variants and user overrides,
and turning (time to first token, decode step time) into a seeded token timeline."""

from __future__ import annotations

import math
import os
import random
import tomllib
from pathlib import Path
from typing import Callable

from sparkls.plugins.api import Backend, Request, SpecError, Timeline, load_spec, merge

HERE = Path(__file__).parent
MODELS_PREFIX = "model-"


def user_dir() -> Path:
    """Where a user's partial TOML overrides live: ``$SPARKLS_BACKEND_DIR`` or the XDG config dir."""
    if d := os.environ.get("SPARKLS_BACKEND_DIR"):
        return Path(d)
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "sparkls" / "backends"


class TomlBackend(Backend):
    """A backend whose hardware spec is ``<name>.toml`` next to this module.

    Load order: the built-in table, deep-merged with ``<user_dir>/<name>.toml`` if present,
    then the chosen ``[variants.<variant>]`` table (a part or a software release), then
    ``overrides``. Every field is validated by the spec Struct; errors name the file.
    """

    def __init__(self, variant: str = "", overrides: dict | None = None) -> None:
        path = HERE / f"{self.name}.toml"
        table = tomllib.loads(path.read_text())
        user = user_dir() / f"{self.name}.toml"
        if user.is_file():
            try:
                table = merge(table, tomllib.loads(user.read_text()))
            except tomllib.TOMLDecodeError as e:
                raise SpecError(f"{user}: {e}") from None
        variants = table.pop("variants", {})
        variant = variant or table.get("variant", "")
        if variant and variant not in variants:
            raise SpecError(f"{path}: no variant {variant!r} (have: {', '.join(variants) or 'none'})")
        table = merge(table, variants.get(variant, {}))
        table["variant"] = variant
        self.variants = tuple(variants)
        super().__init__(load_spec(self.spec_type, table, overrides))


def jitter_factor(rng: random.Random, sigma: float) -> float:
    """A mean-one lognormal factor, clipped at three sigma: run-to-run spread of a step."""
    if sigma <= 0:
        return 1.0
    g = max(-3.0, min(3.0, rng.gauss(0.0, 1.0)))
    return math.exp(sigma * g - sigma * sigma / 2)


def stream(
    backend: str,
    req: Request,
    ttft: float,
    step_at: Callable[[int], float],
    *,
    chips: int,
    jitter: float = 0.0,
    seed: int = 0,
) -> Timeline:
    """Emit the first token at ``ttft``, then one burst per decode step.

    ``step_at(ctx)`` is the duration of one target step (drafting included) when the
    context holds ``ctx`` tokens. A step emits ``floor(accept + u)`` tokens, u uniform in
    [0, 1) from ``random.Random(seed)``, so bursts average ``accept`` exactly.
    """
    rng = random.Random(seed)
    accept = req.model.speculative.accept
    t = ttft * jitter_factor(rng, jitter)
    times = [t]
    ctx = req.prompt_tokens + 1
    while len(times) < req.new_tokens:
        k = int(accept + rng.random()) if accept != int(accept) else int(accept)
        t += step_at(ctx) * jitter_factor(rng, jitter)
        times.extend([t] * k)
        ctx += k
    return Timeline(
        backend=backend,
        token_times=tuple(times[: req.new_tokens]),
        chips=chips,
        concurrency=req.streams,
    )


def model_path(name: str) -> Path:
    """The TOML file of a built-in model description, e.g. ``llama-3.1-70b``."""
    return HERE / f"{MODELS_PREFIX}{name}.toml"


def builtin_models() -> list[str]:
    return sorted(p.stem[len(MODELS_PREFIX) :] for p in HERE.glob(f"{MODELS_PREFIX}*.toml"))


def load_model(name_or_path: str | Path, overrides: dict | None = None):
    """A :class:`~sparkls.plugins.api.ModelSpec` from a built-in name or a TOML file."""
    from sparkls.plugins.api import ModelSpec

    p = Path(name_or_path)
    if not p.is_file() and model_path(str(name_or_path)).is_file():
        p = model_path(str(name_or_path))
    return load_spec(ModelSpec, p, overrides)
