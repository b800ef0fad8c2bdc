"""Next-edit suggestions on real code SmolLM2 has never seen, typed keystroke by keystroke through `sparkls serve`.

    .venv/bin/python bench/next_edit.py [--per-kind 40] [--seed 0] [--show]

Edit sequences are generated at bench time from the Python files of the packages of bench/unseen.py (fetched by pip
into a cache outside the clone; nothing of theirs is committed):

- **rename**: a local variable or parameter of a function, renamed at its first use; the follow-ups are its other
  uses in that function (found with `tokenize`: code only, not attributes or keyword-argument names);
- **argument**: `, flag=True` added to the first of three or more calls of one function in a file (found with
  `ast`); the follow-ups are the same argument added to the other calls;
- **similar**: a literal shared by three or more lines that start alike (the same text before the first `(`) within
  30 lines, changed on one of them; the follow-ups are the same change on the others;
- **plain** (no follow-up): a literal that occurs once in the file changed, a new statement line inserted, one use of
  a variable pointed at another existing name.

Each edit is typed key by key (`didChange` per keystroke, a selected word replaced by its first letter, as VS Code
does); then the client asks `textDocument/copilotInlineEdit` and plays Tab-Tab: it applies the first suggested edit
while it is one of the expected follow-ups and asks again, and stops at the first that is not (a false suggestion).
Reported per kind: the share of follow-up edits predicted exactly, false suggestions per 100 edits, and the latency
from the last keystroke to the answer (p50/p90). For information, the share of intermediate keystrokes after which
a suggestion was offered (a debounced editor asks only when typing pauses).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import io
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


def make_sequences(per_kind: int, seed: int) -> list[Sequence]:
    rng = random.Random(seed)
    found: dict[str, list[Sequence]] = {}
    for pkg in unseen.PACKAGES:
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


async def play(client, seq: Sequence, n: int) -> Result:
    from lsprotocol import types

    uri = seq.path.with_name(f"_next_edit_{n}_{seq.path.name}").as_uri()
    await client.open(uri, seq.text)
    text, version = seq.text, 1
    res = Result(seq.kind, len(seq.follow))

    async def ask(cursor: int) -> list:
        params = {"textDocument": {"uri": uri, "version": version}, "position": _position(text, cursor)}
        return (await client.protocol.send_request_async("textDocument/copilotInlineEdit", params)).edits

    def change(e: Edit) -> None:
        nonlocal text, version
        version += 1
        rng = types.Range(types.Position(**_position(text, e.start)), types.Position(**_position(text, e.end)))
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [types.TextDocumentContentChangePartial(range=rng, text=e.new)]))
        text = _apply(text, e)

    keys = keystrokes(text, seq.edit)
    for i, key in enumerate(keys):
        t = time.perf_counter()
        change(key)
        edits = await ask(key.start + len(key.new))
        if i == len(keys) - 1:
            res.latency_ms = (time.perf_counter() - t) * 1000
        else:
            res.mid_keys += 1
            res.mid_offered += bool(edits)
    remaining = list(seq.follow)
    cursor = seq.edit.start + len(seq.edit.new)
    while edits:
        e = edits[0]
        offsets = _offsets(text)
        s = offsets[e.range.start.line] + e.range.start.character
        end = offsets[e.range.end.line] + e.range.end.character
        got = Edit(s, end, e.text)
        result = _apply(text, got)
        match = next((r for r in remaining if _apply(text, r) == result), None)
        if match is None:
            res.false += 1  # the user would reject it here
            line = text.count("\n", 0, s)
            res.note = f"false at line {line + 1}: {text[s:end]!r}->{got.new!r} in {text.split(chr(10))[line].strip()[:70]!r}"
            break
        res.predicted += 1
        remaining.remove(match)
        remaining = _after(text, got, remaining)
        change(got)
        cursor = s + len(got.new)
        edits = await ask(cursor)
    if remaining and not res.note:
        r = remaining[0]
        line = text.count("\n", 0, r.start)
        res.note = f"missed line {line + 1}: {text.split(chr(10))[line].strip()[:70]!r}"
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    return res


async def run(seqs: list[Sequence]) -> list[Result]:
    client, _ = await start_server(options={"index": {"enabled": False}, "model": {"engine": "ngram"}})
    try:
        return [await play(client, s, n) for n, s in enumerate(seqs)]
    finally:
        await stop_server(client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", action="store_true", help="print each sequence's outcome")
    args = parser.parse_args()
    seqs = make_sequences(args.per_kind, args.seed)
    print(f"{len(seqs)} edit sequences from {', '.join(p.name for p in unseen.PACKAGES)}")
    results = asyncio.run(run(seqs))
    if args.show:
        for s, r in zip(seqs, results):
            line = s.text.count("\n", 0, s.edit.start) + 1
            print(f"[{s.kind}] {s.path.name}:{line} {s.text[s.edit.start:s.edit.end]!r}->{s.edit.new!r}: "
                  f"{r.predicted}/{r.expected} predicted, {r.false} false, {r.latency_ms:.1f} ms  {r.note}")
    print(f"{'kind':<9} {'edits':>5} {'follow-ups':>10} {'predicted':>9} {'false/100':>9} {'p50 ms':>7} {'p90 ms':>7} {'mid-edit offers':>15}")
    groups = {k: [r for r in results if r.kind == k] for k in ("rename", "argument", "similar", "plain")}
    groups["all"] = results
    for kind, rows in groups.items():
        if not rows:
            continue
        expected = sum(r.expected for r in rows)
        predicted = sum(r.predicted for r in rows)
        lat = sorted(r.latency_ms for r in rows)
        mid = sum(r.mid_keys for r in rows)
        share = f"{predicted / expected:9.1%}" if expected else f"{'-':>9}"
        print(f"{kind:<9} {len(rows):>5} {expected:>10} {share} {100 * sum(r.false for r in rows) / len(rows):>9.1f} "
              f"{statistics.median(lat):>7.1f} {lat[min(len(lat) - 1, int(0.9 * len(lat)))]:>7.1f} "
              f"{(sum(r.mid_offered for r in rows) / mid if mid else 0):>15.1%}")


if __name__ == "__main__":
    main()
