"""Predict every published figure in ``calibration.toml`` with the backend and model it names.

``sparkls backends calibrate`` prints the table; ``tests/test_backends_calibration.py``
checks each prediction is within 25 % of the published value.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from sparkls.backends.stream import load_model
from sparkls.plugins.api import Request

DATA = Path(__file__).with_name("calibration.toml")
TOLERANCE = 0.25


class Figure(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One published serving figure and the request shape that reproduces it."""

    id: str
    row: int  # row of hardware.md §2
    model: str  # a built-in model description
    hardware: str  # backend, optionally "name:variant"
    metric: Literal["tokens_per_s", "ttft_s"]
    value: float
    conditions: str
    source: str
    date: str
    split: Literal["fit", "holdout"]
    request: dict
    assumed: str = ""
    known_miss: str = ""  # why a held-out figure is missed by more than the tolerance
    model_overrides: dict = {}
    hardware_overrides: dict = {}


class Prediction(msgspec.Struct, frozen=True):
    figure: Figure
    predicted: float
    chips: int

    @property
    def error(self) -> float:
        return self.predicted / self.figure.value - 1


def figures(path: Path = DATA) -> list[Figure]:
    return msgspec.convert(tomllib.loads(path.read_text())["figure"], list[Figure])


def predict(fig: Figure, host=None) -> Prediction:
    """Build the figure's backend and request, and read the metric off the timeline."""
    from sparkls.plugins.registry import host as default_host

    h = host or default_host()
    backend = h.get(fig.hardware, overrides=fig.hardware_overrides, strict=True)
    req = msgspec.convert(
        {**fig.request, "model": load_model(fig.model, fig.model_overrides)}, Request
    )
    tl = h.timeline(None, req, seed=0, backend=backend)
    if tl.backend != backend.name:
        raise RuntimeError(f"{fig.id}: {backend.name} failed, {tl.backend} answered")
    return Prediction(fig, getattr(tl, fig.metric), tl.chips)


def table(preds: list[Prediction]) -> str:
    """The predictions side by side with the published values, as aligned text."""
    head = f"{'figure':26} {'row':>3} {'split':7} {'hardware':30} {'metric':12} {'published':>10} {'predicted':>10} {'error':>7} {'chips':>5}"
    lines = [head, "-" * len(head)]
    for p in preds:
        f = p.figure
        lines.append(
            f"{f.id:26} {f.row:>3} {f.split:7} {f.hardware:30} {f.metric:12} {f.value:>10.4g} {p.predicted:>10.4g} {p.error:>+7.1%} {p.chips:>5}"
        )
    return "\n".join(lines)
