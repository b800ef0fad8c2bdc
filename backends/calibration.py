"""Predict every published figure in ``calibration.toml`` with the backend and model it names.

Each figure says what kind of source it is (``independent-measured``, ``vendor-claimed`` or
``derived``) and whether it set the spec parameters (``fit``) or was only checked after
(``holdout``). A figure under load names its ``concurrency`` (streams sharing the
deployment, started together as a benchmark starts them) and ``rounds`` (requests per
stream); the prediction is the median over the simulated requests (:meth:`spread`).

``sparkls backends calibrate`` prints the table and the error per split and kind;
``tests/test_backends_calibration.py`` checks the targets (:func:`target_failures`).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Literal

import msgspec

from sparkls.plugins.api import Request, load_model, merge, read_toml

DATA = Path(__file__).with_name("calibration.toml")
TOLERANCE = 0.25  # each in-fit figure
Kind = Literal["independent-measured", "vendor-claimed", "derived"]
KINDS: tuple[str, ...] = ("independent-measured", "derived", "vendor-claimed")
# How much a figure counts in the fit: a third party's measurement over days outweighs a
# vendor's "up to" figure taken on its best day.
WEIGHT = {"independent-measured": 3.0, "derived": 2.0, "vendor-claimed": 1.0}
# Held-out targets (issue #18): median |error| per metric, and no figure off by more than 2x.
HELDOUT_MEDIAN = {"tokens_per_s": 0.25, "ttft_s": 0.35}
MAX_RATIO = 2.0
# Lognormal sigma of a dataset's prompt and output lengths around their means: random-token
# benchmarks fix them; ShareGPT conversations spread about as a lognormal of sigma 1.
LENGTH_SIGMA = {"fixed": 0.0, "sharegpt": 1.0}


class Figure(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One published serving figure and the request shape that reproduces it."""

    id: str
    model: str  # a built-in model description
    hardware: str  # backend, optionally "name:variant"
    metric: Literal["tokens_per_s", "ttft_s"]
    value: float
    kind: Kind
    conditions: str
    source: str
    url: str
    date: str
    split: Literal["fit", "holdout"]
    request: dict
    rounds: int = 0  # requests per stream under load (0: the simulator's default)
    lengths: Literal["fixed", "sharegpt"] = "fixed"  # the request lengths' spread: the source's dataset
    assumed: str = ""
    known_miss: str = ""  # why a figure is missed by more than the tolerance
    excluded: str = ""  # why an in-fit figure does not steer the fit (the model lacks its mechanism)
    model_overrides: dict = {}
    hardware_overrides: dict = {}

    @property
    def loaded(self) -> bool:
        return self.request.get("concurrency", 1) > 1

    @property
    def long_prompt(self) -> bool:
        return self.request.get("prompt_tokens", 0) >= 8000


class Prediction(msgspec.Struct, frozen=True):
    figure: Figure
    predicted: float
    chips: int
    low: float = math.nan  # p10 of the modelled spread
    high: float = math.nan  # p90

    @property
    def error(self) -> float:
        return self.predicted / self.figure.value - 1

    @property
    def ratio(self) -> float:
        """How many times off, either way (1 = exact)."""
        r = self.predicted / self.figure.value
        return max(r, 1 / r) if r > 0 else math.inf


def figures(path: Path = DATA) -> list[Figure]:
    return msgspec.convert(read_toml(path)["figure"], list[Figure])


def predict(fig: Figure, host=None, spec_overrides: dict | None = None) -> Prediction:
    """Build the figure's backend and request, and read the metric's median off the modelled load."""
    from sparkls.plugins.registry import host as default_host

    h = host or default_host()
    backend = h.get(fig.hardware, overrides=merge(fig.hardware_overrides, spec_overrides or {}), strict=True)
    req = msgspec.convert({**fig.request, "model": load_model(fig.model, fig.model_overrides)}, Request)
    tl = h.timeline(None, req, seed=0, backend=backend)
    if tl.backend != backend.name:
        raise RuntimeError(f"{fig.id}: {backend.name} failed, {tl.backend} answered")
    if not hasattr(backend, "spread"):
        return Prediction(fig, getattr(tl, fig.metric), tl.chips)
    sp = backend.spread(req, seed=0, rounds=fig.rounds or None, length_sigma=LENGTH_SIGMA[fig.lengths])
    lo, mid, hi = getattr(sp, fig.metric)
    return Prediction(fig, mid, tl.chips, lo, hi)


def table(preds: list[Prediction]) -> str:
    """The predictions side by side with the published values, as aligned text."""
    head = (f"{'figure':30} {'kind':12} {'split':7} {'hardware':26} {'metric':12} {'published':>10} "
            f"{'predicted':>10} {'p10-p90':>17} {'error':>7} {'chips':>5}")
    lines = [head, "-" * len(head)]
    for p in preds:
        f = p.figure
        band = f"{p.low:.4g}-{p.high:.4g}" if math.isfinite(p.low) else "-"
        lines.append(
            f"{f.id:30} {f.kind.split('-')[0]:12} {f.split:7} {f.hardware:26} {f.metric:12} {f.value:>10.4g} "
            f"{p.predicted:>10.4g} {band:>17} {p.error:>+7.1%} {p.chips:>5}"
        )
    return "\n".join(lines)


def error_stats(preds: list[Prediction]) -> dict:
    """n, median |error| and the worst ratio of a set of predictions."""
    if not preds:
        return dict(n=0, median_abs_error=math.nan, worst_ratio=math.nan)
    return dict(n=len(preds), median_abs_error=statistics.median(abs(p.error) for p in preds),
                worst_ratio=max(p.ratio for p in preds))


def report(preds: list[Prediction]) -> list[dict]:
    """Error per split x kind x metric, then per split x metric over every kind."""
    rows = []
    for split in ("fit", "holdout"):
        for metric in ("tokens_per_s", "ttft_s"):
            sel = [p for p in preds if p.figure.split == split and p.figure.metric == metric]
            rows.append(dict(split=split, kind="all", metric=metric, **error_stats(sel)))
            for kind in KINDS:
                sub = [p for p in sel if p.figure.kind == kind]
                if sub:
                    rows.append(dict(split=split, kind=kind, metric=metric, **error_stats(sub)))
    return rows


def report_text(preds: list[Prediction]) -> str:
    lines = [f"{'split':8} {'kind':22} {'metric':13} {'n':>3} {'median |err|':>13} {'worst':>7}"]
    for r in report(preds):
        if r["n"]:
            lines.append(f"{r['split']:8} {r['kind']:22} {r['metric']:13} {r['n']:>3} "
                         f"{r['median_abs_error']:>13.1%} {r['worst_ratio']:>6.2f}x")
    return "\n".join(lines)


def target_failures(preds: list[Prediction]) -> list[str]:
    """What misses issue #18's targets: held-out median |error| per metric, any figure beyond
    2x, in-fit median beyond the tolerance; the held-out set must span single-stream and
    loaded, short and long prompts.

    The held-out targets are measured against what was measured or derived from measurements;
    held-out vendor claims are reported beside them (``report``), not aimed at: the model is
    fitted to follow independent measurements where the two disagree."""
    bad = []
    held = [p for p in preds if p.figure.split == "holdout" and p.figure.kind != "vendor-claimed"]
    for metric, limit in HELDOUT_MEDIAN.items():
        s = error_stats([p for p in held if p.figure.metric == metric])
        if not s["n"] or s["median_abs_error"] > limit:
            bad.append(f"held-out {metric}: median |error| {s['median_abs_error']:.1%} > {limit:.0%} (n={s['n']})")
    for p in held:
        if p.ratio > MAX_RATIO:
            bad.append(f"held-out {p.figure.id}: off by {p.ratio:.2f}x")
    fit = error_stats([p for p in preds if p.figure.split == "fit"])
    if fit["median_abs_error"] > TOLERANCE:
        bad.append(f"in-fit median |error| {fit['median_abs_error']:.1%} > {TOLERANCE:.0%}")
    cover = {(p.figure.loaded, p.figure.long_prompt) for p in held}
    for loaded in (False, True):
        if not any(c[0] == loaded for c in cover):
            bad.append(f"held-out set has no {'loaded' if loaded else 'single-stream'} figure")
    for long in (False, True):
        if not any(c[1] == long for c in cover):
            bad.append(f"held-out set has no {'long-prompt' if long else 'short-prompt'} figure")
    return bad
