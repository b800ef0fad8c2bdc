// The extension's state: the language client (replaced on restart), the stream store, the status bar item.
import * as fs from 'fs';
import * as os from 'os';
import * as vscode from 'vscode';
import { DidChangeConfigurationNotification, LanguageClient, State } from 'vscode-languageclient/node';
import { Commands, LATE_DRAW_MS, Notifications, RESTART_DELAY_MS, SECTION } from './common/constants';
import { SparklsFeature, createClient } from './common/server';
import { RESTART_KEYS, SERVER_KEYS, Settings, readSettings, resolveServer, serverSettings, trustedGetter } from './common/settings';
import { StreamingInline } from './inline';
import { Status, formatStatus } from './status';
import { StreamNotification, StreamStore } from './stream';

/** One per window; `restart()` (re)creates the client from the settings. */
export class Sparkls {
  client: LanguageClient | undefined;
  feature: SparklsFeature | undefined;
  status: Status | undefined;
  state: 'starting' | 'running' | 'stopped' = 'stopped';
  readonly store = new StreamStore((uri) => this.openVersion(uri));
  readonly inline: StreamingInline<vscode.TextDocument, vscode.InlineCompletionItem>;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Streams whose showing was reported (textDocument/didShowCompletion). */
  private readonly reported = new Set<string>();
  private restarting: Promise<void> = Promise.resolve();
  /** Refreshes started: only the latest one's end clears `sparkls.refreshing`. */
  private refreshes = 0;

  constructor(
    readonly log: vscode.LogOutputChannel,
    readonly statusItem: vscode.StatusBarItem,
  ) {
    this.inline = new StreamingInline(this.store, {
      uri: (doc) => this.protocolUri(doc.uri),
      enabled: () => this.settings().enable,
      streaming: () => this.feature?.streaming ?? false,
      makeItem: (text, r, streamId, index) =>
        new vscode.InlineCompletionItem(text, new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character), {
          title: 'sparkls: accept',
          command: Commands.accept,
          arguments: [{ streamId, index }],
        }),
      shown: (streamId, items) => {
        if (!this.reported.has(streamId) && items.length > 0 && this.client) {
          this.reported.add(streamId);
          const item = { insertText: items[0].insertText, command: items[0].command };
          this.client.sendNotification(Notifications.didShowCompletion, { item }).catch(() => undefined);
        }
      },
      cursor: (uri, version) => {
        const editor = vscode.window.activeTextEditor;
        const doc = editor?.document;
        return doc && editor.selection.isEmpty && doc.version === version && this.protocolUri(doc.uri) === uri ? editor.selection.active : undefined;
      },
      // VS Code does not fetch again for an explicit trigger at the version and cursor of its current explicit
      // result (InlineCompletionsSource: `request.satisfies`), and an explicit fetch keeps the item on show. So:
      // hide (which clears that result), then trigger; the provider answers from the stream store at once.
      // All are sent at once (they run in order) so the ghost text is gone for one round trip, not two. Until the
      // fetch is answered (the trigger command returns before it) and a moment after, while VS Code draws the answer,
      // `sparkls.refreshing` keeps Escape bound to sparkls.dismiss and Tab to sparkls.acceptShown, though no
      // suggestion is visible for that moment: a Tab then inserts what was drawn, never an indent.
      trigger: async (fetched) => {
        const run = (command: string, ...args: unknown[]) => vscode.commands.executeCommand(command, ...args);
        const refresh = ++this.refreshes;
        const steps = [run('setContext', 'sparkls.refreshing', true), run('editor.action.inlineSuggest.hide')];
        try {
          await Promise.all([...steps, run('editor.action.inlineSuggest.trigger')]);
          await fetched;
        } finally {
          setTimeout(() => {
            if (refresh === this.refreshes) {
              void run('setContext', 'sparkls.refreshing', false);
            }
          }, LATE_DRAW_MS);
        }
      },
    });
  }

  settings(): Settings {
    const config = vscode.workspace.getConfiguration(SECTION);
    const get = <T>(key: string, fallback: T): T => config.get(key, fallback);
    return readSettings(trustedGetter(get, (key) => config.inspect(key), vscode.workspace.isTrusted));
  }

  protocolUri(uri: vscode.Uri): string {
    return this.client ? this.client.code2ProtocolConverter.asUri(uri) : uri.toString();
  }

  private openVersion(uri: string): number | undefined {
    return vscode.workspace.textDocuments.find((d) => this.protocolUri(d.uri) === uri)?.version;
  }

  /** Stop the running server (if any) and start one with the current settings. Never throws; one at a time. */
  restart(): Promise<void> {
    this.restarting = this.restarting.then(() => this.start());
    return this.restarting;
  }

  private async start(): Promise<void> {
    await this.stop();
    const settings = this.settings();
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const isExecutable = (file: string) => {
      try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    };
    const command = resolveServer(settings, { PATH: process.env.PATH ?? '', home: os.homedir(), workspaceFolder: folder, isExecutable });
    if ('error' in command) {
      this.fail(command.error);
      return;
    }
    this.log.info(`starting ${command.command} ${command.args.join(' ')}`);
    const { client, feature } = createClient(command, settings, this.log, this.inline, () => this.settings());
    client.onNotification(Notifications.stream, (n: StreamNotification) => {
      this.log.trace(`stream ${n.streamId}[${n.index}] v${n.version}${n.done ? ' done' : ''}: ${JSON.stringify(n.text)}`);
      this.inline.onNotification(n);
    });
    client.onNotification(Notifications.status, (s: Status) => this.showStatus(s));
    client.onDidChangeState(({ newState }) => {
      if (this.client === client) {
        this.showStatus(undefined, newState === State.Running ? 'running' : newState === State.Starting ? 'starting' : 'stopped');
      }
    });
    this.client = client;
    this.feature = feature;
    this.showStatus(undefined, 'starting');
    try {
      await client.start();
      this.showStatus(undefined, 'running');
      await vscode.commands.executeCommand('setContext', 'sparkls.streaming', feature.streaming);
      this.log.info(`server started; streamed ghost text ${feature.streaming ? 'on' : 'off (the server did not confirm it)'}`);
    } catch (error) {
      this.fail(`the sparkls server did not start: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.feature = undefined;
    if (client) {
      try {
        await client.stop();
      } catch (error) {
        this.log.error(`stopping the server: ${String(error)}`);
      }
    }
    this.showStatus(undefined, 'stopped');
  }

  /** Settings changed: server settings go to the running server, the others need a restart (debounced). */
  onConfigurationChanged(event: vscode.ConfigurationChangeEvent): void {
    if (!event.affectsConfiguration(SECTION)) {
      return;
    }
    if (RESTART_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`))) {
      clearTimeout(this.restartTimer);
      this.restartTimer = setTimeout(() => void this.restart(), RESTART_DELAY_MS);
      return;
    }
    const current = this.settings();
    if (SERVER_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`))) {
      const settings = { [SECTION]: serverSettings(current) };
      this.client?.sendNotification(DidChangeConfigurationNotification.type, { settings }).catch((e) => this.log.error(String(e)));
    }
    if (this.status && this.status.backend !== current.backend) {
      this.status = { backend: current.backend, engine: this.status.engine }; // until the server's next status
    }
    this.showStatus(this.status);
  }

  showStatus(status: Status | undefined, state = this.state): void {
    this.status = status ?? this.status;
    this.state = state;
    const view = formatStatus(this.status ?? { backend: this.settings().backend }, this.settings().enable, state);
    this.statusItem.text = view.text;
    this.statusItem.tooltip = view.tooltip;
    this.statusItem.accessibilityInformation = { label: `sparkls status: ${view.text.replace(/\$\([^)]*\)\s*/g, '')}` };
  }

  private fail(message: string): void {
    this.log.error(message);
    this.showStatus(undefined, 'stopped');
    void vscode.window.showErrorMessage(`sparkls: ${message}`, 'Open Settings').then((choice) => {
      if (choice) {
        void vscode.commands.executeCommand('workbench.action.openSettings', SECTION);
      }
    });
  }
}
