"""Next-edit suggestions on real code SmolLM2 has never seen, typed keystroke by keystroke through `sparkls serve`.

    .venv/bin/python bench/next_edit.py [--per-kind 40] [--seed 0] [--show] [--rewrite] [--split all|tune|test]
    .venv/bin/python bench/next_edit.py --fit-rewrite [--kinds tail,similar,plain] [--offers FILE] [--write]   # the rewrites' gate, on TUNE

Edit sequences are generated at bench time from the Python files of the packages of bench/unseen.py (fetched by pip
into a cache outside the clone; nothing of theirs is committed):

- **rename**: a local variable or parameter of a function, renamed at its first use; the follow-ups are its other
  uses in that function (found with `tokenize`: code only, not attributes or keyword-argument names);
- **argument**: `, flag=True` added to the first of three or more calls of one function in a file (found with
  `ast`); the follow-ups are the same argument added to the other calls;
- **similar**: a literal shared by three or more lines that start alike (the same text before the first `(`) within
  30 lines, changed on one of them; the follow-ups are the same change on the others;
- **tail**: a suffix (`.copy()`, ` or None`, `  # noqa`) added at the end of one of three or more consecutive
  lines that start alike (the same indentation and first name) and end in a name or bracket (the first, and in a
  group of four or more another with two or more below it); the follow-ups are the same suffix on the lines below. The rule-based kinds
  stop at a change at a line's end: this is what the model's rewrite (server/rewrite.py) is for;
- **plain** (no follow-up): a literal that occurs once in the file changed, a new statement line inserted, one use of
  a variable pointed at another existing name.

Each edit is typed key by key (`didChange` per keystroke, a selected word replaced by its first letter, as VS Code
does); then the client asks `textDocument/copilotInlineEdit` and plays Tab-Tab: it applies the first suggested edit
while it is one of the expected follow-ups and asks again, and stops at the first that is not (a false suggestion).
Reported per kind: the share of follow-up edits predicted exactly, false suggestions per 100 edits, and the latency
from the last keystroke to the answer (p50/p90). For information, the share of intermediate keystrokes after which
a suggestion was offered (a debounced editor asks only when typing pauses).

With `--rewrite` the sequences are played twice: by the n-gram core (the rule-based kinds alone, as without the
model) and by the neural core with its rewrites on; the second table adds what the rewrites did on their own
(suggestions whose id starts with "r"): follow-ups they predicted, false ones per 100 edits, and the latency of the
answers the model drafted (sequences where the rule-based kinds had nothing after the last keystroke). There the
editor's way of asking is played: the intermediate keystrokes' requests are not awaited (the next keystroke cancels
them, as typing on does), and the last request is sent once they are answered, as an editor asks after a pause in
typing; its latency is from that request to its answer (sent right after the keystroke instead, it would also count
the server working through the queued keystrokes and requests: about 100 ms more with either core, measured). `--fit-rewrite` plays the TUNE packages' sequences with every rewrite shown, fits the
rewrites' gate on what was offered (good: an expected follow-up) and chooses its threshold; `--write` stores it in
server/rewrite_gate.json.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import io
import json
import keyword
import random
import re
import statistics
import sys
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import unseen  # noqa: E402
from editor import start_server, stop_server  # noqa: E402

from sparkls.server import rewrite  # noqa: E402

FLAG = "flag=True"


@dataclass
class Edit:
    start: int
    end: int
    new: str


@dataclass
class Sequence:
    kind: str
    path: Path
    text: str
    edit: Edit  # what the user types (keystroke by keystroke)
    follow: list[Edit] = field(default_factory=list)  # expected follow-ups, in the text after the user's edit


# --- generating sequences ---------------------------------------------------------------------


def _offsets(text: str) -> list[int]:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _tokens(text: str):
    try:
        return list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []


def _after(text: str, edit: Edit, edits: list[Edit]) -> list[Edit]:
    """``edits`` (in ``text``) moved to the text after ``edit``."""
    delta = len(edit.new) - (edit.end - edit.start)
    return [Edit(e.start + delta, e.end + delta, e.new) if e.start >= edit.end else e for e in edits]


def renames(path: Path, text: str, tree: ast.AST, rng: random.Random) -> list[Sequence]:
    starts = _offsets(text)
    toks = _tokens(text)
    out = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        names = {a.arg for a in fn.args.args + fn.args.kwonlyargs if a.arg not in ("self", "cls")}
        names |= {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        nested = [n for n in ast.walk(fn) if n is not fn and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef))]
        if nested:
            continue  # scopes inside scopes: not this bench's business
        for name in sorted(names):
            uses = []
            depth = 0
            for i, t in enumerate(toks):
                if t.type == tokenize.OP and t.string in "([{":
                    depth += 1
                elif t.type == tokenize.OP and t.string in ")]}":
                    depth -= 1
                if t.type != tokenize.NAME or t.string != name or not (fn.lineno <= t.start[0] <= fn.end_lineno):
                    continue
                prev = toks[i - 1].string if i else ""
                nxt = toks[i + 1].string if i + 1 < len(toks) else ""
                if prev == "." or (nxt == "=" and depth > 0 and prev in ("(", ",")):
                    continue  # an attribute, or a keyword argument's name
                uses.append(starts[t.start[0] - 1] + t.start[1])
            if len(uses) < 2:
                continue
            new = f"{name}_v2"
            if re.search(r"\b" + re.escape(new) + r"\b", text):
                continue
            first = Edit(uses[0], uses[0] + len(name), new)
            follow = _after(text, first, [Edit(u, u + len(name), new) for u in uses[1:]])
            out.append(Sequence("rename", path, text, first, follow))
    rng.shuffle(out)
    return out[:3]


def arguments(path: Path, text: str, tree: ast.AST, rng: random.Random) -> list[Sequence]:
    starts = _offsets(text)
    calls: dict[str, list[ast.Call]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
            calls.setdefault(ast.get_source_segment(text, node.func) or "", []).append(node)
    out = []
    for callee, nodes in sorted(calls.items()):
        if not callee or "\n" in callee or len(nodes) < 3 or "(" in callee:
            continue
        if any(isinstance(a, ast.Starred) for n in nodes for a in n.args) or any(
            k.arg in ("flag", None) for n in nodes for k in n.keywords
        ):
            continue  # *args, **kwargs or a flag already: where the argument goes is a matter of taste
        edits = []
        for node in sorted(nodes, key=lambda n: (n.lineno, n.col_offset)):
            close = starts[node.end_lineno - 1] + node.end_col_offset - 1
            if text[close] != ")":
                break
            inside = text[starts[node.func.end_lineno - 1] + node.func.end_col_offset + 1 : close]
            tail = inside.rstrip()
            at = close - (len(inside) - len(tail))
            if not tail.strip():
                edits.append(Edit(at, at, FLAG))
            elif tail.endswith(","):
                edits.append(Edit(at, at, f" {FLAG},"))
            else:
                edits.append(Edit(at, at, f", {FLAG}"))
        if len(edits) != len(nodes):
            continue
        first = edits[0]
        out.append(Sequence("argument", path, text, first, _after(text, first, edits[1:])))
    rng.shuffle(out)
    return out[:3]


_LITERAL = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?|\"[A-Za-z_\-]{2,20}\"|'[A-Za-z_\-]{2,20}')(?![\w.])")


def _changed(lit: str) -> str:
    if lit[0] in "\"'":
        return lit[0] + lit[1:-1] + "_x" + lit[0]
    return str(int(float(lit)) + 7) if "." not in lit else lit + "5"


def similar_lines(path: Path, text: str, rng: random.Random) -> list[Sequence]:
    lines = text.split("\n")
    starts = _offsets(text)
    out = []
    for i, line in enumerate(lines):
        head = line.strip().split("(", 1)[0]
        if "(" not in line or len(head) < 3 or line.strip().startswith(("#", "def ", "class ")):
            continue
        for m in _LITERAL.finditer(line):
            lit = m.group(1)
            group = [j for j in range(max(0, i - 30), min(len(lines), i + 31)) if j != i
                     if lines[j].strip().split("(", 1)[0] == head and re.search(r"(?<![\w.])" + re.escape(lit) + r"(?![\w.])", lines[j])]
            if len(group) < 2:
                continue
            new = _changed(lit)
            first = Edit(starts[i] + m.start(1), starts[i] + m.end(1), new)
            follow = []
            for j in group:
                mm = re.search(r"(?<![\w.])" + re.escape(lit) + r"(?![\w.])", lines[j])
                follow.append(Edit(starts[j] + mm.start(), starts[j] + mm.end(), new))
            out.append(Sequence("similar", path, text, first, _after(text, first, follow)))
            break
    rng.shuffle(out)
    return out[:2]


TAILS = (".copy()", " or None", "  # noqa")
_FIRST = re.compile(r"[A-Za-z_][\w.]*")


def tails(path: Path, text: str, rng: random.Random) -> list[Sequence]:
    lines = text.split("\n")
    starts = _offsets(text)

    def key(line: str) -> tuple | None:
        """Lines alike for this kind: the same indentation and first name (not a keyword), ending in a name or bracket."""
        m = _FIRST.match(line.strip())
        if m is None or keyword.iskeyword(m.group().split(".")[0]) or "#" in line or not re.search(r"[\w)\]]\Z", line.rstrip()):
            return None
        return len(line) - len(line.lstrip()), m.group()

    out = []
    i = 0
    while i < len(lines):
        k = key(lines[i])
        j = i + 1
        while k is not None and j < len(lines) and key(lines[j]) == k:
            j += 1
        # An edit at the group's first line, and in a group of four or more, at another with two or more below it.
        for at in ([i] + ([rng.randrange(i + 1, j - 2)] if j - i >= 4 else [])) if k is not None and j - i >= 3 else []:
            suffix = rng.choice(TAILS)
            ends = [starts[n] + len(lines[n].rstrip()) for n in range(at, j)]
            first = Edit(ends[0], ends[0], suffix)
            out.append(Sequence("tail", path, text, first, _after(text, first, [Edit(e, e, suffix) for e in ends[1:]])))
        i = max(j, i + 1)
    rng.shuffle(out)
    return out[:4]


def plain(path: Path, text: str, tree: ast.AST, rng: random.Random) -> list[Sequence]:
    out = []
    singles = [m for m in _LITERAL.finditer(text) if text.count(m.group(1)) == 1]
    if singles:
        m = rng.choice(singles)
        out.append(Sequence("plain", path, text, Edit(m.start(1), m.end(1), _changed(m.group(1)))))
    starts = _offsets(text)
    bodies = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and len(n.body) > 1]
    if bodies:
        fn = rng.choice(bodies)
        stmt = fn.body[-1]
        at = starts[stmt.lineno - 1]
        indent = " " * stmt.col_offset
        out.append(Sequence("plain", path, text, Edit(at, at, f"{indent}checked = True\n")))
        names = sorted({n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and not keyword.iskeyword(n.id)})
        loads = [n for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
        if len(names) >= 2 and loads:
            use = rng.choice(loads)
            other = next(n for n in names if n != use.id)
            at = starts[use.lineno - 1] + use.col_offset
            out.append(Sequence("plain", path, text, Edit(at, at + len(use.id), other)))
    return out


def make_sequences(per_kind: int, seed: int, packages=unseen.PACKAGES) -> list[Sequence]:
    rng = random.Random(seed)
    found: dict[str, list[Sequence]] = {}
    for pkg in packages:
        for path in unseen.sources(pkg):
            text = path.read_text(encoding="utf-8", errors="replace")
            if "\r" in text or "\t" in text or len(text) > 60_000:
                continue
            try:
                tree = ast.parse(text)
            except SyntaxError:
                continue
            for seq in renames(path, text, tree, rng) + arguments(path, text, tree, rng) + similar_lines(path, text, rng) + plain(path, text, tree, rng):
                found.setdefault(seq.kind, []).append(seq)
            for seq in tails(path, text, random.Random(f"{seed}:{path.name}")):  # its own generator: the other kinds' draws stay as they were
                found.setdefault(seq.kind, []).append(seq)
    chosen = []
    for kind, seqs in sorted(found.items()):
        rng.shuffle(seqs)
        chosen += seqs[:per_kind]
    return chosen


# --- typing them through the server -----------------------------------------------------------


def keystrokes(text: str, edit: Edit) -> list[Edit]:
    """The edit as an editor sends it: a selection replaced by the first typed letter, then one letter at a time."""
    if edit.start == edit.end:
        return [Edit(edit.start + i, edit.start + i, ch) for i, ch in enumerate(edit.new)]
    keys = [Edit(edit.start, edit.end, edit.new[:1])]
    keys += [Edit(edit.start + i, edit.start + i, ch) for i, ch in enumerate(edit.new) if i > 0]
    return keys


def _position(text: str, offset: int) -> dict:
    line = text.count("\n", 0, offset)
    return {"line": line, "character": offset - (text.rfind("\n", 0, offset) + 1)}


def _apply(text: str, e: Edit) -> str:
    return text[: e.start] + e.new + text[e.end :]


@dataclass
class Result:
    kind: str
    expected: int
    predicted: int = 0
    false: int = 0
    latency_ms: float = 0.0
    mid_keys: int = 0
    mid_offered: int = 0
    note: str = ""  # the false suggestion, or the first follow-up missed
    rewrite_predicted: int = 0  # of ``predicted``, those the model's rewrites suggested
    rewrite_false: int = 0
    offers: list = field(default_factory=list)  # (features, good) of each rewrite offered (for --fit-rewrite)


def _is_rewrite(e) -> bool:
    return e.command.arguments[0].id.startswith("r")  # the model's rewrites' ids (docs/protocol.md)


async def play(client, seq: Sequence, n: int, rewrites: bool = False) -> Result:
    from lsprotocol import types

    uri = seq.path.with_name(f"_next_edit_{n}_{seq.path.name}").as_uri()
    await client.open(uri, seq.text)
    text, version = seq.text, 1
    res = Result(seq.kind, len(seq.follow))

    def ask(cursor: int):
        """The request for the text as it is now (sent at once), as an awaitable of its edits."""
        params = {"textDocument": {"uri": uri, "version": version}, "position": _position(text, cursor)}
        sent = client.protocol.send_request_async("textDocument/copilotInlineEdit", params)

        async def edits() -> list:
            return (await sent).edits

        return edits()

    async def features(e) -> list | None:
        info = await client.protocol.send_request_async("sparkls/suggestionInfo", {"streamId": e.command.arguments[0].id})
        return None if info is None or info.features is None else [getattr(info.features, f) for f in rewrite.FEATURES]

    def change(e: Edit) -> None:
        nonlocal text, version
        version += 1
        rng = types.Range(types.Position(**_position(text, e.start)), types.Position(**_position(text, e.end)))
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [types.TextDocumentContentChangePartial(range=rng, text=e.new)]))
        text = _apply(text, e)

    keys = keystrokes(text, seq.edit)
    pending = []
    for i, key in enumerate(keys):
        t = time.perf_counter()
        change(key)
        last = i == len(keys) - 1
        if rewrites and not last:  # asked while typing goes on: the next keystroke cancels it
            pending.append(asyncio.ensure_future(ask(key.start + len(key.new))))
            continue
        if rewrites:
            for answer in await asyncio.gather(*pending):
                res.mid_keys += 1
                res.mid_offered += bool(answer)
            t = time.perf_counter()  # an editor asks after a pause in typing: the keystrokes are served by then
        if last:
            edits = await ask(key.start + len(key.new))
            res.latency_ms = (time.perf_counter() - t) * 1000
        else:
            res.mid_keys += 1
            res.mid_offered += bool(await ask(key.start + len(key.new)))
    remaining = list(seq.follow)
    while edits:
        e = edits[0]
        offsets = _offsets(text)
        s = offsets[e.range.start.line] + e.range.start.character
        end = offsets[e.range.end.line] + e.range.end.character
        got = Edit(s, end, e.text)
        result = _apply(text, got)
        match = next((r for r in remaining if _apply(text, r) == result), None)
        if _is_rewrite(e):
            res.offers.append((await features(e), match is not None))
        if match is None:
            res.false += 1  # the user would reject it here
            res.rewrite_false += _is_rewrite(e)
            line = text.count("\n", 0, s)
            res.note = f"false at line {line + 1}: {text[s:end]!r}->{got.new!r} in {text.split(chr(10))[line].strip()[:70]!r}"
            break
        res.predicted += 1
        res.rewrite_predicted += _is_rewrite(e)
        remaining.remove(match)
        remaining = _after(text, got, remaining)
        change(got)
        edits = await ask(s + len(got.new))
    if remaining and not res.note:
        r = remaining[0]
        line = text.count("\n", 0, r.start)
        res.note = f"missed line {line + 1}: {text.split(chr(10))[line].strip()[:70]!r}"
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    return res


async def run(seqs: list[Sequence], rewrites: bool = False, threshold: float | None = None) -> list[Result]:
    """Play ``seqs`` through one server: the n-gram core, or the neural core with its rewrites (at ``threshold``)."""
    # No prefill on open: a user edits a document some time after opening it, when its prefill is long done; here
    # typing starts at once, and a prefill under way would hold the decode threads (and the interpreter) meanwhile.
    options = {"index": {"enabled": False}, "model": {"engine": "neural" if rewrites else "ngram", "warm_on_open": False}}
    if threshold is not None:
        options["gate"] = {"rewrite_threshold": threshold}
    client, _ = await start_server(options=options)
    try:
        if rewrites:
            ready = asyncio.Event()
            client.feature("sparkls/status")(lambda p: ready.set() if p.engine == "neural" else None)
            await asyncio.wait_for(ready.wait(), 600)
        return [await play(client, s, n, rewrites) for n, s in enumerate(seqs)]
    finally:
        await stop_server(client)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def table(seqs: list[Sequence], results: list[Result], title: str) -> None:
    print(title)
    print(f"{'kind':<9} {'edits':>5} {'follow-ups':>10} {'predicted':>9} {'false/100':>9} {'p50 ms':>7} {'p90 ms':>7} {'mid-edit offers':>15}")
    groups = {k: [r for r in results if r.kind == k] for k in ("rename", "argument", "similar", "tail", "plain")}
    groups["all"] = results
    for kind, rows in groups.items():
        if not rows:
            continue
        expected = sum(r.expected for r in rows)
        predicted = sum(r.predicted for r in rows)
        lat = [r.latency_ms for r in rows]
        mid = sum(r.mid_keys for r in rows)
        share = f"{predicted / expected:9.1%}" if expected else f"{'-':>9}"
        print(f"{kind:<9} {len(rows):>5} {expected:>10} {share} {100 * sum(r.false for r in rows) / len(rows):>9.1f} "
              f"{statistics.median(lat):>7.1f} {_pct(lat, 0.9):>7.1f} "
              f"{(sum(r.mid_offered for r in rows) / mid if mid else 0):>15.1%}")


def rewrite_table(rules: list[Result], both: list[Result]) -> None:
    """What the rewrites did on their own, in the run with them (``both``); ``rules``: the same sequences without."""
    print("the model's rewrites on their own (suggestions with an \"r\" id):")
    print(f"{'kind':<9} {'edits':>5} {'follow-ups':>10} {'predicted':>9} {'false/100':>9} {'drafted':>7} {'p50 ms':>7} {'p90 ms':>7}")
    for kind in ("rename", "argument", "similar", "tail", "plain", "all"):
        pairs = [(a, b) for a, b in zip(rules, both) if kind in (a.kind, "all")]
        if not pairs:
            continue
        expected = sum(b.expected for _, b in pairs)
        # Drafted: the rule-based kinds had nothing after the last keystroke (the model's turn); latency of those answers.
        lat = [b.latency_ms for a, b in pairs if not a.predicted and not a.false]
        share = f"{sum(b.rewrite_predicted for _, b in pairs) / expected:9.1%}" if expected else f"{'-':>9}"
        print(f"{kind:<9} {len(pairs):>5} {expected:>10} {share} {100 * sum(b.rewrite_false for _, b in pairs) / len(pairs):>9.1f} "
              f"{len(lat):>7} {(statistics.median(lat) if lat else float('nan')):>7.0f} {_pct(lat, 0.9):>7.0f}")


def fit_rewrite_gate(rows: list[tuple], write: bool) -> None:
    """The rewrites' gate (server/rewrite.py FEATURES) fitted on the rewrites offered (features, good) in runs with
    every rewrite shown."""
    import numpy as np

    from sparkls.server import gate

    if len(rows) < 5:
        print(f"only {len(rows)} rewrites offered: nothing to fit")
        return
    X = np.array([f for f, _ in rows], np.float64)
    y = np.array([float(g) for _, g in rows])
    w = gate.fit(X, y, l2=0.05)
    scores = gate.sigmoid(X @ w)
    # The threshold: the highest that keeps 90 % of the good rewrites (a missed repeat costs the user a few
    # keystrokes; a wrong one shown costs a look and a rejection).
    good_scores = np.sort(scores[y == 1])
    threshold = float(good_scores[int(0.1 * len(good_scores))]) if len(good_scores) else 1.0
    shown = scores >= threshold
    print(f"fitted on {len(rows)} rewrites offered on TUNE ({y.mean():.1%} good); threshold {threshold:.3f}: "
          f"shown {shown.mean():.1%}, precision {y[shown].mean() if shown.any() else 0:.1%} (all: {y.mean():.1%}), "
          f"good kept {np.sum(shown & (y == 1)) / max(1, np.sum(y)):.1%}")
    for name, value in sorted(zip(rewrite.FEATURES, w), key=lambda kv: -abs(kv[1])):
        print(f"  {name:<14} {value:+.3f}")
    if write:
        gate.Gate.save(rewrite.WEIGHTS, "server/rewrite.py's gate, fitted by bench/next_edit.py --fit-rewrite on the TUNE "
                       "packages of bench/unseen.py", rewrite.FEATURES, w, threshold,
                       tune={"rewrites": len(rows), "good": round(float(y.mean()), 4)})
        print(f"wrote {rewrite.WEIGHTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("all", "tune", "test"), default="all", help="the packages of bench/unseen.py")
    parser.add_argument("--show", action="store_true", help="print each sequence's outcome")
    parser.add_argument("--rewrite", action="store_true", help="also play them with the neural core's rewrites")
    parser.add_argument("--fit-rewrite", action="store_true", help="fit the rewrites' gate on the TUNE packages")
    parser.add_argument("--write", action="store_true", help="with --fit-rewrite: store it in server/rewrite_gate.json")
    parser.add_argument("--kinds", help="only these kinds of sequence, comma-separated (e.g. tail,plain,similar: where "
                        "the rule-based kinds leave the model its turn)")
    parser.add_argument("--offers", type=Path, help="with --fit-rewrite: also append each rewrite offered (features, "
                        "good) to this JSON-lines file, and fit on all of it")
    args = parser.parse_args()
    packages = {"all": unseen.PACKAGES, "tune": unseen.TUNE, "test": unseen.TEST}["tune" if args.fit_rewrite else args.split]
    seqs = make_sequences(args.per_kind, args.seed, packages)
    if args.kinds:
        seqs = [s for s in seqs if s.kind in args.kinds.split(",")]
    print(f"{len(seqs)} edit sequences from {', '.join(p.name for p in packages)}")
    if args.fit_rewrite:
        offered = asyncio.run(run(seqs, rewrites=True, threshold=0.0))
        if args.show:
            for s, r in zip(seqs, offered):
                print(f"[{s.kind}] {s.path.name} {s.edit.new!r}: {r.rewrite_predicted} by the model, {r.rewrite_false} false, "
                      f"{r.latency_ms:.0f} ms  {r.note}  {[(g, [round(x, 2) for x in f or []]) for f, g in r.offers]}")
        rows = [(f, good) for r in offered for f, good in r.offers if f is not None]
        if args.offers:  # several runs (seeds, kinds) pooled: a rewrite is drafted after few edits
            with args.offers.open("a") as out:
                out.writelines(json.dumps({"features": [float(v) for v in f], "good": bool(g)}) + "\n" for f, g in rows)
            rows = [(r["features"], r["good"]) for r in map(json.loads, args.offers.read_text().splitlines())]
        fit_rewrite_gate(rows, args.write)
        return
    results = asyncio.run(run(seqs))
    both = asyncio.run(run(seqs, rewrites=True)) if args.rewrite else None
    if args.show:
        for s, r, b in zip(seqs, results, both or results):
            line = s.text.count("\n", 0, s.edit.start) + 1
            print(f"[{s.kind}] {s.path.name}:{line} {s.text[s.edit.start:s.edit.end]!r}->{s.edit.new!r}: "
                  f"{r.predicted}/{r.expected} predicted, {r.false} false, {r.latency_ms:.1f} ms  {r.note}")
            if both:
                print(f"    with rewrites: {b.predicted}/{b.expected} ({b.rewrite_predicted} by the model), {b.false} false "
                      f"({b.rewrite_false} by the model), {b.latency_ms:.0f} ms  {b.note}")
    table(seqs, results, "rule-based kinds (a)+(b) alone (n-gram core):")
    if both:
        table(seqs, both, "with the model's rewrites (c) (neural core):")
        rewrite_table(results, both)


if __name__ == "__main__":
    main()
