// The assembly of streamed ghost text: newest stream per document, whole-text notifications, stale ones ignored.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StreamNotification, StreamStore } from '../stream';

const URI = 'file:///ws/pkg/delete.py';
const RANGE = { start: { line: 4, character: 4 }, end: { line: 4, character: 7 } };
const AT = RANGE.end;

function note(text: string, extra: Partial<StreamNotification> = {}): StreamNotification {
  return { streamId: 's1', requestId: 7, uri: URI, version: 3, index: 0, range: RANGE, text, done: false, ...extra };
}

test('notifications after the response grow the text and report growth once per change', () => {
  const store = new StreamStore();
  const s = store.onResponse(URI, 3, AT, 's1', [{ index: 0, text: 'return {', range: RANGE }]);
  assert.equal(s?.items.get(0)?.text, 'return {');
  assert.equal(store.onNotification(note('return {')), undefined, 'same text as served: no refresh');
  const grown = store.onNotification(note('return {"status"'));
  assert.equal(grown?.items.get(0)?.text, 'return {"status"');
  assert.equal(store.lookup(URI, 3, AT)?.items.get(0)?.text, 'return {"status"');
  store.markServed(grown!);
  assert.equal(store.onNotification(note('return {"status"', { done: true })), undefined);
  assert.equal(store.get(URI)?.done, true);
});

test('a notification that overtakes the response is kept, and the response does not shorten it', () => {
  const store = new StreamStore();
  assert.ok(store.onNotification(note('return {"status": "ok"')));
  const s = store.onResponse(URI, 3, AT, 's1', [{ index: 0, text: 'return {', range: RANGE }]);
  assert.equal(s?.items.get(0)?.text, 'return {"status": "ok"');
  assert.deepEqual(s?.position, AT);
});

test('lookup needs the same version and cursor', () => {
  const store = new StreamStore();
  store.onResponse(URI, 3, AT, 's1', [{ index: 0, text: 'return', range: RANGE }]);
  assert.ok(store.lookup(URI, 3, { line: 4, character: 7 }));
  assert.equal(store.lookup(URI, 4, AT), undefined);
  assert.equal(store.lookup(URI, 3, { line: 4, character: 8 }), undefined);
  assert.equal(store.lookup('file:///other.py', 3, AT), undefined);
});

test('notifications for a document version older than the one shown are ignored', () => {
  const store = new StreamStore(() => 5);
  assert.equal(store.onNotification(note('return')), undefined);
  assert.equal(store.get(URI), undefined);
});

test('a newer stream replaces the old one, whose late notifications are then ignored', () => {
  const store = new StreamStore();
  store.onResponse(URI, 3, AT, 's1', [{ index: 0, text: 'ret', range: RANGE }]);
  store.onNotification(note('return'));
  const newer = store.onNotification(note('return {', { streamId: 's2', requestId: 8, version: 4 }));
  assert.equal(newer?.streamId, 's2');
  assert.equal(store.onNotification(note('return x')), undefined, 's1 is retired');
  assert.equal(store.get(URI)?.streamId, 's2');
  const older = store.onNotification(note('zzz', { streamId: 's0', requestId: 6, version: 4 }));
  assert.equal(older, undefined, 'an older request id does not replace a newer stream');
});

test('a cancelled stream is forgotten, and ended streams are never revived', () => {
  const store = new StreamStore();
  store.onResponse(URI, 3, AT, 's1', [{ index: 0, text: 'ret', range: RANGE }]);
  assert.equal(store.onNotification(note('return', { cancelled: true, done: true })), undefined);
  assert.equal(store.get(URI), undefined);
  assert.equal(store.onNotification(note('return {')), undefined);
  assert.equal(store.onResponse(URI, 3, AT, 's1', [{ index: 0, text: 'ret', range: RANGE }]), undefined);

  store.onResponse(URI, 3, AT, 's2', [{ index: 0, text: 'ret', range: RANGE }]);
  assert.equal(store.end('s2')?.streamId, 's2');
  assert.equal(store.onNotification(note('return', { streamId: 's2' })), undefined);
});

test('items (alternatives) are kept by index', () => {
  const store = new StreamStore();
  store.onResponse(URI, 3, AT, 's1', [
    { index: 0, text: 'return a', range: RANGE },
    { index: 1, text: 'return b', range: RANGE },
  ]);
  const s = store.onNotification(note('return bb', { index: 1 }));
  assert.deepEqual(
    [...s!.items.values()].map((i) => i.text),
    ['return a', 'return bb'],
  );
});
