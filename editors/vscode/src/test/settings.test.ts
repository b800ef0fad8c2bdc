// Settings: what the server is sent, and how the server command is found.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Env, MACHINE_KEYS, Settings, readSettings, resolveServer, serverSettings, trustedGetter } from '../common/settings';

function settings(values: Record<string, unknown> = {}): Settings {
  return readSettings(<T>(key: string, fallback: T) => (key in values ? (values[key] as T) : fallback));
}

function env(executables: string[], extra: Partial<Env> = {}): Env {
  return { PATH: '/usr/bin:/opt/venv/bin', home: '/home/u', workspaceFolder: '/ws', isExecutable: (f) => executables.includes(f), ...extra };
}

test('server settings use the server names', () => {
  assert.deepEqual(serverSettings(settings()), { backend: 'auto', debounce_ms: 'auto', model: { engine: 'auto', path: null, warm_on_open: true } });
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

test('an untrusted workspace cannot choose the server, the interpreter or the model files', () => {
  const workspace: Record<string, unknown> = { serverPath: '/ws/evil', pythonPath: '/ws/py', 'model.path': '/ws/m.gguf', servedModel: '/ws/m.toml', backend: 'cerebras-wse3' };
  const user: Record<string, unknown> = { pythonPath: '/usr/bin/python3' };
  const get = <T>(key: string, fallback: T) => (key in workspace ? (workspace[key] as T) : fallback);
  const inspect = (key: string) => ({ globalValue: user[key] });
  const untrusted = readSettings(trustedGetter(get, inspect, false));
  assert.equal(untrusted.serverPath, '');
  assert.equal(untrusted.pythonPath, '/usr/bin/python3');
  assert.equal(untrusted.modelPath, '');
  assert.equal(untrusted.servedModel, '');
  assert.equal(untrusted.backend, 'cerebras-wse3'); // harmless settings still apply
  assert.deepEqual(resolveServer(untrusted, env(['/usr/bin/python3', '/ws/evil'])), { command: '/usr/bin/python3', args: ['-m', 'sparkls.server', 'serve'] });
  const trusted = readSettings(trustedGetter(get, inspect, true));
  assert.equal(trusted.serverPath, '/ws/evil');
});

test('package.json keeps executable and file settings to the machine and restricts them when untrusted', () => {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
  const props = pkg.contributes.configuration.properties;
  for (const key of MACHINE_KEYS) {
    assert.equal(props[`sparkls.${key}`].scope, 'machine-overridable', key);
  }
  const untrusted = pkg.capabilities.untrustedWorkspaces;
  assert.equal(untrusted.supported, 'limited');
  assert.deepEqual([...untrusted.restrictedConfigurations].sort(), MACHINE_KEYS.map((k) => `sparkls.${k}`).sort());
});
