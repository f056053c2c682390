/**
 * Browser tests of the editor: Debian's Chromium (/usr/bin/chromium, never a downloaded
 * browser) driven by playwright-core, against a real Node-RED process that has this package
 * installed in its user directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { FlowNode } from './node-red';

const ROOT = resolve(__dirname, '..', '..');
export const CHROMIUM = '/usr/bin/chromium';

/** Throws (so the suite fails, never skips) when Debian's Chromium is not installed. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Debian's Chromium is not installed (${CHROMIUM} is missing): the browser tests need it. ` +
        '.ci/run installs it (apt-get install -y chromium); on a development machine run `sudo apt-get install chromium`.',
    );
  }
}

export async function launchChromium(): Promise<Browser> {
  requireChromium();
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // this machine's network is closed: no background requests to Google's hosts
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage'],
  });
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** The Node-RED the tests run: the devDependency, or the one REDIS_SYNC_NODE_RED names (its package folder). */
function redJs(): string {
  const dir = process.env.REDIS_SYNC_NODE_RED ?? join(require.resolve('node-red/package.json'), '..');
  return join(dir, 'red.js');
}

/** A real Node-RED process with its editor, this package installed in its user directory by symlink. */
export class EditorNodeRed {
  private child: ChildProcess | null = null;
  log = '';
  port = 0;

  constructor(readonly userDir: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  async start(flow: FlowNode[] = []): Promise<void> {
    mkdirSync(join(this.userDir, 'node_modules'), { recursive: true });
    const link = join(this.userDir, 'node_modules', 'node-red-contrib-redis-sync');
    if (!existsSync(link)) symlinkSync(ROOT, link, 'dir');
    this.port = await freePort();
    writeFileSync(join(this.userDir, 'flows.json'), JSON.stringify(flow));
    const settings = {
      uiHost: '127.0.0.1',
      uiPort: this.port,
      flowFile: 'flows.json',
      credentialSecret: false,
      // no consent prompt, no welcome tour over the workspace
      telemetry: { enabled: false, updateNotification: false },
      editorTheme: { tours: false },
      logging: { console: { level: 'info', metrics: false, audit: false } },
    };
    writeFileSync(join(this.userDir, 'settings.js'), `module.exports = ${JSON.stringify(settings)};`);
    const child = spawn(process.execPath, [redJs(), '--userDir', this.userDir, '--settings', join(this.userDir, 'settings.js')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!/Started flows/.test(this.log)) {
      if (child.exitCode !== null) throw new Error(`Node-RED exited with ${child.exitCode}:\n${this.log.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`Node-RED did not start:\n${this.log.slice(-3000)}`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

// ---------------------------------------------------------------- the editor

/** What the tests use of the editor's global RED object (page.evaluate runs in the page). */
interface EditorRed {
  nodes: {
    getType(type: string): { category: string } | undefined;
    node(id: string): { id: string; type: string; z?: string } | null;
    filterNodes(filter: { type?: string; z?: string }): Array<{ id: string; type: string; name?: string }>;
  };
}

/** Runs fn(RED) in the page. fn must not close over anything: it is sent to the page as source. */
export function withRed<T, A>(page: Page, fn: (red: EditorRed, arg: A) => T, arg: A): Promise<T> {
  return page.evaluate(
    ({ source, arg: a }) => {
      const red = (globalThis as unknown as { RED: EditorRed }).RED;
      return (new Function('RED', 'arg', `return (${source})(RED, arg);`) as (r: EditorRed, x: unknown) => T)(red, a);
    },
    { source: fn.toString(), arg: arg as unknown },
  ) as Promise<T>;
}

/** Opens the editor and waits until the palette and the workspace are there. */
export async function openEditor(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.locator('#red-ui-palette-container .red-ui-palette-node').first().waitFor({ timeout: 30_000 });
  await page.locator('#red-ui-workspace-chart').waitFor();
  // the loading spinner is removed once the flows are in
  await page.waitForFunction(() => {
    const red = (globalThis as unknown as { RED?: { nodes?: { version?: () => unknown } } }).RED;
    return red?.nodes?.version?.() !== undefined && red.nodes.version() !== null;
  });
}

/** The palette's id for a category, as the editor escapes it ("redis sync" -> "redis_sync"). */
export function categoryId(category: string): string {
  return category.replace(/[\x00-\x2c\x2e-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]/g, '_'); // eslint-disable-line no-control-regex
}

/** Drags a node type from the palette onto the workspace; resolves with the new node's id. */
export async function addFromPalette(page: Page, type: string, x: number, y: number): Promise<string> {
  const before = new Set(await withRed(page, (red, t) => red.nodes.filterNodes({ type: t }).map((n) => n.id), type));
  const item = page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`);
  await item.scrollIntoViewIfNeeded();
  const box = await item.boundingBox();
  const chart = await page.locator('#red-ui-workspace-chart').boundingBox();
  if (!box || !chart) throw new Error(`the palette entry of ${type} or the workspace is not visible`);
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 30, box.y + box.height / 2, { steps: 5 });
  await page.mouse.move(chart.x + x, chart.y + y, { steps: 15 });
  await page.mouse.up();
  const deadline = Date.now() + 5000;
  for (;;) {
    const ids = await withRed(page, (red, t) => red.nodes.filterNodes({ type: t }).map((n) => n.id), type);
    const added = ids.find((id) => !before.has(id));
    if (added !== undefined) return added;
    if (Date.now() > deadline) throw new Error(`dragging ${type} from the palette added no node`);
    await sleep(50);
  }
}

/** The status text under a node in the workspace ('' when it shows none). */
export async function statusText(page: Page, id: string): Promise<string> {
  const label = page.locator(`[id="${id}"] .red-ui-flow-node-status-label`);
  return (await label.count()) === 0 ? '' : ((await label.textContent()) ?? '');
}

/** Waits until the node's status text matches; the error names every text seen meanwhile. */
export async function waitForStatus(page: Page, id: string, pattern: RegExp, timeoutMs: number): Promise<string> {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await statusText(page, id);
    if (seen[seen.length - 1] !== text) seen.push(text);
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`status of ${id} did not match ${pattern} within ${timeoutMs} ms; it showed: ${JSON.stringify(seen)}`);
    await sleep(100);
  }
}

/** Menu -> Import, paste the flow, Import: as a user imports an example. */
export async function importFlow(page: Page, flow: FlowNode[]): Promise<void> {
  await page.locator('#red-ui-header-button-sidemenu').click();
  await page.locator('#menu-item-import').click();
  const text = page.locator('#red-ui-clipboard-dialog-import-text');
  await text.waitFor();
  await text.fill(JSON.stringify(flow, null, 2));
  await text.press('End'); // the dialog validates on keyup
  const ok = page.locator('#red-ui-clipboard-dialog-ok');
  // the dialog validates the text after a short delay, then enables the button
  await page.waitForFunction(() => {
    const doc = (globalThis as unknown as { document: { getElementById(id: string): { className: string } | null } }).document;
    const button = doc.getElementById('red-ui-clipboard-dialog-ok');
    return button !== null && !/ui-state-disabled|ui-button-disabled/.test(button.className);
  });
  await ok.click();
  await text.waitFor({ state: 'hidden' });
  // the "Imported" notification covers the tab bar until it fades: click it away
  const note = page.locator('.red-ui-notification', { hasText: 'Imported' });
  if (await note.isVisible()) await note.click();
  await note.waitFor({ state: 'hidden' });
}

/** Clicks the workspace tab with this label and checks that it is the one shown. */
export async function showTab(page: Page, label: string): Promise<void> {
  const tab = page.locator('#red-ui-workspace-tabs .red-ui-tab', { hasText: label });
  if ((await tab.count()) !== 1) throw new Error(`${await tab.count()} workspace tabs are labelled "${label}"`);
  await tab.click();
  await page.locator('#red-ui-workspace-tabs .red-ui-tab.active', { hasText: label }).waitFor();
}

/** Clicks Deploy and waits for the editor's "Successfully deployed" notification. */
export async function deploy(page: Page): Promise<void> {
  await page.locator('#red-ui-header-button-deploy').click();
  await page.locator('.red-ui-notification', { hasText: 'Successfully deployed' }).first().waitFor({ timeout: 20_000 });
}

// ---------------------------------------------------------------- the package's own files

export interface EditorFiles {
  /** The ids of the inputs in the edit template (node-input-* or node-config-input-*, without the prefix). */
  fields: string[];
  /** The help's first paragraph as text, whitespace collapsed. */
  helpIntro: string;
}

/** Reads a node's .html (as built into dist/) for what its edit dialog and help should show. */
export function editorFiles(type: string): EditorFiles {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
  const html = readFileSync(join(ROOT, pkg['node-red'].nodes[type].replace(/\.js$/, '.html')), 'utf8');
  const template = new RegExp(`<script type="text/html" data-template-name="${type}">([\\s\\S]*?)</script>`).exec(html)?.[1] ?? '';
  const help = new RegExp(`<script type="text/html" data-help-name="${type}">([\\s\\S]*?)</script>`).exec(html)?.[1] ?? '';
  const fields = [...template.matchAll(/id="node-(?:config-)?input-([\w-]+)"/g)].map((m) => m[1]);
  const intro = /<p>([\s\S]*?)<\/p>/.exec(help)?.[1] ?? '';
  return { fields, helpIntro: textOf(intro) };
}

/** Text of an HTML fragment as the browser shows it, whitespace collapsed. */
export function textOf(html: string): string {
  return html
    .replace(/<[^>]+>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}
