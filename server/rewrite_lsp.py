"""The model's rewrites (server/rewrite.py) in the `textDocument/copilotInlineEdit` path.

Asked only when the rule-based kinds have nothing for the document's version. One job per document, for its latest
version: it runs in the engine's executor (the decode pool), and a newer keystroke (a new document version) cancels
it within one token; every request for that version awaits the same job. A drafted rewrite is scored by its own gate
and, shown, its sites stay on offer while the user applies them one by one (Tab-Tab), with no new model run: the
applied one is recognised exactly, as rule-based patterns are.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from sparkls.server import rewrite
from sparkls.server.gate import Gate
from sparkls.server.next_edit import Site

log = logging.getLogger("sparkls")
KEEP_FEATURES = 256  # rewrites whose features sparkls/suggestionInfo can still report
START_DELAY_S = 0.05


@dataclass
class Proposal:
    """A drafted rewrite of one document version: its sites in that version, its features and score."""

    version: int
    text: str
    sites: list[Site]
    features: np.ndarray | None = None
    score: float = 0.0
    shown: bool = False


class Rewrites:
    def __init__(self) -> None:
        self.gate = Gate.load(rewrite.WEIGHTS, rewrite.FEATURES, otherwise_show=False)
        self.jobs: dict[str, tuple[int, asyncio.Future]] = {}  # uri -> (version, its job)
        self.proposals: dict[str, Proposal] = {}  # uri -> the latest rewrite drafted for it
        self.features: OrderedDict[str, dict] = OrderedDict()  # suggestion id -> features, for suggestionInfo
        self.drafters: dict[int, rewrite.Drafter] = {}
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"r{next(self._ids)}"  # a model rewrite's suggestion ids start with "r" (docs/protocol.md)

    def forget(self, uri: str) -> None:
        self.jobs.pop(uri, None)
        self.proposals.pop(uri, None)

    def carried(self, uri: str, doc, hunk) -> Proposal | None:
        """The document's shown rewrite, carried to this version when the latest edit applied one of its sites."""
        prop = self.proposals.get(uri)
        if prop is None or not prop.shown or hunk is None:
            return None
        if prop.version == doc.version:
            return prop
        before = hunk.before(doc.text)
        if before != prop.text:
            return None
        for site in prop.sites:
            if before[: site.start] + site.new + before[site.end :] == doc.text:
                delta = len(site.new) - (site.end - site.start)
                rest = [s if s.start < site.start else Site(s.start + delta, s.end + delta, s.new)
                        for s in prop.sites if s != site]
                moved = Proposal(doc.version, doc.text, rest, prop.features, prop.score, True)
                self.proposals[uri] = moved
                return moved if rest else None
        return None

    async def suggest(self, ls, uri: str, doc, hunk) -> Proposal | None:
        """The rewrite to show for ``doc`` at its current version (None: none, or its gate kept it back)."""
        carried = self.carried(uri, doc, hunk)
        if carried is not None:
            return carried
        neural = rewrite.neural_of(ls.local_engine)
        if neural is None or hunk is None or ls.excluded(uri):
            return None
        for gone in [u for u in self.proposals if u not in ls.documents]:
            self.forget(gone)
        version = doc.version
        job = self.jobs.get(uri)
        if job is None or job[0] != version:
            plan = rewrite.plan(doc.text, hunk, uri)
            if plan is None:
                return None
            # A keystroke's pause, before any work: a burst of keystrokes (an editor that does not debounce) starts
            # no drafts, whose first forward pass would hold the interpreter while the next keystrokes wait.
            await asyncio.sleep(START_DELAY_S)
            if doc.version != version or ls.documents.get(uri) is not doc:
                return None
            job = self.jobs.get(uri)
            if job is None or job[0] != version:  # no other request for this version started it meanwhile
                job = self.jobs[uri] = (version, self._start(ls, neural, uri, doc, plan))
        try:
            prop = await asyncio.shield(job[1])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a rewrite is a bonus: never fail the request over it
            log.error("rewrite failed: %s: %s", type(exc).__name__, exc)
            return None
        if prop is None or doc.version != version:
            return None
        if self.proposals.get(uri) is not prop:
            self._score(ls, prop)
            self.proposals[uri] = prop
            if not prop.shown:  # counted (and its features kept) as a suggestion the gate kept back
                sid = self.new_id()
                ls.suggestions.offer(sid, "nextEdit", uri, score=prop.score, gated=True)
                self.record(sid, prop)
                ls.send_status()
        return prop if prop.shown else None

    def _start(self, ls, neural, uri: str, doc, plan: rewrite.Plan) -> asyncio.Future:
        """The draft of ``plan`` in the engine's executor, cancelled when the document moves on from its version."""
        drafter = self.drafters.setdefault(id(neural), rewrite.Drafter(neural))
        version, text = doc.version, doc.text

        def cancelled() -> bool:  # read in the worker: a newer keystroke changed the version
            return doc.version != version or ls.documents.get(uri) is not doc

        executor = getattr(neural, "executor", None) or ls.pool
        return asyncio.get_running_loop().run_in_executor(executor, self._draft, drafter, plan, text, version, cancelled)

    @staticmethod
    def _draft(drafter: rewrite.Drafter, plan: rewrite.Plan, text: str, version: int, cancelled) -> Proposal | None:
        """In the worker: the model's draft, as sites in ``text``."""
        draft = drafter.draft(plan, cancelled)
        if draft is None:
            return None
        found = rewrite.sites(plan, draft)
        if not found:
            return None
        return Proposal(version, text, [s for _, s in found], rewrite.features(plan, draft, found, text))

    def _score(self, ls, prop: Proposal) -> None:
        prop.score = self.gate.score(prop.features)
        threshold = ls.options.gate.rewrite_threshold
        prop.shown = not ls.options.gate.enabled or self.gate.shows(prop.features, threshold)

    def record(self, sid: str, prop: Proposal) -> None:
        self.features[sid] = dict(zip(rewrite.FEATURES, map(float, prop.features)))
        while len(self.features) > KEEP_FEATURES:
            self.features.popitem(last=False)
