/**
 * Browser tests of the editor: Debian's Chromium (/usr/bin/chromium, never a downloaded
 * browser) driven by playwright-core, against a real Node-RED process that has this package
 * installed in its user directory.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import type { FlowNode } from './node-red';
import { NodeRedProcess } from './node-red-process';

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

/** A real Node-RED process with its editor, this package installed in its user directory by symlink. */
export class EditorNodeRed extends NodeRedProcess {
  constructor(userDir: string) {
    // no consent prompt, no welcome tour over the workspace
    super(userDir, [], { telemetry: { enabled: false, updateNotification: false }, editorTheme: { tours: false } });
  }
}

// ---------------------------------------------------------------- the editor

/** A node type as the editor registered it. */
interface EditorType {
  category: string;
  icon?: string;
  inputs?: number;
  outputs?: number;
  inputLabels?: string | string[] | ((this: object, i: number) => string);
  outputLabels?: string | string[] | ((this: object, i: number) => string);
}

/** What the tests use of the editor's global RED object (page.evaluate runs in the page). */
interface EditorRed {
  nodes: {
    getType(type: string): EditorType | undefined;
    node(id: string): { id: string; type: string; z?: string; inputs?: number; outputs?: number } | null;
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

/**
 * Types `bad` into the dialog field `id` (in `tray`) and waits for the editor to mark it
 * invalid, then `good` and waits for the mark to go: the field's validate at work.
 */
export async function checkValidation(tray: Locator, id: string, bad: string, good: string): Promise<void> {
  const field = tray.locator(`#${id}`);
  for (const [value, mark] of [[bad, '.input-error'], [good, ':not(.input-error)']]) {
    await field.fill(value);
    await field.dispatchEvent('change');
    await tray.locator(`#${id}${mark}`).waitFor();
  }
}

// ---------------------------------------------------------------- the package's own files

export interface EditorFiles {
  /** The ids of the inputs in the edit template (node-input-* or node-config-input-*, without the prefix). */
  fields: string[];
  /** The help's first paragraph as text, whitespace collapsed. */
  helpIntro: string;
}

/**
 * Reads a node's .html and its en-US help (locales/en-US/<type>.html beside it), as built into
 * dist/, for what its edit dialog and help should show.
 */
export function editorFiles(type: string): EditorFiles {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
  const js = join(ROOT, pkg['node-red'].nodes[type]);
  const html = readFileSync(js.replace(/\.js$/, '.html'), 'utf8');
  const helpFile = readFileSync(join(dirname(js), 'locales', 'en-US', `${type}.html`), 'utf8');
  const template = new RegExp(`<script type="text/html" data-template-name="${type}">([\\s\\S]*?)</script>`).exec(html)?.[1] ?? '';
  const help = new RegExp(`<script type="text/html" data-help-name="${type}">([\\s\\S]*?)</script>`).exec(helpFile)?.[1] ?? '';
  const fields = [...template.matchAll(/id="node-(?:config-)?input-([\w-]+)"/g)].map((m) => m[1]);
  const intro = /<p\b[^>]*>([\s\S]*?)<\/p>/.exec(help)?.[1] ?? '';
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

// ---------------------------------------------------------------- what is cut off or overflows

/** Node-RED opens an edit dialog this wide, wider only when its content needs more (tray.js: Math.max(width, 500)). */
export const DEFAULT_DIALOG_WIDTH = 500;

/** The parts of a DOM element the layout checks read (this project compiles without the DOM types). */
interface LayoutElement {
  tagName: string;
  id: string;
  type?: string;
  placeholder?: string;
  textContent: string | null;
  scrollWidth: number;
  clientWidth: number;
  style: { width: string; minWidth: string };
  getBoundingClientRect(): { left: number; right: number; top: number; bottom: number; width: number };
  getAttribute(name: string): string | null;
  querySelectorAll(selector: string): Iterable<LayoutElement>;
}
interface LayoutWindow {
  getComputedStyle(el: LayoutElement): { display: string; font: string; paddingLeft: string; paddingRight: string; overflowX: string };
  document: { createElement(tag: 'canvas'): { getContext(kind: '2d'): { font: string; measureText(text: string): { width: number } } } };
}

/**
 * What is cut off or overflows in the open edit dialog `tray`, among its visible .form-rows,
 * as messages: the dialog opened wider than DEFAULT_DIALOG_WIDTH (some content needed the
 * room: the elements reaching into it are named), an element reaching past its row, a box
 * whose text is wider than the box, a select whose widest option does not fit in it, an
 * input whose placeholder is cut off, a checkbox whose label starts below it instead of
 * beside it. [] when everything fits.
 */
export function dialogLayoutProblems(tray: Locator): Promise<string[]> {
  // Runs in the page, sent as source: no functions declared inside (tsx would wrap them in a helper the page lacks).
  return tray.evaluate<string[], number, LayoutElement>((root, defaultWidth) => {
    const win = globalThis as unknown as LayoutWindow;
    const problems: string[] = [];
    const opened = root.getBoundingClientRect().width;
    if (opened > defaultWidth + 1) problems.push(`the dialog opened ${Math.round(opened - defaultWidth)} px wider than Node-RED's default ${defaultWidth} px: its content needs the room`);
    // Measured at the default width: Node-RED widened the dialog (and set its body's min-width) to what the content asked for.
    const bodies = [...root.querySelectorAll('.red-ui-tray-body')];
    const saved = { width: root.style.width, minWidths: bodies.map((b) => b.style.minWidth) };
    root.style.width = `${defaultWidth}px`;
    for (const body of bodies) body.style.minWidth = '0px';
    const canvas = win.document.createElement('canvas').getContext('2d');
    for (const row of root.querySelectorAll('.form-row')) {
      const r = row.getBoundingClientRect();
      if (r.width === 0) continue; // hidden: another mode, tab or option
      const rowStyle = win.getComputedStyle(row);
      const right = r.right - parseFloat(rowStyle.paddingRight);
      for (const el of row.querySelectorAll('input, select, textarea, label, span, button, div, a')) {
        const b = el.getBoundingClientRect();
        if (b.width === 0 || el.type === 'hidden') continue;
        const style = win.getComputedStyle(el);
        const what = `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : el.getAttribute('for') ? `[for=${el.getAttribute('for')}]` : ''} "${(el.textContent ?? '').replace(/\s+/g, ' ').trim().slice(0, 50)}"`;
        if (b.right > right + 1) problems.push(`${what} reaches ${Math.round(b.right - right)} px past its form row`);
        if (style.display !== 'inline' && el.tagName !== 'TEXTAREA' && el.scrollWidth > el.clientWidth + 1) {
          problems.push(`${what}: its content is ${el.scrollWidth - el.clientWidth} px wider than its box`);
        }
        if (el.tagName === 'SELECT') {
          // a select sized to its content is as wide as its widest option
          const width = el.style.width;
          el.style.width = 'auto';
          const needed = el.getBoundingClientRect().width;
          el.style.width = width;
          if (needed > b.width + 1) problems.push(`${what}: its widest option is cut off (it needs ${Math.round(needed)} px, the select is ${Math.round(b.width)} px)`);
        }
        if (el.tagName === 'INPUT' && el.placeholder) {
          canvas.font = style.font;
          const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
          const text = canvas.measureText(el.placeholder).width;
          if (text > room + 1) problems.push(`${what}: its placeholder "${el.placeholder}" is cut off (${Math.round(text)} px in ${Math.round(room)} px)`);
        }
        if (el.tagName === 'INPUT' && el.type === 'checkbox') {
          for (const label of row.querySelectorAll(`label[for="${el.id}"]`)) {
            if (label.getBoundingClientRect().top >= b.bottom) problems.push(`label[for=${el.id}] "${(label.textContent ?? '').trim().slice(0, 50)}" starts below its checkbox, not beside it`);
          }
        }
      }
    }
    root.style.width = saved.width;
    bodies.forEach((body, i) => (body.style.minWidth = saved.minWidths[i]));
    return problems;
  }, DEFAULT_DIALOG_WIDTH);
}

/**
 * What reaches past the right edge of the help shown in the sidebar (a help sidebar does not
 * scroll sideways), as messages naming the innermost elements that do; [] when nothing does.
 */
export function helpLayoutProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): Iterable<LayoutElement & { offsetParent: unknown }> } }).document;
    const problems: string[] = [];
    for (const help of doc.querySelectorAll('.red-ui-sidebar-help-stack .red-ui-help')) {
      // the innermost .red-ui-help holds the node's help text
      if (help.offsetParent === null || [...help.querySelectorAll('.red-ui-help')].length > 0) continue;
      const edge = help.getBoundingClientRect().right;
      if (help.scrollWidth > help.clientWidth + 1) problems.push(`the help is ${help.scrollWidth - help.clientWidth} px wider than the sidebar shows`);
      const over = [...help.querySelectorAll('*')].filter((el) => el.getBoundingClientRect().right > edge + 1);
      for (const el of over) {
        // the innermost: an element none of whose children reaches past the edge itself
        if ([...el.querySelectorAll('*')].some((child) => over.includes(child))) continue;
        problems.push(`${el.tagName.toLowerCase()} "${(el.textContent ?? '').replace(/\s+/g, ' ').trim().slice(0, 60)}" reaches ${Math.round(el.getBoundingClientRect().right - edge)} px past the sidebar`);
      }
    }
    return problems;
  });
}
