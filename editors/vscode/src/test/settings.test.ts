// Settings: what the server is sent, and how the server command is found.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Env, Settings, readSettings, resolveServer, serverSettings } from '../common/settings';

function settings(values: Record<string, unknown> = {}): Settings {
  return readSettings(<T>(key: string, fallback: T) => (key in values ? (values[key] as T) : fallback));
}

function env(executables: string[], extra: Partial<Env> = {}): Env {
  return { PATH: '/usr/bin:/opt/venv/bin', home: '/home/u', workspaceFolder: '/ws', isExecutable: (f) => executables.includes(f), ...extra };
}

test('server settings use the server names', () => {
  assert.deepEqual(serverSettings(settings()), { backend: 'local', debounce_ms: 'auto', model: { engine: 'auto', path: null, warm_on_open: true } });
  const s = settings({ backend: 'cerebras-wse3', servedModel: 'llama-3.1-70b', debounceMs: 150, 'model.engine': 'ngram', 'model.path': '/m.gguf', 'model.warmOnOpen': false });
  assert.deepEqual(serverSettings(s), {
    backend: 'cerebras-wse3',
    served_model: 'llama-3.1-70b',
    debounce_ms: 150,
    model: { engine: 'ngram', path: '/m.gguf', warm_on_open: false },
  });
  assert.equal(settings({ debounceMs: -3 }).debounceMs, 'auto');
  assert.equal(settings({ debounceMs: 'soon' }).debounceMs, 'auto');
});

test('serverPath, then pythonPath, then sparkls on PATH', () => {
  const all = ['/ws/.venv/bin/sparkls', '/py/bin/python', '/opt/venv/bin/sparkls'];
  assert.deepEqual(resolveServer(settings({ serverPath: '${workspaceFolder}/.venv/bin/sparkls', pythonPath: '/py/bin/python' }), env(all)), {
    command: '/ws/.venv/bin/sparkls',
    args: ['serve'],
  });
  assert.deepEqual(resolveServer(settings({ serverPath: '.venv/bin/sparkls' }), env(all)), { command: '/ws/.venv/bin/sparkls', args: ['serve'] });
  assert.deepEqual(resolveServer(settings({ pythonPath: '/py/bin/python' }), env(all)), { command: '/py/bin/python', args: ['-m', 'sparkls.server', 'serve'] });
  assert.deepEqual(resolveServer(settings(), env(all)), { command: '/opt/venv/bin/sparkls', args: ['serve'] });
  assert.deepEqual(resolveServer(settings({ pythonPath: '~/py/bin/python' }), env(['/home/u/py/bin/python'])), {
    command: '/home/u/py/bin/python',
    args: ['-m', 'sparkls.server', 'serve'],
  });
});

test('a missing server is an error that names the settings', () => {
  const missing = resolveServer(settings(), env([]));
  assert.ok('error' in missing && /sparkls\.serverPath/.test(missing.error) && /sparkls\.pythonPath/.test(missing.error));
  const bad = resolveServer(settings({ serverPath: '/nope/sparkls' }), env([]));
  assert.ok('error' in bad && bad.error.includes('/nope/sparkls'));
});
