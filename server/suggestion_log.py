"""Each suggestion's life, kept on this machine: offered, shown, accepted (whole or in part), or ended.

A suggestion is a completion stream (its id is the stream's; the ids of later views of the same
stream, answered by typing along it, are aliases) or a next edit. Editors report when they draw
one (`textDocument/didShowCompletion`, `textDocument/didShowInlineEdit`), when the user accepts it
(`sparkls.accept` with `kind` full / word / line and `acceptedChars`, `sparkls.acceptInlineEdit`,
`textDocument/didPartiallyAcceptCompletion`) or turns it down (`sparkls/didDismiss` with a
`reason`). A shown suggestion that is still open when the next one for the document is offered
was superseded. `sparkls/status` reports the counts; nothing is sent anywhere else.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import msgspec

from sparkls.server.messages import SuggestionCounts

KEEP = 1024  # suggestions remembered
RECENT = 20  # shown suggestions per document the recent accept rate is taken over
ENDINGS = ("typedPast", "dismissed", "superseded")


@dataclass
class Life:
    id: str
    kind: str  # "completion" | "nextEdit"
    uri: str
    offered: float = field(default_factory=time.monotonic)
    features: dict | None = None  # what the gate saw
    score: float | None = None  # the gate's probability that it is right
    gated: bool = False  # the gate kept it from being shown
    shown: bool = False
    accepted: str | None = None  # "full" or "partial"
    accepted_chars: int = 0
    ended: str | None = None  # one of ENDINGS

    @property
    def open(self) -> bool:
        return self.accepted != "full" and self.ended is None


class SuggestionLog:
    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self.lives: OrderedDict[str, Life] = OrderedDict()
        self.aliases: dict[str, str] = {}
        self.latest: dict[tuple[str, str], str] = {}  # (uri, kind) -> id of the newest suggestion
        self.recent: dict[str, deque[bool]] = {}  # uri -> accepted? of its recent shown suggestions
        self.counts = {k: _zero() for k in ("completion", "nextEdit")}
        self.listeners: list = []  # called with (life, accepted: bool) when a shown suggestion's outcome is known

    def offer(self, id: str, kind: str, uri: str, features: dict | None = None, score: float | None = None, gated: bool = False) -> Life:
        """A new suggestion for ``uri``; the previous one of its kind there, if shown and open, was superseded."""
        previous = self.latest.get((uri, kind))
        if previous is not None and previous != id:
            self.end(previous, "superseded")
        life = Life(id, kind, uri, features=features, score=score, gated=gated)
        self.lives[id] = life
        self.latest[(uri, kind)] = id
        self.counts[kind]["offered"] += 1
        self.counts[kind]["gated"] += gated
        while len(self.lives) > self.keep:
            old, _ = self.lives.popitem(last=False)
            self.aliases = {a: t for a, t in self.aliases.items() if t != old}
        return life

    def alias(self, alias: str, id: str) -> None:
        """``alias`` (a later view of the same stream) names suggestion ``id``."""
        if alias != id and id in self.lives:
            self.aliases[alias] = id

    def get(self, id: str | None) -> Life | None:
        if id is None:
            return None
        return self.lives.get(self.aliases.get(id, id))

    def show(self, id: str | None) -> None:
        life = self.get(id)
        if life is not None and not life.shown:
            life.shown = True
            self.counts[life.kind]["shown"] += 1

    def accept(self, id: str | None, kind: str = "full", chars: int = 0) -> None:
        life = self.get(id)
        if life is None:
            return
        if not life.shown:
            self.show(id)  # an editor that does not report showing: accepting means it was shown
        c = self.counts[life.kind]
        c["acceptedChars"] += max(0, chars)
        life.accepted_chars += max(0, chars)
        if kind == "full":
            if life.accepted != "full":
                c["accepted"] += 1
                if life.accepted == "partial":
                    c["partiallyAccepted"] -= 1  # finished by accepting the rest (its outcome is known already)
                else:
                    self._outcome(life, True)
            life.accepted = "full"
        elif life.accepted is None:
            life.accepted = "partial"
            c["partiallyAccepted"] += 1
            self._outcome(life, True)

    def end(self, id: str | None, reason: str) -> None:
        """The suggestion went away without (further) accepting: typed past, dismissed or superseded."""
        life = self.get(id)
        if life is None or not life.open:
            return
        life.ended = reason if reason in ENDINGS else "dismissed"
        if life.shown and life.accepted is None:
            self.counts[life.kind][life.ended] += 1
            self._outcome(life, False)

    def _outcome(self, life: Life, accepted: bool) -> None:
        self.recent.setdefault(life.uri, deque(maxlen=RECENT)).append(accepted)
        for listener in self.listeners:
            listener(life, accepted)

    def accept_rate(self, uri: str) -> float | None:
        """The share of the document's recent shown suggestions that were accepted (None: none yet)."""
        recent = self.recent.get(uri)
        return sum(recent) / len(recent) if recent else None

    def status(self) -> dict[str, SuggestionCounts]:
        """Counts and accept rates (accepted in full or in part, over shown), per kind."""
        out = {}
        for kind, c in self.counts.items():
            accepted = c["accepted"] + c["partiallyAccepted"]
            out[kind] = msgspec.convert({**c, "acceptRate": round(accepted / c["shown"], 3) if c["shown"] else None}, SuggestionCounts)
        return out

    def forget(self, uri: str) -> None:
        self.recent.pop(uri, None)
        for key in [k for k in self.latest if k[0] == uri]:
            self.end(self.latest.pop(key), "dismissed")


def _zero() -> dict:
    return {k: 0 for k in SuggestionCounts.__struct_encode_fields__ if k != "acceptRate"}
