// The status bar's text and tooltip from `sparkls/status` (docs/protocol.md). Pure, tested under node.

/** Params of the `sparkls/status` notification (server/messages.py `Status`). */
export interface Status {
  backend?: string;
  engine?: string;
  kernelPath?: string | null;
  modelledTokensPerSecond?: number | null;
  measuredTokensPerSecond?: number | null;
  ttftMs?: number | null;
  keptUp?: boolean;
  requests?: number;
  typeahead?: number;
  superseded?: number;
  liveStreams?: number;
  /** Per kind (`completion`, `nextEdit`): what became of the suggestions (docs/protocol.md, "Status"). */
  suggestions?: Record<string, SuggestionCounts>;
}

/** One kind's counts in `sparkls/status` (server/messages.py `SuggestionCounts`). */
export interface SuggestionCounts {
  offered?: number;
  gated?: number;
  shown?: number;
  accepted?: number;
  partiallyAccepted?: number;
  acceptedChars?: number;
  typedPast?: number;
  dismissed?: number;
  superseded?: number;
  acceptRate?: number | null;
}

export interface StatusView {
  text: string;
  tooltip: string;
}

/** A rate to show; none for a missing or zero one (a request cancelled before its first token measures 0). */
function rate(x: number | null | undefined): string | undefined {
  return typeof x === 'number' && Number.isFinite(x) && x > 0 ? `${x >= 100 ? Math.round(x) : x.toFixed(1)} tok/s` : undefined;
}

/** `$(zap) cerebras-wse3 95 tok/s`: the backend and the live (measured) rate, else the modelled one. */
export function formatStatus(s: Status | undefined, enabled: boolean, state: 'starting' | 'running' | 'stopped'): StatusView {
  if (state !== 'running') {
    const text = state === 'starting' ? '$(sync~spin) sparkls' : '$(error) sparkls';
    return { text, tooltip: state === 'starting' ? 'sparkls: starting the server' : 'sparkls: the server is not running (see sparkls: Show Log)' };
  }
  if (!enabled) {
    return { text: '$(circle-slash) sparkls', tooltip: 'sparkls: inline completions are off (sparkls: Toggle Inline Completions)' };
  }
  const backend = s?.backend ?? 'local';
  const measured = rate(s?.measuredTokensPerSecond);
  const modelled = rate(s?.modelledTokensPerSecond);
  const text = `$(zap) ${backend}${measured ? ` ${measured}` : ''}${s?.keptUp === false ? ' $(warning)' : ''}`;
  const lines = [
    `sparkls backend: ${backend}${s?.engine ? ` (engine: ${s.engine})` : ''}`,
    `measured: ${measured ?? '–'}`,
    `modelled: ${modelled ?? '–'}`,
    `first token: ${typeof s?.ttftMs === 'number' ? `${Math.round(s.ttftMs)} ms` : '–'}`,
  ];
  if (s?.keptUp === false) {
    lines.push('local decode fell behind the backend: tokens were shown late');
  }
  for (const [kind, label] of [['completion', 'completions'], ['nextEdit', 'next edits']]) {
    const k = s?.suggestions?.[kind];
    if (k && (k.shown ?? 0) > 0) {
      const rate = typeof k.acceptRate === 'number' ? `, ${Math.round(100 * k.acceptRate)}% accepted` : '';
      lines.push(`${label}: ${k.shown} shown, ${k.accepted ?? 0} accepted, ${k.partiallyAccepted ?? 0} in part${rate}`);
    }
  }
  lines.push('Click to select a backend');
  return { text, tooltip: lines.join('\n') };
}
