// Identifiers shared by the extension's modules.

export const CLIENT_ID = 'sparkls';
export const CLIENT_NAME = 'sparkls';
export const SECTION = 'sparkls';

/** Commands the extension registers itself (the server's own `sparkls.*` commands are not registered for it). */
export const Commands = {
  selectBackend: 'sparkls.selectBackend',
  toggle: 'sparkls.toggleCompletions',
  restart: 'sparkls.restart',
  showLog: 'sparkls.showLog',
  accept: 'sparkls.accept',
  dismiss: 'sparkls.dismiss',
  acceptShown: 'sparkls.acceptShown',
  nextEditTab: 'sparkls.nextEdit.tab',
  nextEditDismiss: 'sparkls.nextEdit.dismiss',
} as const;

export const Notifications = {
  stream: 'sparkls/inlineCompletionStream',
  status: 'sparkls/status',
  didDismiss: 'sparkls/didDismiss',
  didShowCompletion: 'textDocument/didShowCompletion',
  didShowInlineEdit: 'textDocument/didShowInlineEdit',
} as const;

/** The built-in backends (`sparkls backends list`); the quick pick also offers the current one and free input. */
export const BUILTIN_BACKENDS = ['local', 'cerebras-wse3', 'nvidia-blackwell', 'nvidia-hopper'];

/** Wait this long after the last settings change before restarting the server (settings arrive in bursts). */
export const RESTART_DELAY_MS = 1000;

/** How long after a refresh's fetch is answered VS Code may still be drawing the answer (seen in the e2e tests). */
export const LATE_DRAW_MS = 100;
