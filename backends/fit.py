"""Fit a backend's free spec parameters to the ``fit`` figures of ``calibration.toml``.

The objective is the weighted mean squared log error, weights by source kind
(:data:`~sparkls.backends.calibration.WEIGHT`: an independent measurement counts three
times a vendor's claim). The search is a coordinate descent in log space within each
parameter's physical bounds: few parameters, each with a meaning, rather than a constant
per figure. ``sparkls backends fit NAME`` prints the result; the spec TOMLs hold it.
"""

from __future__ import annotations

import math
from typing import Callable

from sparkls.backends.calibration import WEIGHT, Figure, figures, predict

# Free parameters per backend and their physical bounds.
FREE: dict[str, dict[str, tuple[float, float]]] = {
    "nvidia-hopper": {
        "bw_efficiency": (0.3, 0.95),  # HBM: 30-95 % of nominal
        "moe_bw_efficiency": (0.2, 0.95),
        "compute_efficiency": (0.2, 0.9),
        "moe_compute_efficiency": (0.05, 0.9),
        "attention_efficiency": (0.1, 0.8),
        "layer_overhead_s": (3e-6, 1e-4),
        "sequence_overhead_s": (1e-6, 2e-4),
        "admit_s": (1e-4, 0.02),  # API server CPU per request
        "template_s": (0.0, 0.05),  # per Jinja chat template
        # per streamed chunk: at most 44 us, GPUStack's gpt-oss-20B runs streamed 22,786 chunks/s through one server
        "chunk_s": (2e-6, 44e-6),
        "frontend_s": (0.005, 0.05),
    },
    "nvidia-blackwell": {
        "bw_efficiency": (0.3, 0.95),
        "compute_efficiency": (0.2, 0.9),
        "layer_overhead_s": (3e-6, 1e-4),
    },
    "cerebras-wse3": {
        "layer_latency_s": (1e-6, 5e-5),
        "wafer_hop_s": (1e-6, 1e-3),
        "compute_efficiency": (0.05, 0.9),
        "prefill_tokens_per_pass": (1, 64),
    },
}


def loss(figs: list[Figure], overrides: dict, host=None) -> float:
    """Weighted mean squared log error of the figures' predictions with ``overrides``."""
    num = den = 0.0
    for f in figs:
        p = predict(f, host, overrides)
        w = WEIGHT[f.kind]
        num += w * math.log(p.predicted / f.value) ** 2
        den += w
    return num / den if den else 0.0


def in_fit(backend: str, stack: str = "") -> list[Figure]:
    """The in-fit figures of a backend, on its base spec or on one serving-stack variant, less those
    marked ``excluded``: a figure the model lacks the mechanism for would only bend the parameters
    toward compensating for it (as the API-server cost once absorbed a KV-bound queue)."""
    def stack_of(f: Figure) -> str:
        parts = f.hardware.partition(":")[2].split("+")
        return parts[1] if len(parts) > 1 else ""

    return [f for f in figures() if f.split == "fit" and not f.excluded and f.hardware.split(":")[0] == backend
            and stack_of(f) == stack]


def fit(backend: str, start: dict, host=None, sweeps: int = 3, log: Callable[[str], None] = lambda s: None,
        figs: list[Figure] | None = None, free: dict[str, tuple[float, float]] | None = None,
        stack: str = "") -> tuple[dict, float, float]:
    """Coordinate descent over ``free`` (default ``FREE[backend]``) from ``start``, on the
    backend's in-fit figures for ``stack`` (or ``figs``); returns (values, loss before, after)."""
    if figs is None:
        figs = in_fit(backend, stack)
    bounds = free or FREE[backend]
    cur = {k: float(start[k]) for k in bounds}
    best = before = loss(figs, cur, host)
    for sweep in range(sweeps):
        step = 1.6 / (sweep + 1) + 1.0
        for k, (lo, hi) in bounds.items():
            improved = True
            while improved:
                improved = False
                for factor in (step, 1 / step):
                    value = min(hi, max(lo, (cur[k] or lo or 1e-3) * factor))
                    trial = dict(cur, **{k: round(value) if isinstance(lo, int) else value})
                    if trial[k] == cur[k]:
                        continue
                    val = loss(figs, trial, host)
                    if val < best - 1e-9:
                        cur, best, improved = trial, val, True
                        log(f"{k} = {cur[k]:.4g}  loss {best:.4f}")
                        break
    return cur, before, best
