// sparkls for VS Code: starts `sparkls serve`, shows its streamed ghost text, a status bar item and commands.
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { Commands } from './common/constants';
import { NextEdits } from './nextEdit';
import { Sparkls } from './sparkls';

let sparkls: Sparkls | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel('sparkls', { log: true });
  const statusItem = vscode.window.createStatusBarItem('sparkls.status', vscode.StatusBarAlignment.Right, 100);
  statusItem.name = 'sparkls';
  statusItem.command = Commands.selectBackend;
  statusItem.show();
  sparkls = new Sparkls(log, statusItem);
  context.subscriptions.push(log, statusItem, ...registerCommands(sparkls), new NextEdits(sparkls));
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration((e) => sparkls?.onConfigurationChanged(e)));
  await sparkls.restart();
}

export async function deactivate(): Promise<void> {
  await sparkls?.stop();
}
