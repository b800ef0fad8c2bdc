"""What several subcommands share: argument types, the plugin host, log styles, number cells."""

from __future__ import annotations

import argparse
import logging
import math
import re

# (level without -v, format): the server's tools log what they do; the backend tools only warn.
SERVER_LOGS = (logging.INFO, "%(asctime)s %(levelname)s %(name)s: %(message)s")
TOOL_LOGS = (logging.WARNING, "%(levelname)s %(name)s: %(message)s")

SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
PRECISION = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5, "nvfp4": 0.5, "mxfp4": 0.53}


def count(text: str) -> float:
    """A count as a plain number, ``1.2e11``, or with a suffix: ``120B``, ``5.1B``, ``32k``."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*", text, re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a count: {text!r} (try 1.2e11, 120B, 32k)")
    return float(m[1]) * SUFFIX[m[2].lower()]


def integer(text: str) -> int:
    return int(round(count(text)))


def bytes_per_param(text: str) -> float:
    return PRECISION.get(text.lower()) or count(text)


def parse_position(spec: str, prog: str = "sparkls") -> tuple[str, int, int]:
    """``FILE:LINE:COL`` with 1-based line and column, as compilers print them."""
    try:
        path, line, col = spec.rsplit(":", 2)
        return path, int(line), int(col)
    except ValueError:
        raise SystemExit(f"{prog}: expected FILE:LINE:COL (1-based), got {spec!r}") from None


def host():
    """The process-wide plugin host (imported late: ``sparkls --help`` needs no backends)."""
    from sparkls.plugins.registry import host

    return host()


def cell(x: float | None, fmt: str) -> str:
    return format(x, fmt) if x is not None and math.isfinite(x) else "-"


def range_fields(spread) -> dict:
    """p10 / p50 / p90 of TTFT and tok/s/user under the modelled load and jitter, as JSON fields."""
    out = {}
    for metric in ("ttft_s", "tokens_per_s"):
        for q, v in zip(("p10", "p50", "p90"), getattr(spread, metric)):
            out[f"{metric}_{q}"] = v if math.isfinite(v) else None
    return out
