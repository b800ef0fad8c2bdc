"""The workspace as prompt context: imported names' definitions, similar chunks, and what is never read."""

from __future__ import annotations

from pathlib import Path

from sparkls.decode import workspace_context as wc
from sparkls.decode.copy_choice import strong
from sparkls.server.exclusions import Exclusions, compile_pattern, is_secret
from sparkls.server.workspace import WorkspaceContext

HELPERS = '''"""Helpers."""

RETRIES = 3


def small(a, b):
    return a + b


def large(path: str, *, limit: int = 10) -> list[str]:
    """Read at most ``limit`` lines.

    More prose here.
    """
    out = []
    with open(path) as f:
        for line in f:
            out.append(line)
            if len(out) >= limit:
                break
    return out


class Store:
    """Keeps rows."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.rows = []

    def add(self, row):
        self.rows.append(row)
        return len(self.rows)
'''


def test_imports_and_definitions() -> None:
    """Ensure imports are read from half-typed code and definitions are whole when small, else
    signature + first docstring line (a class with its constructor's signature)."""
    text = "from .helpers import (small,\n    large as big)\nimport pkg.store as st\nx = st.Store('a')\nif x.\n"
    found = wc.imports(text)
    assert wc.Import(".helpers", ("small", "large")) in found
    assert wc.Import("pkg.store", ("Store",)) in found
    defs = wc.definitions(HELPERS)
    assert defs["small"] == "def small(a, b):\n    return a + b"
    assert defs["large"].splitlines() == [
        "def large(path: str, *, limit: int = 10) -> list[str]:", '    """Read at most ``limit`` lines."""', "    ..."]
    assert "def __init__(self, path: str) -> None:" in defs["Store"] and "def add" not in defs["Store"]
    assert defs["RETRIES"] == "RETRIES = 3"
    assert wc.definitions("def broken(:\n") == {}


def _workspace(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text(HELPERS)
    (pkg / "secret_sauce.py").write_text("SAUCE = 'ketchup'\n")
    (tmp_path / ".env").write_text("API_KEY=sk-live-123\n")
    (tmp_path / ".gitignore").write_text("pkg/secret_*.py\n!pkg/secret_ok.py\nbuild/\n")
    (pkg / "secret_ok.py").write_text("OK = 1\n")
    return tmp_path


def test_definitions_of_imported_names_come_first_in_budget(tmp_path) -> None:
    """Ensure a completion's context holds the definitions of the names its document imports,
    resolved relatively and absolutely, within the budget."""
    root = _workspace(tmp_path)
    doc = root / "pkg" / "main.py"
    prefix = "from .helpers import small, Store\nfrom pkg.helpers import large\n\ns = Store('x')\nn = small(1, "
    ctx = WorkspaceContext(root, Exclusions(root))
    got = ctx.snippets(doc.as_uri(), prefix, {}, 2000)
    text = "\n".join(s.text for s in got)
    assert "def small(a, b):" in text and "class Store:" in text and "def large(" in text
    assert [s.path for s in got if "small" in s.text] == ["pkg/helpers.py"]
    tight = ctx.snippets(doc.as_uri(), prefix, {}, 80)
    assert sum(len(s.text) for s in tight) <= 80 * 0.6 and "small" in tight[-1].text, "nearest use first"


def test_secrets_gitignored_and_excluded_files_never_go_into_context(tmp_path) -> None:
    """Ensure .env-like files, gitignored files and `exclude` globs are excluded, with gitignore's
    negation and folder rules, and a workspace context never lists them."""
    root = _workspace(tmp_path)
    ex = Exclusions(root, ["**/helpers.py"])
    assert is_secret(root / ".env") and is_secret("prod.env") and is_secret("id_rsa") and not is_secret("env.py")
    assert ex.excluded(root / "pkg" / "secret_sauce.py")
    assert not ex.excluded(root / "pkg" / "secret_ok.py")
    assert ex.excluded(root / "build" / "x.py") and ex.excluded(root / "pkg" / "helpers.py")
    assert not ex.excluded(root / "pkg" / "main.py")
    listed = {p.name for p in WorkspaceContext(root, ex).files()}
    assert listed == {"__init__.py", "secret_ok.py", ".gitignore"} - {".gitignore"}
    rx, negated = compile_pattern("/docs/*.md")
    assert rx.match("docs/a.md") and not rx.match("x/docs/a.md") and not negated
    assert compile_pattern("# comment") is None and compile_pattern("") is None


def test_similar_chunks_of_other_files(tmp_path) -> None:
    """Ensure the chunks most like the lines before the cursor come from other files, open
    documents' texts replacing their files', and never from the document itself."""
    root = _workspace(tmp_path)
    doc = root / "pkg" / "main.py"
    other = (root / "pkg" / "other.py")
    other.write_text("def unrelated():\n    pass\n")
    prefix = "def reader(path, limit):\n    out = []\n    with open(path) as f:\n        for line in f:\n"
    ctx = WorkspaceContext(root, Exclusions(root))
    opened = {other.as_uri(): "def mine(path, limit):\n    out = []\n    with open(path) as f:\n        for line in f:\n            out.append(line)\n"}
    got = ctx.snippets(doc.as_uri(), prefix, opened, 3000)
    paths = [s.path for s in got]
    assert "pkg/other.py" in paths and "pkg/helpers.py" in paths and "pkg/main.py" not in paths
    assert "def mine" in next(s.text for s in got if s.path == "pkg/other.py")


def test_copy_evidence_rule() -> None:
    """Ensure a copy wins only when every token followed a long enough context often enough."""
    assert strong([(0, 0, 0), (8, 3, 3), (6, 2, 2)])
    assert not strong([(8, 3, 3), (5, 5, 5)]), "one short context"
    assert not strong([(6, 1, 4), (6, 1, 1)]), "an uncertain continuation"
    assert not strong([(0, 0, 0)]), "healing alone is no evidence"


class _Fake:
    def __init__(self, answer: str, evidence=()) -> None:
        self.answer, self.evidence, self.calls = answer, list(evidence), 0
        self.name, self.released = "fake", []

    def release(self, uri):
        self.released.append(uri)

    def copy(self, ctx, cancelled):
        self.calls += 1
        return self.answer, self.evidence

    def complete(self, ctx, cancelled):
        self.calls += 1
        if self.answer:  # engines yield only text to show
            yield self.answer


def test_copy_choice_answers_with_a_strong_copy_else_the_model() -> None:
    """Ensure a copy backed by long, certain contexts answers without the model; a weak one, or
    the `copy` setting off, leaves the answer to the model; the rest is the model's engine."""
    from sparkls.decode.copy_choice import CopyChoice
    from sparkls.decode.engine import CompletionContext

    ctx = CompletionContext("x = ", "")
    neural = _Fake("model()")
    chooser = CopyChoice(neural, _Fake("copied()", [(8, 4, 4), (6, 2, 2)]))
    assert list(chooser.complete(ctx, lambda: False)) == ["copied()"] and neural.calls == 0
    chooser.release("file:///x.py")
    assert chooser.name == "fake" and neural.released == ["file:///x.py"]
    assert list(CopyChoice(neural, _Fake("copied()", [(2, 1, 3)])).complete(ctx, lambda: False)) == ["model()"]
    off = CompletionContext("x = ", "", copy=False)
    assert list(chooser.complete(off, lambda: False)) == ["model()"]
    silent = _Fake("")
    assert list(CopyChoice(silent, _Fake("weak()", [(2, 1, 3)])).complete(ctx, lambda: False)) == ["weak()"], \
        "a model with nothing to say leaves the answer to the copy"
    assert list(CopyChoice(silent, _Fake("weak()", [(2, 1, 3)])).complete(off, lambda: False)) == []


def test_copy_choice_leaves_a_blank_line_to_the_model() -> None:
    """Ensure a strong copy does not replace the model's line on a blank, indented line (a block's
    next statement, where copies were measured worse than the model), yet still answers there when
    the model has nothing to show; after code on the line, it still answers."""
    from sparkls.decode.copy_choice import CopyChoice
    from sparkls.decode.engine import CompletionContext

    block = CompletionContext("def f(x):\n    y = x\n    ", "\n    return y\n")
    neural = _Fake("z = y")
    copier = _Fake("copied()", [(8, 4, 4), (6, 2, 2)])
    assert list(CopyChoice(neural, copier).complete(block, lambda: False)) == ["z = y"]
    assert list(CopyChoice(_Fake(""), copier).complete(block, lambda: False)) == ["copied()"]
    after_code = CompletionContext("def f(x):\n    y = ", "\n    return y\n")
    assert list(CopyChoice(neural, copier).complete(after_code, lambda: False)) == ["copied()"]


def test_copy_choice_never_offers_a_next_line_that_does_not_fit_under_its_header() -> None:
    """Ensure a copied next line after a block header is offered only when indented one step of the
    file's indentation under it: a line copied with another place's deeper indentation, or one not
    indented under the header, neither replaces the model's line nor answers for a silent model."""
    from sparkls.decode.copy_choice import CopyChoice
    from sparkls.decode.engine import CompletionContext

    prefix = "class A:\n    def f(self, x):\n        if x:"
    ctx = CompletionContext(prefix, "\n        return x\n")
    strong_evidence = [(8, 4, 4), (6, 2, 2)]
    neural = _Fake("\n            y = x")
    too_deep = _Fake("\n                    y = copied(x)", strong_evidence)
    assert list(CopyChoice(neural, too_deep).complete(ctx, lambda: False)) == ["\n            y = x"]
    assert list(CopyChoice(_Fake(""), too_deep).complete(ctx, lambda: False)) == []
    not_under = _Fake("\n        y = copied(x)", strong_evidence)
    assert list(CopyChoice(_Fake(""), not_under).complete(ctx, lambda: False)) == []
    fits = _Fake("\n            y = copied(x)", strong_evidence)
    assert list(CopyChoice(neural, fits).complete(ctx, lambda: False)) == ["\n            y = copied(x)"]
