// The extension's commands and the editor events that end a stream (accept, dismiss, edits).
import * as vscode from 'vscode';
import { ExecuteCommandRequest } from 'vscode-languageclient/node';
import { BUILTIN_BACKENDS, Commands, LATE_DRAW_MS, Notifications, SECTION } from './common/constants';
import type { Sparkls } from './sparkls';
import { isDismissal } from './inline';
import { advance, partialAccept } from './nextEditState';

/** Where a setting the user changes through a command is written: where it is already set, else user settings. */
function target(key: string): vscode.ConfigurationTarget {
  const inspect = vscode.workspace.getConfiguration(SECTION).inspect(key);
  return inspect?.workspaceFolderValue !== undefined
    ? vscode.ConfigurationTarget.WorkspaceFolder
    : inspect?.workspaceValue !== undefined
      ? vscode.ConfigurationTarget.Workspace
      : vscode.ConfigurationTarget.Global;
}

/** `sparkls.selectBackend`: a quick pick (or the argument), sent as workspace/executeCommand, then kept in settings. */
async function selectBackend(s: Sparkls, name?: unknown): Promise<void> {
  let backend = typeof name === 'string' ? name : undefined;
  if (!backend) {
    const current = s.status?.backend ?? s.settings().backend;
    const names = [...new Set([current, ...BUILTIN_BACKENDS])];
    const other = 'Other…';
    const items = [...names.map((label) => ({ label, description: label === current ? 'current' : undefined })), { label: other }];
    const picked = await vscode.window.showQuickPick(items, { title: 'sparkls: backend whose cadence paces the ghost text' });
    backend = picked?.label === other ? await vscode.window.showInputBox({ prompt: 'Backend name (see `sparkls backends list`)' }) : picked?.label;
  }
  if (!backend) {
    return;
  }
  if (!s.client || s.state !== 'running') {
    void vscode.window.showWarningMessage('sparkls: the server is not running');
    return;
  }
  try {
    await s.client.sendRequest(ExecuteCommandRequest.type, { command: Commands.selectBackend, arguments: [backend] });
  } catch (error) {
    void vscode.window.showErrorMessage(`sparkls: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  s.log.info(`backend: ${backend}`);
  await vscode.workspace.getConfiguration(SECTION).update('backend', backend, target('backend'));
}

/** `sparkls.accept` (the items' command): end the stream here, tell the server (docs/protocol.md "Feedback"). */
function accept(s: Sparkls, arg: unknown): void {
  const ref = arg as { streamId?: string; index?: number } | undefined;
  if (!ref?.streamId) {
    return;
  }
  s.store.end(ref.streamId);
  if (s.client && s.feature?.serverCommands.has(Commands.accept)) {
    const params = { command: Commands.accept, arguments: [{ streamId: ref.streamId, index: ref.index ?? 0, kind: 'full' }] };
    s.client.sendRequest(ExecuteCommandRequest.type, params).catch((e) => s.log.warn(`sparkls.accept: ${String(e)}`));
  }
}

/**
 * `sparkls.acceptShown`, Tab while a refresh has the streamed ghost text hidden for a moment (sparkls.ts `trigger`):
 * insert what the editor last drew, as its own Tab would have; with nothing drawn here, Tab does what it always does.
 */
async function acceptShown(s: Sparkls): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const doc = editor?.document;
  const shown = doc && editor.selection.isEmpty ? s.inline.shownItem(s.protocolUri(doc.uri), doc.version, editor.selection.active) : undefined;
  if (!editor || !shown) {
    await vscode.commands.executeCommand('tab');
    return;
  }
  accept(s, { streamId: shown.streamId, index: shown.index }); // ends the stream first: the edit is not a dismissal
  const { start, end } = shown.range;
  const range = new vscode.Range(start.line, start.character, end.line, end.character);
  await editor.edit((b) => b.replace(range, shown.text));
  await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
}

function dismiss(s: Sparkls, uri: string | undefined): void {
  const stream = uri ? s.inline.dismiss(uri) : undefined;
  if (stream && s.client) {
    s.log.debug(`dismissed ${stream.streamId}`);
    s.client.sendNotification(Notifications.didDismiss, { streamId: stream.streamId }).catch((e) => s.log.warn(String(e)));
  }
}

export function registerCommands(s: Sparkls): vscode.Disposable[] {
  const activeUri = () => {
    const doc = vscode.window.activeTextEditor?.document;
    return doc && s.protocolUri(doc.uri);
  };
  return [
    vscode.commands.registerCommand(Commands.selectBackend, (name?: unknown) => selectBackend(s, name)),
    vscode.commands.registerCommand(Commands.toggle, async () => {
      const enable = !s.settings().enable;
      await vscode.workspace.getConfiguration(SECTION).update('enable', enable, target('enable'));
      if (!enable) {
        await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
      }
      void vscode.window.setStatusBarMessage(`sparkls: inline completions ${enable ? 'on' : 'off'}`, 3000);
    }),
    vscode.commands.registerCommand(Commands.restart, () => s.restart()),
    vscode.commands.registerCommand(Commands.showLog, () => s.log.show()),
    vscode.commands.registerCommand(Commands.accept, (arg: unknown) => accept(s, arg)),
    vscode.commands.registerCommand(Commands.acceptShown, () => acceptShown(s)),
    // Escape while streamed ghost text shows: hide it, stop refreshing it, tell the server; and hide again once a
    // refresh under way is over, since VS Code may draw its answer after the first hide (seen in the e2e test).
    vscode.commands.registerCommand(Commands.dismiss, async () => {
      dismiss(s, activeUri());
      await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
      await s.inline.refreshed();
      await new Promise((resolve) => setTimeout(resolve, LATE_DRAW_MS)); // VS Code may still draw a refresh's answer
      await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
    }),
    vscode.workspace.onDidChangeTextDocument((e) => {
      const uri = s.protocolUri(e.document.uri);
      const stream = s.store.get(uri);
      if (stream && e.contentChanges.length > 0) {
        const partial = partialAccept(stream, e.contentChanges);
        if (partial && (partial.accepted > 0 || stream.done)) {
          // Part of it accepted (or typed) and the rest still matches: it answers the editor's next ask, no request.
          advance(stream, e.document.version, partial.end);
          if (partial.accepted > 0 && s.client) {
            const arg = { streamId: stream.streamId, index: partial.index, acceptedChars: partial.accepted, kind: 'word' };
            s.client.sendRequest(ExecuteCommandRequest.type, { command: Commands.accept, arguments: [arg] }).catch((err) => s.log.warn(String(err)));
          }
        } else if (isDismissal(stream, e.contentChanges)) {
          dismiss(s, uri);
        } else {
          s.store.drop(uri); // accepted or typed through: the next request takes over
        }
      }
    }),
    vscode.workspace.onDidCloseTextDocument((doc) => s.store.drop(s.protocolUri(doc.uri))),
  ];
}
