"""Next edits of the third kind: the neural core's own rewrite of the few lines after an edit.

When the edit trajectory reads as no rename and no repeatable change (server/next_edit.py), the model is shown the
latest edit as a unified diff: a few lines of context above it, the edited lines as they were (``-``) and as they are
(``+``). Then each of the ``REGION_LINES`` lines after them in the same block (as deep, up to a blank line), as
``-line``, and the model writes its ``+`` line, greedy
(its own text, just above, drafts it: copying costs little). SmolLM2 has no edit training, but diffs are common in
its training text, and a change that repeats on the lines below (``.copy()`` added at the end of one of several alike
lines, where the rule-based kinds see "a change at the end of a line" and stop) is what such a diff continues with.

Each region line the model wrote differently, by a small edit, is a suggestion (:class:`~.next_edit.Site`); at the
first line changed beyond ``MAX_CHANGE`` characters the model has stopped following the pattern, and nothing from
there on is proposed. Whether a rewrite is shown is a small logistic regression of its own (:data:`FEATURES`, weights
in rewrite_gate.json fitted by bench/next_edit.py --fit-rewrite on the TUNE packages).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from sparkls.server.edit_history import Hunk
from sparkls.server.next_edit import Site, smallest_edit

REGION_LINES = 4  # lines after the edit the model redrafts
CONTEXT_LINES = 8  # unchanged lines above the edit shown in the diff
CONTEXT_CHARS = 1500  # ... at most this many characters of them
MAX_LINE_CHARS = 200  # an edited or region line longer than this: no rewrite (a generated or minified file)
FEED_STEP = 32  # prompt tokens computed between two looks at whether the draft is still wanted
LINE_SLACK = 16  # tokens a drafted line may have beyond the line it replaces
MAX_CHANGE = 40  # characters a proposed line edit may remove plus insert
SESSION_TOKENS = 2048  # the rewrite session's context (its own KV cache, not a document's)
WEIGHTS = Path(__file__).with_name("rewrite_gate.json")

FEATURES = (
    "bias",
    "mean_logprob",  # mean log-probability of the tokens of the changed lines
    "min_logprob",  # the lowest of them
    "min_margin",  # the smallest log-prob gap to the runner-up among them (clipped to -5..10)
    "sites",  # changed lines (1..REGION_LINES)
    "log_chars",  # log(1 + characters removed and inserted over all of them)
    "echoes_edit",  # share of the changes that insert (or remove) what the user's edit inserted (removed)
    "same_change",  # every changed line changed the same way
    "kept_lines",  # share of the drafted lines the model copied unchanged
    "tail",  # the changes are at the lines' ends
)


@dataclass(frozen=True)
class Plan:
    """What is redrafted: the region after an edit, and the diff the model is shown."""

    prompt: str
    region_start: int  # offset in the current text of the region's first line
    region: tuple[str, ...]  # its lines, as they are
    edit_old: str  # the user's edit, trimmed to what differs
    edit_new: str


@dataclass(frozen=True)
class Draft:
    """The model's ``+`` side of the region, with the log-probability and margin of the tokens of each line."""

    lines: tuple[str, ...]  # complete lines only
    logprobs: tuple[tuple[float, ...], ...]
    margins: tuple[tuple[float, ...], ...]


def _lines_around(text: str, start: int, end: int) -> tuple[int, int]:
    """Offsets of the whole lines holding ``text[start:end]`` (the end without its line break)."""
    lo = text.rfind("\n", 0, start) + 1
    hi = text.find("\n", end)
    return lo, (len(text) if hi < 0 else hi)


def plan(text: str, hunk: Hunk, path: str = "") -> Plan | None:
    """The diff prompt for the lines after ``hunk`` (the document's latest edit), or None (nothing to redraft)."""
    if "\r" in text:
        return None
    s, e, new_edit = smallest_edit(hunk.old, hunk.new)
    old_edit = hunk.old[s:e]
    if not (old_edit or new_edit).strip():
        return None
    before = hunk.before(text)
    lo, hi = _lines_around(text, hunk.start, hunk.end)
    old_lo, old_hi = _lines_around(before, hunk.start, hunk.start + len(hunk.old))
    new_lines = text[lo:hi].split("\n")
    old_lines = before[old_lo:old_hi].split("\n")
    if hi >= len(text):
        return None
    region_start = hi + 1
    # The lines below in the same block: as deep as the edited line, up to a blank one or a shallower one.
    depth = min(len(x) - len(x.lstrip()) for x in new_lines if x.strip()) if any(x.strip() for x in new_lines) else 0
    region = []
    for line in text[region_start:].split("\n")[:REGION_LINES]:
        if not line.strip() or len(line) - len(line.lstrip()) < depth:
            break
        region.append(line)
    if not any(line.strip() for line in region) or max(map(len, region + new_lines + old_lines)) > MAX_LINE_CHARS:
        return None
    above = text[:lo].split("\n")[:-1][-CONTEXT_LINES:]
    while above and sum(len(x) + 1 for x in above) > CONTEXT_CHARS:
        above = above[1:]
    first = text.count("\n", 0, lo) + 1 - len(above)
    name = path.rsplit("/", 1)[-1] or "file"
    n_old, n_new = len(above) + len(old_lines) + len(region), len(above) + len(new_lines) + len(region)
    diff = [f"--- a/{name}", f"+++ b/{name}", f"@@ -{first},{n_old} +{first},{n_new} @@"]
    diff += [" " + x for x in above] + ["-" + x for x in old_lines] + ["+" + x for x in new_lines]
    return Plan("\n".join(diff) + "\n", region_start, tuple(region), old_edit, new_edit)


def sites(p: Plan, draft: Draft) -> list[tuple[int, Site]]:
    """``(region line, site)`` for each drafted line that differs by a small edit, up to the first that differs by more.
    When some of them repeat the user's change, only those: a line changed otherwise beside a repeated change was,
    on the bench, the model drifting (``return name, size`` -> ``return self`` under ``self.name`` -> ``self._name``)."""
    out = []
    offset = p.region_start
    for i, old in enumerate(p.region):
        if i < len(draft.lines) and draft.lines[i] != old:
            s, e, new = smallest_edit(old, draft.lines[i])
            if (e - s) + len(new) > MAX_CHANGE or not old.strip():
                break  # where the model drifted off: this line and those after it are not proposed
            out.append((i, Site(offset + s, offset + e, new)))
        offset += len(old) + 1
    echoing = [(i, site) for i, site in out if echoes(p, old_text(p, i, site), site.new)]
    return echoing or out


def old_text(p: Plan, line: int, site: Site) -> str:
    """What ``site`` (on region line ``line``) replaces."""
    start = p.region_start + sum(len(x) + 1 for x in p.region[:line])
    return p.region[line][site.start - start : site.end - start]


def echoes(p: Plan, old: str, new: str) -> bool:
    """A change that inserts what the user's edit inserted, or removes what it removed."""
    return bool((new and p.edit_new.strip() and p.edit_new.strip() in new) or (old and p.edit_old.strip() and p.edit_old.strip() in old))


def features(p: Plan, draft: Draft, found: list[tuple[int, Site]], text: str) -> np.ndarray:
    lps = [x for i, _ in found for x in draft.logprobs[i] if math.isfinite(x)]
    mgs = [x for i, _ in found for x in draft.margins[i] if math.isfinite(x)]
    changes = [(text[s.start : s.end], s.new) for _, s in found]
    echoed = [echoes(p, old, new) for old, new in changes]
    ends = [s.end == p.region_start + sum(len(x) + 1 for x in p.region[:i]) + len(p.region[i]) for i, s in found]
    x = {
        "bias": 1.0,
        "mean_logprob": float(np.mean(lps)) if lps else 0.0,
        "min_logprob": min(lps) if lps else 0.0,
        "min_margin": min(max(min(mgs), -5.0), 10.0) if mgs else 0.0,
        "sites": float(len(found)),
        "log_chars": math.log1p(sum(len(o) + len(n) for o, n in changes)),
        "echoes_edit": sum(echoed) / len(echoed) if echoed else 0.0,
        "same_change": 1.0 if changes and len(set(changes)) == 1 else 0.0,
        "kept_lines": (len(draft.lines) - len(found)) / len(draft.lines) if draft.lines else 0.0,
        "tail": sum(ends) / len(ends) if ends else 0.0,
    }
    return np.array([x[f] for f in FEATURES], np.float64)


class Drafter:
    """Runs the neural engine's model on a rewrite in a KV-cache session of its own (one for all documents:
    consecutive rewrites of a document share the diff's first lines).

    The region is drafted line by line, as a diff whose every line changed: ``-old`` then the model's ``+new``
    (its first token constrained to start with ``+``), so each line it writes has the line it replaces right
    above it. It stops at the first line it changes beyond a small edit (it no longer follows the pattern)."""

    def __init__(self, neural) -> None:
        self.neural = neural
        self.session = None
        self.lock = threading.Lock()

    def draft(self, p: Plan, cancelled: Callable[[], bool]) -> Draft | None:
        from sparkls.decode.neural.speculation import MAX_DRAFT, match_draft

        tok = self.neural.tokenizer
        plus = tok.ids_with_prefix(b"+")
        prompt = p.prompt
        lines, lps, mgs = [], [], []
        with self.lock:
            if self.session is None:
                self.session = self.neural.model.new_session(SESSION_TOKENS)
            session = self.session
            for old in p.region:
                prompt += "-" + old + "\n"
                ids = tok.encode(prompt)
                budget = len(tok.encode(old)) + LINE_SLACK
                if len(ids) + budget + MAX_DRAFT + 2 >= SESSION_TOKENS:
                    break
                if not _feed(session, ids, cancelled):
                    return None
                raw, logprobs, margins = b"", [], []

                def line_done(generated: list[int]) -> bool:
                    return b"\n" in raw

                draft = lambda history: match_draft(history, MAX_DRAFT)  # noqa: E731
                for token in session.generate(budget, draft=draft, should_stop=line_done, cancelled=cancelled, first_allowed=plus):
                    if tok.is_special(token):
                        break
                    raw += tok.token_bytes(token)
                    logprobs.append(session.last_logprob or 0.0)
                    margins.append(getattr(session, "last_margin", None) or 0.0)
                if cancelled():
                    return None
                text = raw.decode("utf-8", "ignore")
                if "\n" not in text:
                    break  # the line did not end within its budget
                new = text[1 : text.index("\n")]
                lines.append(new)
                lps.append(tuple(logprobs))
                mgs.append(tuple(margins))
                s, e, ins = smallest_edit(old, new)
                if (e - s) + len(ins) > MAX_CHANGE:
                    break  # drifted off the pattern: the lines below would be no better
                prompt += "+" + new + "\n"
        return Draft(tuple(lines), tuple(lps), tuple(mgs))


def _feed(session, ids: np.ndarray, cancelled: Callable[[], bool]) -> bool:
    """``session.feed(ids)`` in steps of FEED_STEP new tokens, asking ``cancelled()`` before each: a forward pass holds
    the interpreter (the event loop waits for it), so a cancelled draft must never start a long one."""
    done = session.common_prefix(ids)
    while True:
        if cancelled():
            return False
        done = min(len(ids), done + FEED_STEP)
        if session.feed(ids[:done], cancelled) is None:
            return False
        if done == len(ids):
            return not cancelled()


def neural_of(engine):
    """The neural engine behind ``engine`` (the copy-choice wrapper's), or None: the n-gram core drafts no rewrites."""
    inner = getattr(engine, "neural", engine)
    if getattr(inner, "name", "") != "neural" or not hasattr(inner, "tokenizer") or not hasattr(inner, "model"):
        return None
    return inner
