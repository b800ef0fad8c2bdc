"""bench/fit_gate.py's pieces that decide the shipped gate: the threshold read off held-out scores, when a streamed
answer is whole enough to score, and the features it computes itself for outcomes recorded before they existed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import fit_gate  # noqa: E402
from quality_cases import Case  # noqa: E402

from sparkls.server import gate  # noqa: E402


def test_calibrate_keeps_the_hidden_exact_answers_within_the_bound():
    rng = np.random.default_rng(0)
    n = 600
    y = (rng.random(n) < 0.2).astype(float)
    scores = np.clip(0.2 + 0.25 * (y - 0.2) + rng.normal(0, 0.15, (4, n)), 0, 1)  # good ones score higher, noisily
    th, precision, loss, shown = fit_gate.calibrate(scores, y, n, max_loss=0.03, z=1.0)
    hidden = np.sum((y == 1) & (scores < th)) / 4
    assert loss == pytest.approx(hidden / n) and loss + np.sqrt(hidden) / n <= 0.03
    assert precision > y.mean() + 0.05 and 0 < shown < 1
    strict = fit_gate.calibrate(scores, y, n, max_loss=0.03, z=3.0)
    assert strict[0] <= th and strict[2] <= loss  # a wider margin hides fewer
    assert fit_gate.calibrate(scores, y, n, max_loss=0.0)[0] == 0.0  # no loss allowed: show everything


def test_an_answer_is_scored_once_its_first_line_is_whole():
    assert not fit_gate._first_line_whole("line", "x + 1")
    assert fit_gate._first_line_whole("line", "x + 1\n    y")
    assert not fit_gate._first_line_whole("next", "\n    return")  # the line break opens the answer's line
    assert fit_gate._first_line_whole("next", "\n    return x\n")
    assert fit_gate._first_line_whole("block", "\n")  # an empty first line: wrong whatever follows


def test_features_missing_from_an_outcome_are_computed_as_the_server_would():
    text = "def f(a):\n    return a + 1\n\ndef g(a):\n    return a + 2\n"
    cut = text.rindex("a + 2")
    case = Case("line", "pkg", Path("."), Path("m.py"), text[:cut], text[text.index("\n", cut):], "a + 2")
    s = fit_gate._situation(case, "a + 1")
    assert (s.prefix_line, s.suffix_line, s.previous_line) == ("    return ", "", "def g(a):")
    assert s.elsewhere == "def f(a):\n    return a + 1\n\ndef g(a):\n\n"  # the cursor's line left out
    reported = {f: 0.5 for f in gate.FEATURES if f != "seen_elsewhere"}
    x = dict(zip(gate.FEATURES, fit_gate.Outcome("a + 1", "a + 1", reported, 1.0).vector(case)))
    assert x["seen_elsewhere"] == 2  # " return a + 1" and "(a):\n    return a + 1" are in f; 32 characters reach "g"
    assert x["mean_logprob"] == 0.5  # what the server reported stays
