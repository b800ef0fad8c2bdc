// Assembly of streamed ghost text (docs/protocol.md): the newest stream per document, its items' whole texts.
// Pure logic, no `vscode` import, so node's test runner covers it.

export interface Pos {
  line: number;
  character: number;
}

export interface Rng {
  start: Pos;
  end: Pos;
}

/** Params of the `sparkls/inlineCompletionStream` notification (server/messages.py `StreamNotification`). */
export interface StreamNotification {
  streamId: string;
  requestId?: number | string;
  uri: string;
  version: number;
  index: number;
  range: Rng;
  text: string;
  done: boolean;
  cancelled?: boolean;
  backend?: string;
  tokensPerSecond?: number;
  keptUp?: boolean;
  elapsedMs?: number;
}

/** One alternative of a stream: its whole text so far and the range it replaces. */
export interface StreamItem {
  index: number;
  text: string;
  range: Rng;
}

export interface Stream {
  streamId: string;
  requestId?: number | string;
  uri: string;
  version: number;
  /** The cursor of the request; the ghost text is shown only there. */
  position: Pos;
  items: Map<number, StreamItem>;
  /** The text of each item as last handed to the editor; a longer one means the editor should ask again. */
  served: Map<number, string>;
  done: boolean;
}

export function samePos(a: Pos, b: Pos): boolean {
  return a.line === b.line && a.character === b.character;
}

/** Keeps the newest stream of each document. Notifications of older or finished streams are ignored. */
export class StreamStore {
  private readonly byDoc = new Map<string, Stream>();
  /** Streams that ended (cancelled, accepted, dismissed, superseded): late notifications must not revive them. */
  private readonly retired = new Set<string>();
  private readonly retiredOrder: string[] = [];

  /** `currentVersion(uri)` is the version the editor shows (undefined if unknown); older notifications are dropped. */
  constructor(private readonly currentVersion: (uri: string) => number | undefined = () => undefined) {}

  get(uri: string): Stream | undefined {
    return this.byDoc.get(uri);
  }

  /** The document's stream if it was made for this very version and cursor, so it answers without a request. */
  lookup(uri: string, version: number, position: Pos): Stream | undefined {
    const s = this.byDoc.get(uri);
    return s && s.version === version && samePos(s.position, position) && s.items.size > 0 ? s : undefined;
  }

  /**
   * Record the answer to a request (items that carry a streamId). Notifications may have come first: their
   * texts are newer than the response's and are kept. Returns the stream, whose items are what to show now.
   */
  onResponse(uri: string, version: number, position: Pos, streamId: string, items: StreamItem[]): Stream | undefined {
    if (this.retired.has(streamId)) {
      return undefined;
    }
    let s = this.byDoc.get(uri);
    if (!s || s.streamId !== streamId) {
      if (s) {
        this.retire(s.streamId);
      }
      s = { streamId, uri, version, position, items: new Map(), served: new Map(), done: false };
      this.byDoc.set(uri, s);
    }
    s.version = version;
    s.position = position;
    for (const item of items) {
      const known = s.items.get(item.index);
      if (!known || !known.text.startsWith(item.text)) {
        s.items.set(item.index, { ...item });
      }
    }
    this.markServed(s);
    return s;
  }

  /**
   * Apply a notification. Returns the stream when its text grew beyond what the editor was given (the caller
   * then asks the editor to fetch inline suggestions again), else undefined.
   */
  onNotification(n: StreamNotification): Stream | undefined {
    if (this.retired.has(n.streamId)) {
      return undefined;
    }
    let s = this.byDoc.get(n.uri);
    if (n.cancelled) {
      if (s?.streamId === n.streamId) {
        this.byDoc.delete(n.uri);
      }
      this.retire(n.streamId);
      return undefined;
    }
    const shown = this.currentVersion(n.uri);
    if (shown !== undefined && n.version < shown) {
      return undefined;
    }
    if (s && s.streamId !== n.streamId) {
      if (n.version < s.version || isOlderRequest(n.requestId, s.requestId)) {
        return undefined;
      }
      this.retire(s.streamId);
      s = undefined;
    }
    if (!s) {
      // The notification overtook the response: the range ends at the request's cursor.
      s = { streamId: n.streamId, uri: n.uri, version: n.version, position: n.range.end, items: new Map(), served: new Map(), done: false };
      this.byDoc.set(n.uri, s);
    }
    s.requestId = n.requestId ?? s.requestId;
    s.items.set(n.index, { index: n.index, text: n.text, range: n.range });
    s.done = n.done;
    return this.grew(s) ? s : undefined;
  }

  /** What the editor is given now for the stream; remembered so that only growth triggers a refresh. */
  markServed(s: Stream): void {
    for (const [index, item] of s.items) {
      s.served.set(index, item.text);
    }
  }

  /** End the stream (accepted, dismissed, document closed): later notifications for it are ignored. */
  end(streamId: string): Stream | undefined {
    this.retire(streamId);
    for (const [uri, s] of this.byDoc) {
      if (s.streamId === streamId) {
        this.byDoc.delete(uri);
        return s;
      }
    }
    return undefined;
  }

  /** Forget a document's stream (closed, or edited away from the stream's cursor). */
  drop(uri: string): Stream | undefined {
    const s = this.byDoc.get(uri);
    if (s) {
      this.byDoc.delete(uri);
      this.retire(s.streamId);
    }
    return s;
  }

  /** Whether an item's text differs from what the editor was last given. */
  grew(s: Stream): boolean {
    for (const [index, item] of s.items) {
      if (s.served.get(index) !== item.text) {
        return true;
      }
    }
    return false;
  }

  private retire(streamId: string): void {
    if (this.retired.has(streamId)) {
      return;
    }
    this.retired.add(streamId);
    this.retiredOrder.push(streamId);
    if (this.retiredOrder.length > 256) {
      this.retired.delete(this.retiredOrder.shift()!);
    }
  }
}

/** True when both ids are numbers (vscode-jsonrpc counts up) and `a` was sent before `b`. */
function isOlderRequest(a: number | string | undefined, b: number | string | undefined): boolean {
  return typeof a === 'number' && typeof b === 'number' && a < b;
}
