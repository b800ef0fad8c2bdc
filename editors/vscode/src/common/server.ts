// Creating the language client: the stream opt-in, the inline middleware, settings mapped for the server.
import * as vscode from 'vscode';
import {
  ClientCapabilities,
  FeatureState,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerCapabilities,
  StaticFeature,
} from 'vscode-languageclient/node';
import type { StreamingInline } from '../inline';
import { CLIENT_ID, CLIENT_NAME, Commands, SECTION } from './constants';
import { ServerCommand, Settings, serverSettings } from './settings';

export const LANGUAGES = ['python', 'lua', 'javascript', 'typescript', 'go', 'rust', 'c', 'cpp'];

/**
 * Opts in to streamed ghost text (`experimental.sparkls.inlineCompletionStream`) and reads the server's answer.
 * It also keeps the client from registering VS Code commands for the server's `sparkls.*` commands that the
 * extension registers itself (a quick pick for `sparkls.selectBackend`, stream bookkeeping for `sparkls.accept`).
 */
export class SparklsFeature implements StaticFeature {
  /** The server confirmed streaming. */
  streaming = false;
  /** The server's `executeCommandProvider.commands`, before filtering. */
  serverCommands = new Set<string>();

  constructor(private readonly optIn: boolean) {}

  getState(): FeatureState {
    return { kind: 'static' };
  }

  fillClientCapabilities(capabilities: ClientCapabilities): void {
    if (this.optIn) {
      const experimental = (capabilities.experimental ?? {}) as Record<string, unknown>;
      capabilities.experimental = { ...experimental, sparkls: { inlineCompletionStream: true } };
    }
  }

  preInitialize(capabilities: ServerCapabilities): void {
    const provider = capabilities.executeCommandProvider;
    this.serverCommands = new Set(provider?.commands ?? []);
    if (provider?.commands) {
      const own = new Set<string>(Object.values(Commands));
      provider.commands = provider.commands.filter((c) => !own.has(c));
    }
  }

  initialize(capabilities: ServerCapabilities): void {
    const experimental = capabilities.experimental as { sparkls?: { inlineCompletionStream?: unknown } } | undefined;
    this.streaming = this.optIn && experimental?.sparkls?.inlineCompletionStream === true;
  }

  clear(): void {
    this.streaming = false;
  }
}

export function createClient(
  command: ServerCommand,
  settings: Settings,
  log: vscode.LogOutputChannel,
  inline: StreamingInline<vscode.TextDocument, vscode.InlineCompletionItem>,
  currentSettings: () => Settings,
): { client: LanguageClient; feature: SparklsFeature } {
  const documentSelector = LANGUAGES.flatMap((language) => [
    { scheme: 'file', language },
    { scheme: 'untitled', language },
  ]);
  const clientOptions: LanguageClientOptions = {
    documentSelector,
    outputChannel: log,
    traceOutputChannel: log,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    initializationOptions: serverSettings(settings),
    middleware: {
      provideInlineCompletionItems: (document, position, context, token, next) =>
        inline.provide(document, position, async () => next(document, position, context, token)),
      workspace: {
        // A server that pulls `sparkls` gets its own setting names, not the extension's.
        configuration: async (params, token, next) => {
          const result = await next(params, token);
          if (!Array.isArray(result)) {
            return result;
          }
          return params.items.map((item, i) => (item.section === SECTION ? serverSettings(currentSettings()) : result[i]));
        },
      },
    },
  };
  // No `transport`: TransportKind.stdio would append `--stdio` to the arguments.
  const client = new LanguageClient(CLIENT_ID, CLIENT_NAME, { command: command.command, args: command.args }, clientOptions);
  const feature = new SparklsFeature(settings.streaming);
  client.registerFeature(feature);
  return { client, feature };
}
