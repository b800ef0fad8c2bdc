"""The sparkls messages: docs/protocol.md's tables and examples, the Structs of server/messages.py and the VS Code
extension's TypeScript interfaces name the same fields, so none can drift from the others."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import pytest

from sparkls.server import messages as m

ROOT = Path(__file__).parent.parent
PROTOCOL = ROOT / "docs" / "protocol.md"
TS_SRC = ROOT / "editors" / "vscode" / "src"

# A table or example in docs/protocol.md is introduced by a caption line: "`name` role:" or "`name` `field` role:".
CAPTION = re.compile(r"^`(?P<name>[^`]+)`(?: `(?P<sub>[^`]+)`)? (?P<role>[a-z ]+):$")
DOCUMENTED = {
    ("experimental.sparkls", None, "client capability"): m.ClientCapabilities,
    ("experimental.sparkls", None, "server capability"): m.ServerCapabilities,
    ("sparkls/inlineCompletionStream", None, "params"): m.StreamNotification,
    ("sparkls.accept", None, "argument"): m.Accepted,
    ("textDocument/didShowCompletion", None, "params"): m.DidShowCompletion,
    ("textDocument/didPartiallyAcceptCompletion", None, "params"): m.DidPartiallyAcceptCompletion,
    ("sparkls/didDismiss", None, "params"): m.DidDismiss,
    ("sparkls/status", None, "params"): m.Status,
    ("sparkls/status", "suggestions", "values"): m.SuggestionCounts,
    ("sparkls/suggestionInfo", None, "params"): m.SuggestionInfoParams,
    ("sparkls/suggestionInfo", None, "result"): m.SuggestionInfo,
    ("textDocument/copilotInlineEdit", None, "params"): m.InlineEditParams,
    ("textDocument/copilotInlineEdit", None, "result"): m.InlineEditList,
    ("textDocument/copilotInlineEdit", "edits", "values"): m.InlineEdit,
    ("sparkls.acceptInlineEdit", None, "argument"): m.AcceptInlineEdit,
    ("textDocument/didShowInlineEdit", None, "params"): m.DidShowInlineEdit,
    ("sparkls.selectBackend", None, "result"): m.SelectedBackend,
    ("sparkls.listBackends", None, "result entries"): m.BackendInfo,
}
# Parts of the messages above that are LSP's own shapes (Position, Range, Command, ...) or shared bases.
BUILDING_BLOCKS = {m.Message, m.Position, m.Range, m.SuggestionRef, m.ItemCommand, m.ShownItem, m.VersionedDocument,
                   m.EditCommand, m.AcceptArguments}
# The TypeScript interfaces that restate a Struct carry its name.
MIRRORED = {"StreamNotification", "Status", "SuggestionCounts", "InlineEdit"}


def wire_fields(kind: type[m.Message]) -> set[str]:
    return set(kind.__struct_encode_fields__)


def sections() -> tuple[dict, dict]:
    """Tables (caption -> field names) and JSON examples (caption -> value) in docs/protocol.md."""
    tables, examples = {}, {}
    lines = PROTOCOL.read_text().splitlines()
    for i, line in enumerate(lines):
        match = CAPTION.match(line)
        if not match:
            continue
        role = match["role"]
        key = (match["name"], match["sub"], role.removesuffix(" example"))
        body = iter(lines[i + 1 :])
        first = next(ln for ln in body if ln.strip())
        if role.endswith(" example"):
            assert first == "```json", f"{line} is not followed by a JSON block"
            examples[key] = json.loads("\n".join(iter(lambda: next(body), "```")))
        else:
            assert first.startswith("| field |"), f"{line} is not followed by a field table"
            rows = [first] + list(iter(lambda: next(body, "").strip(), ""))
            names = set()
            for row in rows[2:]:
                names |= {n.strip().strip("`") for n in row.split("|")[1].split(",")}
            assert key not in tables, f"{line} captions two tables"
            tables[key] = names
    return tables, examples


def test_every_message_struct_is_documented_once() -> None:
    """Ensure each message Struct has a table in docs/protocol.md and each table names a Struct."""
    tables, _ = sections()
    assert set(tables) == set(DOCUMENTED)
    structs = {v for v in vars(m).values() if isinstance(v, type) and issubclass(v, m.Message)}
    assert structs - BUILDING_BLOCKS == set(DOCUMENTED.values())


@pytest.mark.parametrize("key", DOCUMENTED, ids=[" ".join(filter(None, k)) for k in DOCUMENTED])
def test_docs_table_lists_the_struct_fields(key) -> None:
    """Ensure a message's table in docs/protocol.md lists exactly its Struct's wire fields, under its method name."""
    kind = DOCUMENTED[key]
    tables, _ = sections()
    assert tables[key] == wire_fields(kind), f"docs/protocol.md table {key} vs messages.{kind.__name__}"
    name = getattr(kind, "METHOD", None) or getattr(kind, "COMMAND", None)
    if name is not None and key[1] is None:
        assert key[0] == name


def _check_example(value, info: msgspec.inspect.Type, where: str) -> None:
    """``value`` has exactly the fields of ``info``'s Struct, recursively through nested Structs, lists and dicts."""
    if isinstance(info, msgspec.inspect.StructType):
        assert isinstance(value, dict) and set(value) == wire_fields(info.cls), f"{where}: {sorted(value)}"
        for f in info.fields:
            _check_example(value[f.encode_name], f.type, f"{where}.{f.encode_name}")
    elif isinstance(info, msgspec.inspect.ListType):
        for i, item in enumerate(value):
            _check_example(item, info.item_type, f"{where}[{i}]")
    elif isinstance(info, msgspec.inspect.DictType):
        for k, item in value.items():
            _check_example(item, info.value_type, f"{where}.{k}")
    elif isinstance(info, msgspec.inspect.UnionType) and value is not None:
        for t in info.types:
            if isinstance(t, (msgspec.inspect.StructType, msgspec.inspect.ListType, msgspec.inspect.DictType)):
                _check_example(value, t, where)


def test_docs_examples_decode_as_their_structs() -> None:
    """Ensure every JSON example in docs/protocol.md is a valid message with exactly its Struct's fields."""
    _, examples = sections()
    assert len(examples) >= 3
    for key, value in examples.items():
        kind = DOCUMENTED[key]
        msgspec.convert(value, kind)  # types and required fields
        _check_example(value, msgspec.inspect.type_info(kind), " ".join(filter(None, key)))


def ts_interfaces() -> dict[str, set[str]]:
    """Every exported TypeScript interface of the extension and its top-level field names."""
    out = {}
    for path in TS_SRC.glob("*.ts"):
        text = path.read_text()
        for match in re.finditer(r"export interface (\w+)[^{]*\{", text):
            depth, i, fields = 1, match.end(), set()
            line_start = True
            while depth:
                ch = text[i]
                if ch in "{(<[":
                    depth += 1
                elif ch in "}])>" and not (ch == ">" and text[i - 1] == "="):
                    depth -= 1
                elif depth == 1 and line_start:
                    field = re.match(r"\s*(\w+)\??:", text[i:])
                    if field:
                        fields.add(field[1])
                line_start = ch == "\n"
                i += 1
            out[match[1]] = fields
    return out


def test_typescript_interfaces_mirror_the_structs() -> None:
    """Ensure the extension's interfaces named after a Struct have exactly its wire fields."""
    interfaces = ts_interfaces()
    assert MIRRORED <= set(interfaces)
    for name in MIRRORED:
        assert interfaces[name] == wire_fields(getattr(m, name)), f"editors/vscode/src interface {name}"


def test_wire_shapes_are_camel_case_and_complete() -> None:
    """Ensure a stream notification goes out with every field, camelCase, and null for no rate."""
    note = m.StreamNotification(
        stream_id="s1", request_id=3, uri="file:///a.py", version=2,
        range=m.Range(start=m.Position(line=0, character=1), end=m.Position(line=0, character=2)),
        text="x", done=False, backend="local", tokens_per_second=None, kept_up=True, elapsed_ms=1.5,
    )
    assert json.dumps(m.result(note)) == (
        '{"streamId": "s1", "requestId": 3, "uri": "file:///a.py", "version": 2, "index": 0, '
        '"range": {"start": {"line": 0, "character": 1}, "end": {"line": 0, "character": 2}}, "text": "x", '
        '"done": false, "cancelled": false, "backend": "local", "tokensPerSecond": null, "keptUp": true, "elapsedMs": 1.5}'
    )
