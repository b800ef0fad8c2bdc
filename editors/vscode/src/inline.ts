// The inline-completion middleware: returns what is known, and asks the editor to fetch again as the stream grows.
// Everything that touches `vscode` comes in through `InlineHost`, so node's test runner covers this file.
import type { Pos, Rng, Stream, StreamNotification, StreamStore } from './stream';
import { samePos } from './stream';

/** The parts of a vscode.TextDocument the middleware reads. */
export interface Doc {
  version: number;
}

/** The parts of a vscode.InlineCompletionItem the middleware reads. */
export interface ItemLike {
  insertText: string | { value: string };
  range?: Rng;
  command?: { command: string; arguments?: unknown[] };
}

export type Result<I> = I[] | { items: I[] } | null | undefined;

/** What the middleware needs from VS Code and the language client. */
export interface InlineHost<D extends Doc, I extends ItemLike> {
  /** The document's URI as the server spells it. */
  uri(doc: D): string;
  enabled(): boolean;
  /** True when the server confirmed `experimental.sparkls.inlineCompletionStream`. */
  streaming(): boolean;
  /** Build an editor item; `command` is set when the server should hear about the acceptance. */
  makeItem(text: string, range: Rng, streamId: string, index: number): I;
  /** Where the cursor of the active editor is, if it shows this URI at this version. */
  cursor(uri: string, version: number): Pos | undefined;
  /**
   * Makes the editor fetch inline suggestions again at the cursor (see sparkls.ts for why hide, then trigger), and
   * keeps Escape bound to the dismiss command until `fetched` settles: VS Code resolves its trigger command before
   * it calls the provider, and an Escape in between would otherwise reach nobody.
   */
  trigger(fetched: Promise<void>): Thenable<unknown>;
  /** The editor is given a stream's items to draw at the cursor (reported to the server once per stream). */
  shown?(streamId: string, items: ItemLike[]): void;
}

export const ACCEPT_COMMAND = 'sparkls.accept';

/** The streamId an item's `sparkls.accept` command carries, if any. */
export function streamRef(item: ItemLike): { streamId: string; index: number } | undefined {
  const arg = item.command?.command === ACCEPT_COMMAND ? item.command.arguments?.[0] : undefined;
  if (arg && typeof arg === 'object' && typeof (arg as { streamId?: unknown }).streamId === 'string') {
    const { streamId, index } = arg as { streamId: string; index?: unknown };
    return { streamId, index: typeof index === 'number' ? index : 0 };
  }
  return undefined;
}

function textOf(item: ItemLike): string {
  return typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
}

/** How long a refresh waits for the editor's fetch before it counts as done without one. */
export const FETCH_TIMEOUT_MS = 1000;

export class StreamingInline<D extends Doc, I extends ItemLike> {
  private readonly retrigger = new Retrigger(() => this.refresh());
  /** Documents whose stream grew since the last refresh. */
  private readonly pending = new Set<string>();
  /** Where the user last dismissed a suggestion: a refresh already under way must not bring it back. */
  private dismissed: { uri: string; version: number; position: Pos } | undefined;
  /** Refreshes waiting for the editor's next fetch (the provider returning). */
  private waiting: (() => void)[] = [];

  constructor(
    readonly store: StreamStore,
    private readonly host: InlineHost<D, I>,
  ) {}

  /** `middleware.provideInlineCompletionItems`. */
  async provide(doc: D, position: Pos, next: () => Promise<Result<I>> | Result<I>): Promise<Result<I>> {
    try {
      return await this.answer(doc, position, next);
    } finally {
      const waiting = this.waiting;
      this.waiting = [];
      waiting.forEach((done) => done());
    }
  }

  private async answer(doc: D, position: Pos, next: () => Promise<Result<I>> | Result<I>): Promise<Result<I>> {
    if (!this.host.enabled()) {
      return null;
    }
    const uri = this.host.uri(doc);
    const d = this.dismissed;
    if (d && d.uri === uri && d.version === doc.version && samePos(d.position, position) && this.retrigger.busy) {
      return null; // our refresh, sent before the user dismissed the suggestion here
    }
    this.dismissed = undefined;
    const known = this.store.lookup(uri, doc.version, position);
    if (known) {
      // Re-invoked (by our trigger, or the user) where a stream already answered: its newest text, no request.
      this.store.markServed(known);
      return this.served(known);
    }
    const result = await next();
    if (!result || !this.host.streaming()) {
      return result;
    }
    const items = Array.isArray(result) ? result : result.items;
    const refs = items.map(streamRef);
    const streamId = refs.find((r) => r)?.streamId;
    if (streamId === undefined) {
      return result;
    }
    const parts = items.flatMap((item, i) => {
      const ref = refs[i];
      return ref && ref.streamId === streamId && item.range ? [{ index: ref.index, text: textOf(item), range: item.range }] : [];
    });
    if (parts.length === 0) {
      return result; // no range to keep the text at: show the answer as it is
    }
    const stream = this.store.onResponse(uri, doc.version, position, streamId, parts);
    return stream ? this.served(stream) : result;
  }

  /** `sparkls/inlineCompletionStream`: keep the text, and have the editor ask again when it is on show. */
  onNotification(n: StreamNotification): void {
    if (this.store.onNotification(n)) {
      this.pending.add(n.uri);
      this.retrigger.request();
    }
  }

  /**
   * Settles once no refresh is under way. A refresh's fetch may have been answered with the stream's text just before
   * the user dismissed it, and VS Code can draw that answer after the dismissal's hide: hide again once this settles.
   */
  refreshed(): Promise<void> {
    return this.retrigger.idle();
  }

  /**
   * The suggestion the editor last drew for the document at this version and cursor (the lowest item it was given),
   * for a Tab that lands while a refresh has it hidden; undefined when the editor was given none here.
   */
  shownItem(uri: string, version: number, cursor: Pos): { streamId: string; index: number; text: string; range: Rng } | undefined {
    const stream = this.store.get(uri);
    if (!stream || stream.version !== version || !samePos(stream.position, cursor)) {
      return undefined;
    }
    const served = [...stream.served.entries()].filter(([, text]) => text.length > 0).sort(([a], [b]) => a - b)[0];
    const item = served && stream.items.get(served[0]);
    return item ? { streamId: stream.streamId, index: item.index, text: served[1], range: item.range } : undefined;
  }

  /** The user dismissed the document's suggestion: forget its stream (returned, to tell the server). */
  dismiss(uri: string): Stream | undefined {
    const stream = this.store.drop(uri);
    if (stream) {
      this.dismissed = { uri, version: stream.version, position: stream.position };
    }
    return stream;
  }

  /** Runs (coalesced) after notifications: refresh the editor if the stream it shows has grown meanwhile. */
  private async refresh(): Promise<void> {
    const uris = [...this.pending];
    this.pending.clear();
    for (const uri of uris) {
      const stream = this.store.get(uri);
      const cursor = stream && this.host.cursor(stream.uri, stream.version);
      if (stream && cursor && samePos(cursor, stream.position) && this.store.grew(stream)) {
        const fetched = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, FETCH_TIMEOUT_MS);
          this.waiting.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        await this.host.trigger(fetched); // busy until the fetch it causes is answered: see provide's guard
      }
    }
  }

  private served(stream: Stream): I[] {
    const items = this.items(stream);
    this.host.shown?.(stream.streamId, items);
    return items;
  }

  private items(stream: Stream): I[] {
    return [...stream.items.values()]
      .sort((a, b) => a.index - b.index)
      .map((item) => this.host.makeItem(item.text, item.range, stream.streamId, item.index));
  }
}

/**
 * Coalesces trigger requests: one trigger runs at a time, and requests made meanwhile cause exactly one more when
 * it finishes. So the editor refreshes as fast as it can fetch, never queueing a refresh per notification.
 */
export class Retrigger {
  private running = false;
  private again = false;
  private idlers: (() => void)[] = [];

  /** A trigger is under way (the editor may be fetching because of it). */
  get busy(): boolean {
    return this.running;
  }

  constructor(private readonly run: () => Thenable<unknown>) {}

  /** Settles when no trigger is running or due. */
  idle(): Promise<void> {
    return this.running ? new Promise((resolve) => this.idlers.push(resolve)) : Promise.resolve();
  }

  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    Promise.resolve()
      .then(() => this.run())
      .then(undefined, () => undefined)
      .then(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.request();
        } else {
          const idlers = this.idlers;
          this.idlers = [];
          idlers.forEach((done) => done());
        }
      });
  }
}

/** A text change as VS Code reports it. */
export interface Change {
  range: Rng;
  text: string;
}

/**
 * Whether an edit at a stream's document counts as the user turning the suggestion down (`sparkls/didDismiss`):
 * typing the characters the ghost text shows, or inserting (part of) an item, does not; any other edit does.
 */
export function isDismissal(stream: Stream, changes: readonly Change[]): boolean {
  if (changes.length !== 1) {
    return true;
  }
  const [change] = changes;
  for (const item of stream.items.values()) {
    if (samePos(change.range.start, item.range.start) && change.text.length > 0 && item.text.startsWith(change.text)) {
      return false; // an accept (whole, by word or by line) replaces the item's range
    }
    const typed = item.range.end.character - item.range.start.character;
    const ghost = item.range.start.line === item.range.end.line ? item.text.slice(typed) : '';
    const atCursor = samePos(change.range.start, stream.position) && samePos(change.range.end, stream.position);
    if (atCursor && change.text.length > 0 && ghost.startsWith(change.text)) {
      return false; // typed through the ghost text
    }
  }
  return true;
}
