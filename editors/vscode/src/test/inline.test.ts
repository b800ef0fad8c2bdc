// The inline middleware: cached streamed text answers re-invocations, growth re-triggers the editor.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FETCH_TIMEOUT_MS, InlineHost, ItemLike, Retrigger, StreamingInline, isDismissal, streamRef } from '../inline';
import { Pos, Rng, StreamStore } from '../stream';

const URI = 'file:///ws/pkg/delete.py';
const RANGE: Rng = { start: { line: 4, character: 4 }, end: { line: 4, character: 7 } };
const AT: Pos = RANGE.end;

interface Doc {
  version: number;
}

function setup(opts: { streaming?: boolean; enabled?: boolean; cursor?: Pos; trigger?: (fetched: Promise<void>) => Promise<void> } = {}) {
  const triggers: number[] = [];
  const host: InlineHost<Doc, ItemLike> = {
    uri: () => URI,
    enabled: () => opts.enabled ?? true,
    streaming: () => opts.streaming ?? true,
    makeItem: (text, range, streamId, index) => ({ insertText: text, range, command: { command: 'sparkls.accept', arguments: [{ streamId, index }] } }),
    cursor: () => opts.cursor ?? AT,
    trigger:
      opts.trigger ??
      (async () => {
        triggers.push(Date.now());
      }),
  };
  const inline = new StreamingInline(new StreamStore(), host);
  return { inline, triggers };
}

function serverItem(text: string, streamId = 's1'): ItemLike {
  return { insertText: text, range: RANGE, command: { command: 'sparkls.accept', arguments: [{ streamId, index: 0 }] } };
}

const texts = (r: unknown) => (r as ItemLike[]).map((i) => i.insertText);
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
/** Lets pending promise callbacks run (for tests whose timers are mocked). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await Promise.resolve();
  }
}

test('the first call asks the server; a re-invocation at the same place returns the streamed text without a request', async () => {
  const { inline, triggers } = setup();
  let requests = 0;
  const next = async () => {
    requests++;
    return { items: [serverItem('return {')] };
  };
  assert.deepEqual(texts(await inline.provide({ version: 3 }, AT, next)), ['return {']);
  inline.onNotification({ streamId: 's1', requestId: 1, uri: URI, version: 3, index: 0, range: RANGE, text: 'return {"status"', done: false });
  await tick();
  assert.equal(triggers.length, 1, 'growth triggers the editor');
  assert.deepEqual(texts(await inline.provide({ version: 3 }, AT, next)), ['return {"status"']);
  assert.equal(requests, 1);
  inline.onNotification({ streamId: 's1', requestId: 1, uri: URI, version: 3, index: 0, range: RANGE, text: 'return {"status"', done: true });
  await tick();
  assert.equal(triggers.length, 1, 'no growth, no trigger');
  await inline.provide({ version: 4 }, { line: 4, character: 8 }, next);
  assert.equal(requests, 2, 'a new version asks the server');
});

test('a Tab while a refresh hides the ghost text gets what the editor last drew, only at that version and cursor', async () => {
  const { inline } = setup();
  assert.equal(inline.shownItem(URI, 3, AT), undefined, 'nothing drawn yet');
  await inline.provide({ version: 3 }, AT, async () => ({ items: [serverItem('return {')] }));
  // The stream grows past what was drawn: the refresh that will draw it is under way, the ghost text hidden.
  inline.onNotification({ streamId: 's1', uri: URI, version: 3, index: 0, range: RANGE, text: 'return {"status"', done: false });
  assert.deepEqual(inline.shownItem(URI, 3, AT), { streamId: 's1', index: 0, text: 'return {', range: RANGE });
  assert.equal(inline.shownItem(URI, 4, AT), undefined, 'the document changed since');
  assert.equal(inline.shownItem(URI, 3, { line: 4, character: 8 }), undefined, 'the cursor moved');
  await inline.provide({ version: 3 }, AT, async () => null);
  assert.equal(inline.shownItem(URI, 3, AT)?.text, 'return {"status"', 'the refresh drew the longer text');
  inline.dismiss(URI);
  assert.equal(inline.shownItem(URI, 3, AT), undefined, 'dismissed');
});

test('items keep the accept command with their stream id', async () => {
  const { inline } = setup();
  const [item] = (await inline.provide({ version: 1 }, AT, async () => [serverItem('ret')])) as ItemLike[];
  assert.deepEqual(streamRef(item), { streamId: 's1', index: 0 });
});

test('without a stream (no opt-in, no command) the server result passes through unchanged', async () => {
  const plain = [{ insertText: 'return 1', range: RANGE }];
  const a = setup({ streaming: false });
  assert.equal(await a.inline.provide({ version: 1 }, AT, async () => [serverItem('x')]).then((r) => (r as ItemLike[])[0].insertText), 'x');
  const b = setup();
  assert.equal(await b.inline.provide({ version: 1 }, AT, async () => plain), plain);
});

test('a streamed item without a range is shown as the server sent it', async () => {
  const { inline } = setup();
  const rangeless = [{ insertText: 'return 1', command: { command: 'sparkls.accept', arguments: [{ streamId: 's9', index: 0 }] } }];
  assert.equal(await inline.provide({ version: 1 }, AT, async () => rangeless), rangeless);
});

test('disabled completions ask nothing', async () => {
  const { inline } = setup({ enabled: false });
  assert.equal(await inline.provide({ version: 1 }, AT, async () => assert.fail('no request')), null);
});

test('growth is not triggered when the cursor moved away', async () => {
  const { inline, triggers } = setup({ cursor: { line: 0, character: 0 } });
  await inline.provide({ version: 3 }, AT, async () => [serverItem('ret')]);
  inline.onNotification({ streamId: 's1', uri: URI, version: 3, index: 0, range: RANGE, text: 'return', done: false });
  await tick();
  assert.equal(triggers.length, 0);
});

test('after a dismissal, a refresh already under way does not ask again; the next edit does', async () => {
  let release: () => void = () => undefined;
  const { inline } = setup({ trigger: () => new Promise<void>((resolve) => (release = resolve)) });
  let requests = 0;
  const next = async () => {
    requests++;
    return [serverItem('ret')];
  };
  await inline.provide({ version: 3 }, AT, next);
  inline.onNotification({ streamId: 's1', uri: URI, version: 3, index: 0, range: RANGE, text: 'return', done: false });
  await tick(); // the refresh is now under way
  assert.equal(inline.dismiss(URI)?.streamId, 's1');
  assert.equal(await inline.provide({ version: 3 }, AT, next), null, 'the refresh sent before Escape');
  assert.equal(requests, 1);
  release();
  await tick();
  await inline.provide({ version: 4 }, { line: 4, character: 8 }, next);
  assert.equal(requests, 2);
});

test('a refresh lasts until the fetch it causes: that fetch, arriving after Escape, gets nothing', async () => {
  // As in VS Code: the trigger command returns at once, and the provider is called a moment later.
  const { inline, triggers } = setup({
    trigger: async (fetched) => {
      triggers.push(Date.now());
      await fetched;
    },
  });
  let requests = 0;
  const next = async () => {
    requests++;
    return [serverItem('ret', `s${requests}`)];
  };
  await inline.provide({ version: 3 }, AT, next);
  inline.onNotification({ streamId: 's1', uri: URI, version: 3, index: 0, range: RANGE, text: 'return', done: false });
  await tick();
  assert.equal(triggers.length, 1);
  inline.dismiss(URI); // Escape, before the editor fetched
  assert.equal(await inline.provide({ version: 3 }, AT, next), null, 'the fetch of the refresh sent before Escape');
  assert.equal(requests, 1);
  await tick(); // that fetch ended the refresh
  assert.deepEqual(texts(await inline.provide({ version: 3 }, AT, next)), ['ret'], 'the user asking again there');
  assert.equal(requests, 2);
});

test('a refresh whose fetch never comes ends after FETCH_TIMEOUT_MS', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let ended = false;
  const { inline } = setup({
    trigger: async (fetched) => {
      await fetched;
      ended = true;
    },
  });
  await inline.provide({ version: 3 }, AT, async () => [serverItem('ret')]);
  inline.onNotification({ streamId: 's1', uri: URI, version: 3, index: 0, range: RANGE, text: 'return', done: false });
  await settle();
  t.mock.timers.tick(FETCH_TIMEOUT_MS - 1);
  await settle();
  assert.equal(ended, false);
  t.mock.timers.tick(1);
  await settle();
  assert.equal(ended, true);
});

test('refreshed() settles when the refresh under way, and any it coalesced, are over', async () => {
  let release: () => void = () => undefined;
  const { inline } = setup({ trigger: () => new Promise<void>((resolve) => (release = resolve)) });
  await inline.refreshed(); // nothing under way: settles at once
  await inline.provide({ version: 3 }, AT, async () => [serverItem('ret')]);
  inline.onNotification({ streamId: 's1', uri: URI, version: 3, index: 0, range: RANGE, text: 'return', done: false });
  await tick();
  let settled = false;
  void inline.refreshed().then(() => (settled = true));
  inline.onNotification({ streamId: 's1', uri: URI, version: 3, index: 0, range: RANGE, text: 'return {', done: false });
  release(); // the first refresh ends; the coalesced one starts
  await tick();
  assert.equal(settled, false);
  release();
  await tick();
  assert.equal(settled, true);
});

test('Retrigger runs one trigger at a time and coalesces requests made meanwhile into one more', async () => {
  let runs = 0;
  let release: () => void = () => undefined;
  const r = new Retrigger(
    () =>
      new Promise<void>((resolve) => {
        runs++;
        release = resolve;
      }),
  );
  r.request();
  await tick();
  r.request();
  r.request();
  r.request();
  assert.equal(runs, 1);
  release();
  await tick();
  assert.equal(runs, 2);
  release();
  await tick();
  assert.equal(runs, 2);
});

test('typing the ghost text or accepting it is no dismissal; other edits are', () => {
  const store = new StreamStore();
  const stream = store.onResponse(URI, 3, AT, 's1', [{ index: 0, text: 'return {"status"', range: RANGE }])!;
  const at = { start: AT, end: AT };
  assert.equal(isDismissal(stream, [{ range: at, text: 'u' }]), false, 'typed the next ghost character');
  assert.equal(isDismissal(stream, [{ range: RANGE, text: 'return {"status"' }]), false, 'accepted');
  assert.equal(isDismissal(stream, [{ range: RANGE, text: 'return' }]), false, 'accepted a word');
  assert.equal(isDismissal(stream, [{ range: at, text: 'x' }]), true);
  assert.equal(isDismissal(stream, [{ range: { start: { line: 4, character: 6 }, end: AT }, text: '' }]), true, 'backspace');
});
