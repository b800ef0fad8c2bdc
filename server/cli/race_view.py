"""How ``sparkls race`` shows its lanes: a live rich table on a terminal, a plain summary otherwise."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sparkls.plugins.api import Timeline
from sparkls.server.cli.common import cell, range_fields


@dataclass
class Lane:
    """One backend's row in the race: what it has shown so far, and when."""

    name: str
    kind: str  # "modelled", "measured" (this machine) or "remote" (a real engine)
    timeline: Timeline | None = None
    spread: object = None  # backends.served.Spread, for a modelled lane
    text: str = ""
    tokens: int = 0
    first: float | None = None
    last: float | None = None
    done: bool = False
    error: str = ""
    measured: object = None  # the remote lane's Measurement

    @property
    def answered_by(self) -> str:
        return self.timeline.backend if self.timeline is not None else self.name

    @property
    def ttft(self) -> float | None:
        m = self.measured
        return m.ttft_s if m is not None and m.ttft_s is not None else self.first

    @property
    def tokens_per_s(self) -> float | None:
        m = self.measured
        if m is not None:
            return m.tokens_per_s
        tl, n = self.timeline, self.tokens
        if self.kind == "modelled" and tl is not None and n > 1 and tl.due(n - 1) > tl.due(0):
            return (n - 1) / (tl.due(n - 1) - tl.due(0))  # the hardware's rate, even when the screen bunches
        if n > 1 and self.first is not None and self.last is not None and self.last > self.first:
            return (n - 1) / (self.last - self.first)
        return None

    @property
    def note(self) -> str:
        if self.error:
            return self.error
        notes = {"modelled": "modelled", "measured": "measured on this machine",
                 "remote": "real tokens, measured cadence"}[self.kind]
        if self.timeline is not None and self.answered_by != self.name.split(":")[0]:
            notes += f"; answered by {self.answered_by}"
        if self.timeline is not None and self.kind == "modelled":
            notes += f"; {self.timeline.chips} chip{'s' if self.timeline.chips > 1 else ''}"
        sp = self.spread
        if sp is not None and all(math.isfinite(x) for x in (*sp.ttft_s, *sp.tokens_per_s)):
            notes += (f"; p10-p90 TTFT {sp.ttft_s[0]:.3g}-{sp.ttft_s[2]:.3g} s, "
                      f"{sp.tokens_per_s[0]:.0f}-{sp.tokens_per_s[2]:.0f} tok/s")
        return notes

    def summary(self) -> dict:
        row = dict(backend=self.name, kind=self.kind, answered_by=self.answered_by, ttft_s=self.ttft,
                   tokens_per_s=self.tokens_per_s, tokens=self.tokens, total_s=self.last, text=self.text,
                   note=self.note, error=self.error or None)
        if self.timeline is not None:
            row["chips"] = self.timeline.chips
        if self.spread is not None:
            row.update(range_fields(self.spread))
        return row


def render(lanes: list[Lane], header: str, now: float, finished: bool):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=header, title_justify="left", expand=True, show_lines=True)
    table.add_column("backend", no_wrap=True, style="bold")
    table.add_column("TTFT", justify="right", no_wrap=True)
    table.add_column("tok/s", justify="right", no_wrap=True)
    table.add_column("tokens", justify="right", no_wrap=True)
    table.add_column("completion", ratio=1)
    table.add_column("note", max_width=18, style="dim")
    for r in lanes:
        ttft = Text(f"{r.ttft:.3f}s") if r.ttft is not None else Text(f"{now:.2f}s…", style="dim")
        text = Text(r.text, style="green")
        if not r.done and not finished:
            text.append("▌", style="dim")
        table.add_row(r.name, ttft, cell(r.tokens_per_s, ".0f"), str(r.tokens), text,
                      Text(r.note, style="red" if r.error else "dim"))
    return table


def print_summary(lanes: list[Lane], out) -> None:
    print(f"{'backend':28} {'TTFT s':>8} {'tok/s':>8} {'tokens':>6} {'total s':>8}  note", file=out)
    for r in lanes:
        print(f"{r.name:28} {cell(r.ttft, '8.3f'):>8} {cell(r.tokens_per_s, '8.1f'):>8} {r.tokens:>6} "
              f"{cell(r.last, '8.3f'):>8}  {r.note}", file=out)
