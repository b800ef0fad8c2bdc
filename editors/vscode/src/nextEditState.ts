// Next edits (`textDocument/copilotInlineEdit`, docs/protocol.md) without `vscode`: which edit to show, what Tab does,
// and how a partial accept moves a stream along. node's test runner covers this file.
import type { Pos, Rng, Stream } from './stream';
import { samePos } from './stream';

/** One edit of the server's `{edits: [...]}` answer (server/messages.py `InlineEdit`). */
export interface InlineEdit {
  text: string;
  range: Rng;
  textDocument: { uri: string; version: number };
  command?: { title?: string; command: string; arguments?: unknown[] };
}

/** The edit to show for a document at `version`: the first one, if it was computed for that very version. */
export function editToShow(result: unknown, uri: string, version: number): InlineEdit | undefined {
  const edits = (result as { edits?: unknown } | null | undefined)?.edits;
  const first = Array.isArray(edits) ? (edits[0] as InlineEdit | undefined) : undefined;
  if (!first || typeof first.text !== 'string' || !first.range) {
    return undefined;
  }
  const doc = first.textDocument;
  return !doc || (doc.uri === uri && doc.version === version) ? first : undefined;
}

/** What Tab does with a shown edit: jump to it, apply it (the cursor is on it), or nothing (the document changed). */
export function tabAction(edit: InlineEdit, version: number, cursor: Pos): 'jump' | 'apply' | 'stale' {
  if (edit.textDocument.version !== version) {
    return 'stale';
  }
  return samePos(cursor, edit.range.start) ? 'apply' : 'jump';
}

/** The id a next edit's command carries (for didShowInlineEdit / sparkls/didDismiss). */
export function editId(edit: InlineEdit): string | undefined {
  const arg = edit.command?.arguments?.[0] as { id?: unknown } | undefined;
  return typeof arg?.id === 'string' ? arg.id : undefined;
}

/** Where a text inserted at `start` ends. */
export function endOf(start: Pos, text: string): Pos {
  const lines = text.split('\n');
  return lines.length === 1
    ? { line: start.line, character: start.character + text.length }
    : { line: start.line + lines.length - 1, character: lines[lines.length - 1].length };
}

/**
 * A partial accept (VS Code's accept next word / line) leaving part of an item still to show: one change that replaces
 * the item's range with a strict start of its text, or inserts a strict start of the ghost text at the cursor (one
 * character of it counts as typing along, not accepting). Returns the item's index, the characters of ghost text taken
 * (0 when typed) and where the cursor is now; undefined for any other change.
 */
export function partialAccept(stream: Stream, changes: readonly { range: Rng; text: string }[]): { index: number; accepted: number; end: Pos } | undefined {
  if (changes.length !== 1) {
    return undefined;
  }
  const [change] = changes;
  for (const item of stream.items.values()) {
    const typed = item.range.end.character - item.range.start.character;
    const replacesItem = samePos(change.range.start, item.range.start) && samePos(change.range.end, stream.position);
    if (replacesItem && change.text.length > typed && change.text.length < item.text.length && item.text.startsWith(change.text)) {
      return { index: item.index, accepted: change.text.length - typed, end: endOf(item.range.start, change.text) };
    }
    const ghost = item.range.start.line === item.range.end.line ? item.text.slice(typed) : '';
    const atCursor = samePos(change.range.start, stream.position) && samePos(change.range.end, stream.position);
    if (atCursor && change.text.length > 0 && change.text.length < ghost.length && ghost.startsWith(change.text)) {
      const accepted = change.text.length > 1 ? change.text.length : 0;
      return { index: item.index, accepted, end: endOf(stream.position, change.text) };
    }
  }
  return undefined;
}

/** Move a stream past a partial accept: the same items, now answering at `end` in document `version`. */
export function advance(stream: Stream, version: number, end: Pos): void {
  stream.version = version;
  stream.position = end;
  for (const item of stream.items.values()) {
    item.range = { start: item.range.start, end };
  }
}
