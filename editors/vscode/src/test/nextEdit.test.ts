// Next edits without vscode: which edit shows, what Tab does, how a partial accept moves a stream along.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { advance, editId, editToShow, partialAccept, tabAction } from '../nextEditState';
import type { Stream } from '../stream';

const URI = 'file:///ws/mod.py';
const EDIT = {
  text: 'total',
  range: { start: { line: 3, character: 8 }, end: { line: 3, character: 13 } },
  textDocument: { uri: URI, version: 7 },
  command: { command: 'sparkls.acceptInlineEdit', arguments: [{ id: 'e1' }] },
};

test('the first edit shows only for the version it was computed for', () => {
  assert.deepEqual(editToShow({ edits: [EDIT] }, URI, 7), EDIT);
  assert.equal(editToShow({ edits: [EDIT] }, URI, 8), undefined);
  assert.equal(editToShow({ edits: [] }, URI, 7), undefined);
  assert.equal(editToShow(null, URI, 7), undefined);
  assert.equal(editId(EDIT), 'e1');
});

test('Tab jumps, then applies, and never applies to another version', () => {
  assert.equal(tabAction(EDIT, 7, { line: 1, character: 9 }), 'jump');
  assert.equal(tabAction(EDIT, 7, { line: 3, character: 8 }), 'apply');
  assert.equal(tabAction(EDIT, 8, { line: 3, character: 8 }), 'stale');
});

function stream(done = true): Stream {
  const range = { start: { line: 4, character: 4 }, end: { line: 4, character: 7 } };
  return {
    streamId: 's1', uri: URI, version: 3, position: range.end, done,
    items: new Map([[0, { index: 0, text: 'return {"status": "ok"}', range }]]), served: new Map(),
  };
}

test('a word accepted over the item range or at the cursor is a partial accept; the stream moves along', () => {
  const s = stream();
  const overRange = partialAccept(s, [{ range: { start: { line: 4, character: 4 }, end: { line: 4, character: 7 } }, text: 'return' }]);
  assert.deepEqual(overRange, { index: 0, accepted: 3, end: { line: 4, character: 10 } });
  const atCursor = partialAccept(s, [{ range: { start: s.position, end: s.position }, text: 'urn' }]);
  assert.deepEqual(atCursor, { index: 0, accepted: 3, end: { line: 4, character: 10 } });
  assert.equal(partialAccept(s, [{ range: { start: s.position, end: s.position }, text: 'u' }])?.accepted, 0); // typed
  assert.equal(partialAccept(s, [{ range: { start: s.position, end: s.position }, text: 'x' }]), undefined);
  assert.equal(partialAccept(s, [{ range: { start: s.position, end: s.position }, text: 'urn {"status": "ok"}' }]), undefined); // all
  advance(s, 4, overRange!.end);
  assert.equal(s.version, 4);
  assert.deepEqual(s.position, { line: 4, character: 10 });
  assert.deepEqual(s.items.get(0)!.range.end, { line: 4, character: 10 });
});
