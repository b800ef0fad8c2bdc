// The extension's settings, how they become the server's `sparkls` settings, and how the server is found.
// Pure (the `get` accessor and file checks are passed in), tested under node.
import * as path from 'path';

export interface Settings {
  serverPath: string;
  pythonPath: string;
  backend: string;
  servedModel: string;
  modelEngine: string;
  modelPath: string;
  warmOnOpen: boolean;
  debounceMs: number | 'auto';
  enable: boolean;
  streaming: boolean;
}

/** Reads the `sparkls` section through `get` (a vscode.WorkspaceConfiguration's). */
export function readSettings(get: <T>(key: string, fallback: T) => T): Settings {
  const debounce = get<unknown>('debounceMs', 'auto');
  return {
    serverPath: get('serverPath', '').trim(),
    pythonPath: get('pythonPath', '').trim(),
    backend: get('backend', 'auto').trim() || 'auto',
    servedModel: get('servedModel', '').trim(),
    modelEngine: get('model.engine', 'auto'),
    modelPath: get('model.path', '').trim(),
    warmOnOpen: get<unknown>('model.warmOnOpen', true) !== false,
    debounceMs: typeof debounce === 'number' && Number.isFinite(debounce) && debounce >= 0 ? Math.round(debounce) : 'auto',
    enable: get('enable', true),
    streaming: get('streaming', true),
  };
}

/**
 * Settings that choose a program to run or a file to read. package.json gives them `machine-overridable` scope
 * and lists them as restricted in untrusted workspaces; `trustedGetter` enforces the same here.
 */
export const MACHINE_KEYS = ['serverPath', 'pythonPath', 'model.path', 'servedModel'];

/** The parts of a `WorkspaceConfiguration.inspect` result that `trustedGetter` reads. */
export interface Inspected {
  globalValue?: unknown;
}

/** A `get` for `readSettings` that, in an untrusted workspace, reads MACHINE_KEYS from the user's settings only. */
export function trustedGetter(
  get: <T>(key: string, fallback: T) => T,
  inspect: (key: string) => Inspected | undefined,
  trusted: boolean,
): <T>(key: string, fallback: T) => T {
  return <T>(key: string, fallback: T): T => {
    if (trusted || !MACHINE_KEYS.includes(key)) {
      return get(key, fallback);
    }
    const user = inspect(key)?.globalValue;
    return user === undefined ? fallback : (user as T);
  };
}

/** The server's `sparkls` settings (README "Settings"), sent as initializationOptions and didChangeConfiguration. */
export function serverSettings(s: Settings): Record<string, unknown> {
  return {
    backend: s.backend,
    ...(s.servedModel ? { served_model: s.servedModel } : {}),
    debounce_ms: s.debounceMs,
    model: { engine: s.modelEngine, path: s.modelPath || null, warm_on_open: s.warmOnOpen },
  };
}

/** Settings whose change needs a new server process. */
export const RESTART_KEYS = ['serverPath', 'pythonPath', 'streaming'];

/** Settings the running server is sent (didChangeConfiguration) when they change; the rest are the extension's. */
export const SERVER_KEYS = ['backend', 'servedModel', 'model', 'debounceMs'];

export interface ServerCommand {
  command: string;
  args: string[];
}

export interface Env {
  /** The PATH to search for `sparkls`. */
  PATH: string;
  home: string;
  workspaceFolder?: string;
  isExecutable(file: string): boolean;
}

/** `${workspaceFolder}`, `~` and relative paths (to the workspace folder) made absolute. */
export function expandPath(p: string, env: Env): string {
  let out = p.replace(/\$\{workspaceFolder\}/g, env.workspaceFolder ?? '.').replace(/\$\{userHome\}/g, env.home);
  if (out === '~' || out.startsWith('~/')) {
    out = path.join(env.home, out.slice(1));
  }
  if (!path.isAbsolute(out) && env.workspaceFolder && out.includes(path.sep)) {
    out = path.join(env.workspaceFolder, out);
  }
  return out;
}

export function which(name: string, env: Env): string | undefined {
  for (const dir of env.PATH.split(path.delimiter)) {
    if (dir && env.isExecutable(path.join(dir, name))) {
      return path.join(dir, name);
    }
  }
  return undefined;
}

/**
 * How to start the server: `sparkls.serverPath` (`<it> serve`), else `sparkls.pythonPath`
 * (`<it> -m sparkls.server serve`), else `sparkls serve` from PATH. No `--stdio`: the server speaks stdio by default.
 */
export function resolveServer(s: Settings, env: Env): ServerCommand | { error: string } {
  if (s.serverPath) {
    const command = expandPath(s.serverPath, env);
    return env.isExecutable(command) || !command.includes(path.sep)
      ? { command, args: ['serve'] }
      : { error: `sparkls.serverPath ${command} is not an executable file` };
  }
  if (s.pythonPath) {
    const command = expandPath(s.pythonPath, env);
    return env.isExecutable(command) || !command.includes(path.sep)
      ? { command, args: ['-m', 'sparkls.server', 'serve'] }
      : { error: `sparkls.pythonPath ${command} is not an executable file` };
  }
  const found = which('sparkls', env);
  return found
    ? { command: found, args: ['serve'] }
    : { error: 'sparkls was not found on PATH: set sparkls.serverPath (the sparkls executable) or sparkls.pythonPath (a Python with sparkls installed)' };
}
