"""Build LSP result objects from sparkls suggestions (`lsp_*`, as jedi-language-server names them)."""

from __future__ import annotations

from lsprotocol import types


def lsp_accept_command(stream_id: str, index: int = 0) -> types.Command:
    """The command an editor runs when the user accepts an item (docs/protocol.md)."""
    return types.Command(title="sparkls: accept", command="sparkls.accept", arguments=[{"streamId": stream_id, "index": index}])


def lsp_inline_list(text: str, range_: types.Range, command: types.Command | None = None) -> types.InlineCompletionList:
    """One inline item replacing ``range_`` (the word typed so far) with ``text``."""
    if not text:
        return types.InlineCompletionList(items=[])
    item = types.InlineCompletionItem(insert_text=text, range=range_, command=command)
    return types.InlineCompletionList(items=[item])


def lsp_completion_list(text: str, range_: types.Range) -> types.CompletionList:
    """The same suggestion as a completion item, for clients without inline completion.

    ``isIncomplete`` makes the client ask again as the user types, since the suggestion
    depends on everything before the cursor, not just the word. The edit is a snippet (with
    ``$``, ``}`` and ``\\`` escaped, so it inserts literally) because Neovim 0.11 inserts a
    plain-text item only up to its first space.
    """
    if not text:
        return types.CompletionList(is_incomplete=True, items=[])
    first, _, rest = text.partition("\n")
    if not first.strip() and rest.strip():  # the next lines at a line's end: named by the first of them
        first, _, rest = rest.lstrip("\n").partition("\n")
        first = "↵ " + first.strip()
    item = types.CompletionItem(
        label=first + ("…" if rest else ""),
        kind=types.CompletionItemKind.Text,
        detail="sparkls",
        documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=text) if rest else None,
        sort_text="0",
        filter_text=text,
        insert_text_format=types.InsertTextFormat.Snippet,
        text_edit=types.TextEdit(range=range_, new_text=_snippet_literal(text) + "$0"),
    )
    return types.CompletionList(is_incomplete=True, items=[item])


def _snippet_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("}", "\\}")
