// Next edits in VS Code with stable API only: after a change, ask the server (`textDocument/copilotInlineEdit`) for the
// related edit elsewhere, draw it where it applies (old text struck through, new text after it, a hover saying what Tab
// does), and bind Tab (context key `sparkls.nextEditVisible`) to jump there, then apply it as one undo step.
import * as vscode from 'vscode';
import { ExecuteCommandRequest } from 'vscode-languageclient/node';
import { Commands, Notifications } from './common/constants';
import { LANGUAGES } from './common/server';
import { InlineEdit, editId, editToShow, tabAction } from './nextEditState';
import type { Sparkls } from './sparkls';

export const INLINE_EDIT = 'textDocument/copilotInlineEdit';
const CONTEXT = 'sparkls.nextEditVisible';
/** Wait this long after the last change before asking (typing a name letter by letter asks once). */
const DEBOUNCE_MS = 100;

interface Shown {
  doc: vscode.TextDocument;
  edit: InlineEdit;
}

export class NextEdits implements vscode.Disposable {
  private shown: Shown | undefined;
  private timer: NodeJS.Timeout | undefined;
  private asked = 0; // the newest request: older answers are dropped
  private readonly removed = vscode.window.createTextEditorDecorationType({
    textDecoration: 'line-through',
    backgroundColor: new vscode.ThemeColor('diffEditor.removedTextBackground'),
  });
  private readonly added = vscode.window.createTextEditorDecorationType({
    after: { backgroundColor: new vscode.ThemeColor('diffEditor.insertedTextBackground'), margin: '0 0 0 1px' },
  });
  private readonly disposables: vscode.Disposable[];

  constructor(private readonly s: Sparkls) {
    this.disposables = [
      this.removed,
      this.added,
      vscode.commands.registerCommand(Commands.nextEditTab, () => this.tab()),
      vscode.commands.registerCommand(Commands.nextEditDismiss, () => this.dismiss()),
      vscode.workspace.onDidChangeTextDocument((e) => this.onChange(e)),
      vscode.window.onDidChangeActiveTextEditor(() => void this.clear()),
    ];
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.disposables.forEach((d) => d.dispose());
  }

  private onChange(e: vscode.TextDocumentChangeEvent): void {
    if (e.contentChanges.length === 0 || e.document !== vscode.window.activeTextEditor?.document) {
      return;
    }
    if (this.shown && this.shown.doc === e.document) {
      void this.clear(); // computed for the text before this change
    }
    if (!LANGUAGES.includes(e.document.languageId)) {
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.request(), DEBOUNCE_MS);
  }

  /** Ask for the active editor's next edits at its cursor, and show the first. */
  async request(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const client = this.s.client;
    if (!editor || !client || this.s.state !== 'running' || !this.s.settings().enable) {
      return;
    }
    const doc = editor.document;
    const version = doc.version;
    const uri = this.s.protocolUri(doc.uri);
    const id = ++this.asked;
    let result: unknown;
    try {
      const position = editor.selection.active;
      result = await client.sendRequest(INLINE_EDIT, { textDocument: { uri, version }, position: { line: position.line, character: position.character } });
    } catch (error) {
      this.s.log.warn(`${INLINE_EDIT}: ${String(error)}`);
      return;
    }
    if (id !== this.asked || doc.version !== version || vscode.window.activeTextEditor !== editor) {
      return; // superseded, or the text changed meanwhile
    }
    const edit = editToShow(result, uri, version);
    await this.clear();
    if (edit) {
      await this.show(editor, edit);
    }
  }

  private async show(editor: vscode.TextEditor, edit: InlineEdit): Promise<void> {
    const range = new vscode.Range(edit.range.start.line, edit.range.start.character, edit.range.end.line, edit.range.end.character);
    const old = editor.document.getText(range);
    const hover = new vscode.MarkdownString();
    hover.appendMarkdown('**sparkls: next edit** — Tab jumps here, Tab again applies it, Escape hides it\n\n');
    hover.appendCodeblock(`- ${old}\n+ ${edit.text}`, 'diff');
    this.shown = { doc: editor.document, edit };
    editor.setDecorations(this.removed, old ? [{ range, hoverMessage: hover }] : []);
    editor.setDecorations(this.added, [
      { range: new vscode.Range(range.end, range.end), hoverMessage: old ? undefined : hover, renderOptions: { after: { contentText: edit.text.replace(/\n/g, '⏎') } } },
    ]);
    await vscode.commands.executeCommand('setContext', CONTEXT, true);
    this.s.client?.sendNotification(Notifications.didShowInlineEdit, { item: edit }).catch(() => undefined);
  }

  /** Remove the drawn edit (nothing is told to the server). */
  async clear(): Promise<void> {
    if (!this.shown) {
      return;
    }
    this.shown = undefined;
    for (const editor of vscode.window.visibleTextEditors) {
      editor.setDecorations(this.removed, []);
      editor.setDecorations(this.added, []);
    }
    await vscode.commands.executeCommand('setContext', CONTEXT, false);
  }

  /** Tab while an edit is shown: jump to it; with the cursor on it, apply it, report it and ask for the next. */
  async tab(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const shown = this.shown;
    if (!editor || !shown || editor.document !== shown.doc) {
      await this.clear();
      return;
    }
    const { edit } = shown;
    const r = edit.range;
    const start = new vscode.Position(r.start.line, r.start.character);
    const action = tabAction(edit, editor.document.version, editor.selection.active);
    if (action === 'stale') {
      await this.clear(); // never apply an edit to a text it was not computed for
      return;
    }
    if (action === 'jump') {
      editor.selection = new vscode.Selection(start, start);
      editor.revealRange(new vscode.Range(start, start), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      return;
    }
    await this.clear();
    const range = new vscode.Range(start, new vscode.Position(r.end.line, r.end.character));
    const applied = await editor.edit((b) => b.replace(range, edit.text), { undoStopBefore: true, undoStopAfter: true });
    if (!applied) {
      return;
    }
    const end = editor.document.positionAt(editor.document.offsetAt(start) + edit.text.length);
    editor.selection = new vscode.Selection(end, end);
    if (edit.command && this.s.client) {
      const params = { command: edit.command.command, arguments: edit.command.arguments ?? [] };
      this.s.client.sendRequest(ExecuteCommandRequest.type, params).catch((e) => this.s.log.warn(String(e)));
    }
    clearTimeout(this.timer);
    await this.request(); // chaining: the applied edit continues the pattern
  }

  /** Escape while an edit is shown: hide it and tell the server it was turned down. */
  async dismiss(): Promise<void> {
    const id = this.shown && editId(this.shown.edit);
    await this.clear();
    if (id && this.s.client) {
      this.s.client.sendNotification(Notifications.didDismiss, { id, reason: 'dismissed' }).catch(() => undefined);
    }
  }
}
