"""A local gate: whether to show a suggestion, as a small logistic regression (NumPy), as Copilot's "contextual filter".

Features are what the server knows when the first text of a suggestion is ready: the model's confidence (mean, first and
lowest token log-probability so far, and how close a call the first and the closest token were: the log-prob gap to the
runner-up), the suggestion's size, whether it repeats the code beside it, how it was asked for, where the cursor is, the language, the
typing rhythm, how often this document's suggestions were accepted lately, and whether (and how far) the n-gram core (a different
kind of model, right where the neural one is often wrong) proposes the same start. The weights start from a fit on the
quality bench (bench/fit_gate.py: a suggestion is good when its first line is exactly the target) shipped in
gate_weights.json, and then follow this user's own accepts and rejects by online gradient steps, kept in memory.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("sparkls")

WEIGHTS = Path(__file__).with_name("gate_weights.json")
FEATURES = (
    "bias",
    "mean_logprob",  # mean over the tokens so far (0 when the engine gives none)
    "first_logprob",
    "min_logprob",
    "has_logprobs",
    "log_chars",  # log(1 + characters of the suggestion's first line)
    "multiline",
    "invoked",  # the user asked (trigger kind 1), not as-you-type
    "line_progress",  # cursor column / length of its line's code before the cursor and after it
    "at_line_end",  # nothing but blanks after the cursor on its line
    "blank_line",  # the cursor's line is blank up to it (a block is being started)
    "after_word",  # the character before the cursor is a letter, digit or _
    "after_open",  # ... an opening bracket, comma, = or :
    "python",
    "since_key",  # seconds since the previous keystroke, capped at 2
    "accept_rate",  # the document's recent accept rate (0.3 before any)
    "has_rate",
    "ngram_agrees",  # the n-gram core proposes the same start (one's first line begins the other's)
    "ngram_differs",  # it proposes something else (both 0: it proposes nothing)
    "first_margin",  # the first token's log-prob gap to the best other token (clipped to -5..10; 0 without margins)
    "min_margin",  # the smallest gap so far: the closest call
    "ngram_common",  # log(1 + characters the n-gram core's line and this one share from the start): agreement past the first token
    "ngram_same_line",  # the n-gram core proposes exactly this first line
    "repeats_context",  # the first line (3+ characters) is already on the previous line or after the cursor
    "header_end",  # the cursor's line ends a block header (`...:`): the next line is asked for
    "opens_prose",  # the suggestion starts a comment or a docstring
    "seen_elsewhere",  # at how many of 8, 16, 32 characters of context the same context and first line occur elsewhere
)
PRIOR_RATE = 0.3
PROSE = ("#", '"""', "'''", "//", "/*")  # a comment's or docstring's start
LEARNING_RATE = 0.05


@dataclass(frozen=True)
class Situation:
    """What the server knows about a suggestion when it is about to be shown."""

    text: str  # the suggestion after the cursor
    logprobs: tuple[float, ...]
    prefix_line: str  # the cursor's line up to the cursor
    suffix_line: str  # the rest of that line
    invoked: bool
    language: str
    since_key: float | None
    accept_rate: float | None
    ngram: str | None = None  # the n-gram core's suggestion at the same cursor, if asked
    margins: tuple[float, ...] = ()  # per token: log-prob gap to the best other token
    previous_line: str = ""  # the line above the cursor's
    elsewhere: str = ""  # the document without the cursor's line: where the suggestion may have been seen


def features(s: Situation) -> np.ndarray:
    lp = [x for x in s.logprobs if math.isfinite(x)]
    margins = [x for x in s.margins if math.isfinite(x)]
    ngram_line = (s.ngram or "").split("\n", 1)[0].rstrip()
    first = s.text.split("\n", 1)[0] if s.text.strip() else s.text.strip("\n").split("\n", 1)[0]
    before = s.prefix_line[-1:]
    done = len(s.prefix_line.strip())
    rest = len(s.suffix_line.strip())
    x = {
        "bias": 1.0,
        "mean_logprob": float(np.mean(lp)) if lp else 0.0,
        "first_logprob": lp[0] if lp else 0.0,
        "min_logprob": min(lp) if lp else 0.0,
        "has_logprobs": 1.0 if lp else 0.0,
        "log_chars": math.log1p(len(first)),
        "multiline": 1.0 if "\n" in s.text.strip("\n") else 0.0,
        "invoked": 1.0 if s.invoked else 0.0,
        "line_progress": done / (done + rest) if done + rest else 0.0,
        "at_line_end": 1.0 if not rest else 0.0,
        "blank_line": 1.0 if not done else 0.0,
        "after_word": 1.0 if before.isalnum() or before == "_" else 0.0,
        "after_open": 1.0 if before and before in "([{,=:" else 0.0,
        "python": 1.0 if s.language in ("python", "py") else 0.0,
        "since_key": min(s.since_key, 2.0) if s.since_key is not None else 2.0,
        "accept_rate": s.accept_rate if s.accept_rate is not None else PRIOR_RATE,
        "has_rate": 1.0 if s.accept_rate is not None else 0.0,
        "ngram_agrees": 1.0 if _agree(s.ngram, first) else 0.0,
        "ngram_differs": 1.0 if s.ngram and first.strip() and not _agree(s.ngram, first) else 0.0,
        "first_margin": _clip_margin(margins[0]) if margins else 0.0,
        "min_margin": _clip_margin(min(margins)) if margins else 0.0,
        "ngram_common": math.log1p(_common_start(ngram_line, first.rstrip())) if ngram_line.strip() else 0.0,
        "ngram_same_line": 1.0 if ngram_line.strip() and ngram_line == first.rstrip() else 0.0,
        "repeats_context": 1.0 if _repeats(first.strip(), s.previous_line, s.suffix_line) else 0.0,
        "header_end": 1.0 if s.prefix_line.rstrip().endswith(":") and not rest else 0.0,
        "opens_prose": 1.0 if s.text.strip().startswith(PROSE) else 0.0,
        "seen_elsewhere": float(_seen_elsewhere(s)),
    }
    return np.array([x[name] for name in FEATURES], np.float64)


def _agree(ngram: str | None, first: str) -> bool:
    a = (ngram or "").split("\n", 1)[0].rstrip()
    b = first.rstrip()
    return bool(a.strip() and b.strip()) and (a.startswith(b) or b.startswith(a))


def _seen_elsewhere(s: Situation) -> int:
    """At how many of 8, 16 and 32 characters before the cursor (across the line break above) that text followed by
    the suggestion's first line is somewhere else in the document: code that repeats itself is where the model is
    right."""
    text = s.text
    if not text.strip() or not s.elsewhere:
        return 0
    line = "\n" + text[1:].split("\n", 1)[0] if text.startswith("\n") else text.split("\n", 1)[0]
    before = s.previous_line + "\n" + s.prefix_line
    return sum(len(before) >= n and (before[-n:] + line) in s.elsewhere for n in (8, 16, 32))


def _clip_margin(m: float) -> float:
    return min(max(m, -5.0), 10.0)


def _common_start(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _repeats(line: str, previous: str, after: str) -> bool:
    """A suggestion that says again what the code next to it says (a copied line, a closing already there)."""
    return len(line) >= 3 and (line in previous or line in after)


def sigmoid(z: np.ndarray | float):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


class Gate:
    """P(good) = sigmoid(w · features); shown when it reaches the threshold."""

    def __init__(self, weights: np.ndarray, threshold: float, learning_rate: float = LEARNING_RATE) -> None:
        self.w = np.asarray(weights, np.float64).copy()
        self.threshold = threshold
        self.learning_rate = learning_rate
        self.updates = 0

    @classmethod
    def load(cls, path: Path = WEIGHTS, names: tuple[str, ...] = FEATURES, otherwise_show: bool = True) -> "Gate":
        """The fitted weights for the features ``names``; with none (or a file for other features) a gate that shows
        everything (``otherwise_show``) or nothing."""
        try:
            data = json.loads(path.read_text())
            if tuple(data["features"]) != names:
                raise ValueError("the file was fitted for other features")
            return cls(np.array([data["weights"][f] for f in names]), float(data["threshold"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("gate weights %s not usable (%s): %s", path, exc, "showing every suggestion" if otherwise_show else "showing none")
            w = np.zeros(len(names))
            w[0] = 10.0 if otherwise_show else -10.0
            return cls(w, 0.5)

    @staticmethod
    def save(path: Path, about: str, names: tuple[str, ...], weights: np.ndarray, threshold: float, **extra) -> None:
        """Write fitted weights in the form :meth:`load` reads (``extra``: figures kept beside them)."""
        data = {"about": about, "features": list(names),
                "weights": {f: round(float(v), 5) for f, v in zip(names, weights)},
                "threshold": round(threshold, 4), **extra}
        path.write_text(json.dumps(data, indent=1) + "\n")

    def score(self, x: np.ndarray) -> float:
        return float(sigmoid(self.w @ x))

    def shows(self, x: np.ndarray, threshold: float | None = None) -> bool:
        return self.score(x) >= (self.threshold if threshold is None else threshold)

    def learn(self, x: np.ndarray, good: bool) -> None:
        """One gradient step of the log-loss towards this user's outcome (accepted or not)."""
        self.w += self.learning_rate * ((1.0 if good else 0.0) - self.score(x)) * x
        self.updates += 1


def fit(X: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 50) -> np.ndarray:
    """Logistic regression by Newton's method with an L2 penalty (not on the bias)."""
    n, d = X.shape
    w = np.zeros(d)
    penalty = np.full(d, l2)
    penalty[0] = 0.0
    for _ in range(steps):
        p = sigmoid(X @ w)
        grad = X.T @ (p - y) / n + penalty * w
        hess = (X.T * (p * (1 - p))) @ X / n + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w
