// The status bar's text from `sparkls/status`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatStatus } from '../status';

test('backend and measured tokens/s, with the modelled rate and first-token time in the tooltip', () => {
  const view = formatStatus(
    { backend: 'cerebras-wse3', engine: 'ngram', modelledTokensPerSecond: 1000, measuredTokensPerSecond: 95.24, ttftMs: 210.4, keptUp: true },
    true,
    'running',
  );
  assert.equal(view.text, '$(zap) cerebras-wse3 95.2 tok/s');
  assert.match(view.tooltip, /modelled: 1000 tok\/s/);
  assert.match(view.tooltip, /first token: 210 ms/);
});

test('no rate yet, fell behind, off, starting and stopped', () => {
  assert.equal(formatStatus({ backend: 'local', measuredTokensPerSecond: null }, true, 'running').text, '$(zap) local');
  assert.equal(formatStatus({ backend: 'local', measuredTokensPerSecond: 0 }, true, 'running').text, '$(zap) local');
  assert.equal(formatStatus({ backend: 'nvidia-hopper', measuredTokensPerSecond: 120, keptUp: false }, true, 'running').text, '$(zap) nvidia-hopper 120 tok/s $(warning)');
  assert.equal(formatStatus({ backend: 'local' }, false, 'running').text, '$(circle-slash) sparkls');
  assert.equal(formatStatus(undefined, true, 'starting').text, '$(sync~spin) sparkls');
  assert.equal(formatStatus(undefined, true, 'stopped').text, '$(error) sparkls');
});

test('the tooltip counts what became of the suggestions', () => {
  const view = formatStatus(
    { backend: 'local', suggestions: { completion: { shown: 10, accepted: 3, partiallyAccepted: 1, acceptRate: 0.4 }, nextEdit: { shown: 0 } } },
    true,
    'running',
  );
  assert.match(view.tooltip, /completions: 10 shown, 3 accepted, 1 in part, 40% accepted/);
  assert.doesNotMatch(view.tooltip, /next edits/);
});
