/**
 * The editor as a user sees it: Debian's Chromium (driven by playwright-core) on a real
 * Node-RED process with this package installed. Every node type in the palette, every edit
 * dialog with its fields and help, every example imported from the menu, and the main example
 * deployed against a live standalone source and a 3-master cluster, watched through the node
 * statuses in the workspace. Screenshots go to docs/ (see screenshot()).
 *
 * No Chromium at /usr/bin/chromium fails the suite (with how to install it), never skips it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, Locator, Page } from 'playwright-core';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import {
  addFromPalette,
  categoryId,
  checkValidation,
  DEFAULT_DIALOG_WIDTH,
  deploy,
  dialogLayoutProblems,
  EditorNodeRed,
  editorFiles,
  helpLayoutProblems,
  importFlow,
  launchChromium,
  openEditor,
  requireChromium,
  showTab,
  statusText,
  textOf,
  waitForStatus,
  withRed,
} from './support/browser';
import type { FlowNode } from './support/node-red';

const ROOT = resolve(__dirname, '..');
const DOCS = join(ROOT, 'docs');
const EXAMPLES = join(ROOT, 'examples');
const MAIN_EXAMPLE = 'demo-standalone-to-cluster.json';
const CATEGORY = 'redis sync';
const VIEWPORT = { width: 1280, height: 800 };

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
const TYPES = Object.keys(pkg['node-red'].nodes);
/** The palette shows the nodes in the order of a sync (Node-RED registers them in the order of node-red.nodes). */
const PIPELINE = ['redis-precheck', 'redis-replica-source', 'redis-rdb-source', 'redis-scan-source', 'redis-op-filter', 'redis-slot-router', 'redis-cluster-sink', 'redis-verify', 'redis-cutover'];
/**
 * Takes a screenshot; writes it to docs/ when docs/ has none of that name yet or when
 * UPDATE_SCREENSHOTS=1, so that a test run does not leave the committed pictures modified.
 */
async function screenshot(page: Page, name: string): Promise<void> {
  const png = await page.screenshot();
  assert.ok(png.length > 10_000, `${name}: the screenshot is nearly empty`);
  const file = join(DOCS, name);
  if (!existsSync(file) || process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync(DOCS, { recursive: true });
    writeFileSync(file, png);
  }
}
const readExample = (file: string): FlowNode[] => JSON.parse(readFileSync(join(EXAMPLES, file), 'utf8')) as FlowNode[];

describe('the editor in a browser (Debian chromium + playwright-core)', function () {
  this.timeout(120_000);
  let browser: Browser;
  let page: Page;
  let nodeRed: EditorNodeRed;
  let source: RedisServer;
  let cluster: RedisCluster;
  let dir: string;
  /** Config node types (the palette leaves them out): read from the editor. */
  let configTypes: string[] = [];

  async function freshPage(): Promise<Page> {
    // a new page rather than a reload: unsaved edits would hold a reload at a beforeunload prompt
    if (page) await page.close();
    page = await browser.newPage({ viewport: VIEWPORT });
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await openEditor(page, nodeRed.url);
    return page;
  }
  const pageErrors: string[] = [];

  before(async function () {
    requireChromium();
    dir = mkdtempSync(join(tmpdir(), 'browser-'));
    nodeRed = new EditorNodeRed(join(dir, 'userDir'));
    [source, cluster, browser] = await Promise.all([startRedis(), startCluster({ masters: 3, replicas: 0 }), launchChromium(), nodeRed.start()]);
    await freshPage();
  });

  after(async () => {
    await browser?.close();
    await nodeRed?.stop();
    await Promise.allSettled([source?.stop(), cluster?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && nodeRed) console.log(`Node-RED's log:\n${nodeRed.log.slice(-3000)}`);
  });

  it(`shows every node type of the package in the palette, category "${CATEGORY}"`, async () => {
    const categories = await withRed(page, (red, types) => types.map((t) => red.nodes.getType(t)?.category ?? null), TYPES);
    for (const [i, type] of TYPES.entries()) assert.ok(categories[i] !== null, `the editor did not register ${type}`);
    configTypes = TYPES.filter((_, i) => categories[i] === 'config');
    const paletteTypes = TYPES.filter((t) => !configTypes.includes(t));
    assert.ok(paletteTypes.length >= 4, `palette types: ${paletteTypes.join(', ')}`);
    const container = page.locator(`#red-ui-palette-container-${categoryId(CATEGORY)}`);
    await container.waitFor();
    assert.equal((await container.locator('.red-ui-palette-header').textContent())?.trim(), CATEGORY);
    for (const type of paletteTypes) {
      assert.equal(categories[TYPES.indexOf(type)], CATEGORY, `${type} is in category ${categories[TYPES.indexOf(type)]}`);
      const item = container.locator(`.red-ui-palette-node[data-palette-type="${type}"]`);
      assert.equal(await item.count(), 1, `${type} is not in the palette category ${CATEGORY}`);
      assert.ok(await item.isVisible(), `${type} is not visible in the palette`);
      const label = (await item.locator('.red-ui-palette-label').textContent())?.trim() ?? '';
      assert.ok(label.length > 0 && !label.includes('.'), `${type} has palette label "${label}" (an untranslated key?)`);
    }
    for (const type of configTypes) assert.equal(await page.locator(`.red-ui-palette-node[data-palette-type="${type}"]`).count(), 0);
    const order = await container.locator('.red-ui-palette-node').evaluateAll((items: Array<{ getAttribute(name: string): string | null }>) => items.map((item) => item.getAttribute('data-palette-type')));
    assert.deepEqual(order, PIPELINE, 'the palette order');
    // each node its own icon, served from the package as it is in icons/ (Node-RED serves a default icon for one it cannot find)
    const icons = await withRed(page, (red, types) => types.map((t) => red.nodes.getType(t)?.icon ?? ''), paletteTypes);
    assert.equal(new Set(icons).size, paletteTypes.length, `icons: ${icons.join(', ')}`);
    for (const [i, type] of paletteTypes.entries()) {
      const image = await container.locator(`.red-ui-palette-node[data-palette-type="${type}"] .red-ui-palette-icon`).evaluate((el: { style: { backgroundImage: string } }) => el.style.backgroundImage);
      const url = /^url\("?([^")]+)"?\)$/.exec(image)?.[1] ?? '';
      assert.ok(url.endsWith(`/${icons[i]}`), `${type}: its palette icon is ${image}, not ${icons[i]}`);
      const served = await page.request.get(new URL(url, nodeRed.url).href);
      assert.equal(served.status(), 200, `${type}: ${url}`);
      assert.match(served.headers()['content-type'] ?? '', /^image\/svg\+xml/, `${type}: ${url}`);
      assert.equal((await served.body()).toString(), readFileSync(join(ROOT, 'icons', icons[i]), 'utf8'), `${type}: ${url} is not icons/${icons[i]}`);
    }
    // the palette as a user filters it
    const search = page.locator('#red-ui-palette-search input');
    await search.pressSequentially('redis');
    await page.locator('.red-ui-palette-node[data-palette-type="inject"]').waitFor({ state: 'hidden' });
    for (const type of paletteTypes) assert.ok(await container.locator(`.red-ui-palette-node[data-palette-type="${type}"]`).isVisible(), `searching "redis" hides ${type}`);
    await screenshot(page, 'palette.png');
    await search.fill('');
    await search.press('Escape');
  });

  it('opens the edit dialog of every node: its fields, its help in the sidebar, nothing cut off or overflowing, Done', async () => {
    await freshPage();
    const paletteTypes = TYPES.filter((t) => !configTypes.includes(t));
    /** What is cut off or overflows, in every dialog and help: all of it is reported at the end. */
    const layout: string[] = [];
    const checkLayout = async (what: string, tray: Locator): Promise<void> => {
      for (const problem of await dialogLayoutProblems(tray)) layout.push(`${what} dialog: ${problem}`);
    };
    const checkHelp = async (what: string): Promise<void> => {
      for (const problem of await helpLayoutProblems(page)) layout.push(`${what} help: ${problem}`);
    };
    for (const [i, type] of paletteTypes.entries()) {
      const id = await addFromPalette(page, type, 200 + (i % 3) * 250, 120 + Math.floor(i / 3) * 120);
      // the labels of its ports, as hovering over a port shows them: translated, not message keys
      const ports = await withRed(
        page,
        (red, nodeId) => {
          const node = red.nodes.node(nodeId);
          const def = node && red.nodes.getType(node.type);
          if (!node || !def) return [];
          const labels: unknown[] = [];
          for (const [of, count] of [[def.inputLabels, node.inputs ?? def.inputs ?? 0], [def.outputLabels, node.outputs ?? def.outputs ?? 0]] as const) {
            for (let p = 0; p < count; p++) labels.push(typeof of === 'function' ? of.call(node, p) : Array.isArray(of) ? of[p] : of);
          }
          return labels;
        },
        id,
      );
      assert.ok(ports.length > 0, `${type}: no ports`);
      for (const label of ports) assert.ok(typeof label === 'string' && label !== '' && !label.includes(`${type}.`), `${type}: a port labelled ${JSON.stringify(label)}`);
      await page.locator(`[id="${id}"] .red-ui-flow-node`).dblclick();
      const tray = page.locator('.red-ui-tray').nth(0);
      await tray.locator('#node-dialog-ok').waitFor();
      const { fields, helpIntro } = editorFiles(type);
      assert.ok(fields.length > 0, `${type}: no fields in its template`);
      for (const field of fields) {
        assert.equal(await tray.locator(`#node-input-${field}`).count(), 1, `${type}: the dialog has no field ${field}`);
      }
      assert.equal(await tray.locator('#node-input-name').isVisible(), true, `${type}: the name field is not visible`);
      await checkLayout(type, tray);
      // the help button in the tray's footer shows the node's help in the sidebar
      await tray.locator('.red-ui-tray-footer-left button:has(i.fa-book):visible').click();
      const help = page.locator('.red-ui-help:visible').first();
      assert.ok(helpIntro.length > 20, `${type}: its help has no first paragraph`);
      const expected = helpIntro.slice(0, 80);
      await page.waitForFunction(
        (want) => {
          type El = { textContent: string | null; offsetParent: unknown };
          const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): El[] } }).document;
          return [...doc.querySelectorAll('.red-ui-help')].some((el) => el.offsetParent !== null && (el.textContent ?? '').replace(/\s+/g, ' ').includes(want));
        },
        expected,
        { timeout: 5000 },
      );
      assert.ok(textOf((await help.innerHTML()) ?? '').includes(expected), `${type}: the help sidebar does not show "${expected}"`);
      await checkHelp(type);

      if (type === 'redis-replica-source') {
        // its endpoint: a config node, added from the dialog with the + button
        assert.equal(await tray.locator('#node-input-mode option').count(), 3);
        await tray.locator('#node-input-btn-endpoint-add').click();
        // the config node's editor stacks over the node's in the same tray
        const configTray = page.locator('.red-ui-tray');
        await configTray.locator('#node-config-dialog-ok').waitFor();
        const endpoint = editorFiles('redis-endpoint');
        for (const field of endpoint.fields) {
          assert.equal(await configTray.locator(`#node-config-input-${field}`).count(), 1, `redis-endpoint: no field ${field}`);
        }
        assert.ok(await configTray.locator('#node-config-input-host').isVisible());
        assert.ok(!(await configTray.locator('#node-config-input-seeds').isVisible()));
        // every field shown: TLS on, then each mode
        await configTray.locator('#node-config-input-tls').check();
        await checkLayout('redis-endpoint (standalone, TLS)', configTray.last());
        await configTray.locator('#node-config-input-mode').selectOption('cluster');
        assert.ok(await configTray.locator('#node-config-input-seeds').isVisible(), 'cluster mode shows the seeds');
        assert.ok(!(await configTray.locator('#node-config-input-host').isVisible()), 'cluster mode hides the host');
        await checkLayout('redis-endpoint (cluster, TLS)', configTray.last());
        await configTray.locator('#node-config-input-tls').uncheck();
        // validators (with the helpers of resources/editor.js) mark a bad field as it is typed
        await checkValidation(configTray, 'node-config-input-seeds', '127.0.0.1', '127.0.0.1:7000,127.0.0.1:7001');
        await configTray.locator('#node-config-input-name').fill('my cluster');
        await screenshot(page, 'edit-dialog-endpoint.png');
        await configTray.locator('.red-ui-tray-footer-left button:has(i.fa-book):visible').click();
        await page.locator('.red-ui-help:visible', { hasText: editorFiles('redis-endpoint').helpIntro.slice(0, 60) }).first().waitFor({ timeout: 5000 });
        await checkHelp('redis-endpoint');
        await configTray.locator('#node-config-dialog-ok').click();
        await configTray.locator('#node-config-dialog-ok').waitFor({ state: 'detached' });
        assert.match((await tray.locator('#node-input-endpoint option:checked').textContent()) ?? '', /my cluster/);
        await tray.locator('#node-input-name').fill('orders source');
        // and the node's own: a batch size out of range (a validate returning a message)
        await checkValidation(tray, 'node-input-batchOps', '0', '1000');
        await screenshot(page, 'edit-dialog-source.png');
      }
      await tray.locator('#node-dialog-ok').click();
      await tray.waitFor({ state: 'detached' });
    }
    const sourceName = await withRed(page, (red) => red.nodes.filterNodes({ type: 'redis-replica-source' }).map((n) => n.name), null);
    assert.deepEqual(sourceName, ['orders source'], 'Done kept what was typed');
    assert.deepEqual(layout, [], `cut off or overflowing at the default dialog width (${DEFAULT_DIALOG_WIDTH} px) and sidebar width`);
  });

  it('imports every example from Menu > Import, each as its own tab with known node types', async () => {
    await freshPage();
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));
    assert.ok(files.includes(MAIN_EXAMPLE));
    for (const file of files) {
      const flow = readExample(file);
      await importFlow(page, flow);
      const tab = flow.find((n) => n.type === 'tab');
      const present = await withRed(page, (red, ids) => ids.map((id) => red.nodes.node(id)?.type ?? null), flow.filter((n) => n.type !== 'tab').map((n) => n.id));
      assert.deepEqual(present, flow.filter((n) => n.type !== 'tab').map((n) => n.type), `${file}: not every node was imported as it is`);
      if (tab) await showTab(page, String(tab.label));
    }
    const unknown = await withRed(page, (red) => red.nodes.filterNodes({ type: 'unknown' }).length, null);
    assert.equal(unknown, 0);
    assert.equal(await page.locator('.red-ui-flow-node-unknown').count(), 0, 'an imported node is drawn as unknown');
  });

  it(`deploys ${MAIN_EXAMPLE} against a standalone source and a 3-master cluster: "streaming", "applied"`, async () => {
    await freshPage();
    // sample data in two dbs; the example's filter moves both to db 0 with the prefix db<n>:
    const src0 = source.client();
    const src1 = source.client({ db: 1 });
    await src0.mset('greeting', 'hello', 'counter', '0');
    await src0.hset('user:{1}', 'name', 'Ada');
    await src0.rpush('queue', 'a', 'b', 'c');
    await src0.xadd('events', '*', 'n', '1');
    await src1.set('session:1', 'token', 'EX', 600);

    const flow = readExample(MAIN_EXAMPLE);
    const sourceEndpoints = new Set(flow.filter((n) => n.type === 'redis-replica-source').map((n) => n.endpoint));
    for (const n of flow) {
      if (n.type !== 'redis-endpoint') continue;
      if (sourceEndpoints.has(n.id)) Object.assign(n, { mode: 'standalone', host: '127.0.0.1', port: String(source.port) });
      else Object.assign(n, { mode: 'cluster', seeds: cluster.seeds.map((s) => `${s.host}:${s.port}`).join(',') });
    }
    await importFlow(page, flow);
    await showTab(page, String(flow.find((n) => n.type === 'tab')?.label));
    await deploy(page);

    const src = flow.find((n) => n.type === 'redis-replica-source') as FlowNode;
    const sink = flow.find((n) => n.type === 'redis-cluster-sink') as FlowNode;
    await waitForStatus(page, src.id, /^streaming/, 30_000);
    // writes after the copy reach the cluster through the stream
    for (let i = 0; i < 20; i++) await src0.incr('counter');
    await src0.xadd('events', '*', 'n', '2');
    await waitForStatus(page, sink.id, /^applied/, 20_000);
    const dst = cluster.client();
    const deadline = Date.now() + 20_000;
    while ((await dst.get('db0:counter')) !== '20') {
      if (Date.now() > deadline) throw new Error(`db0:counter on the cluster is ${await dst.get('db0:counter')}, not 20`);
      await sleep(100);
    }
    assert.equal(await dst.get('db0:greeting'), 'hello');
    assert.equal(await dst.hget('db0:user:{1}', 'name'), 'Ada');
    assert.deepEqual(await dst.lrange('db0:queue', 0, -1), ['a', 'b', 'c']);
    assert.equal(await dst.xlen('db0:events'), 2);
    assert.equal(await dst.get('db1:session:1'), 'token');
    assert.ok((await dst.ttl('db1:session:1')) > 0);

    // every node of the pipeline shows a status, none red
    const texts = await Promise.all(flow.filter((n) => n.z && n.type.startsWith('redis-')).map(async (n) => [n.type, await statusText(page, n.id)]));
    for (const [type, text] of texts) assert.ok(text !== '', `${type} shows no status`);
    assert.equal(await page.locator('.red-ui-flow-node-status-dot-red, .red-ui-flow-node-status-ring-red').count(), 0, `a red status: ${JSON.stringify(texts)}`);
    // the screenshot: the whole flow in view (sidebar hidden with ctrl-space, as a user would), latest counts
    // a notification still showing is closed; one that closes by itself meanwhile is as good
    const note = page.locator('.red-ui-notification:visible');
    if ((await note.count()) > 0) await note.first().click({ timeout: 2000 }).catch(() => undefined);
    await page.locator('#red-ui-workspace-chart').click({ position: { x: 600, y: 500 } });
    await page.keyboard.press('Control+Space');
    await page.locator('#red-ui-sidebar').waitFor({ state: 'hidden' });
    await waitForStatus(page, flow.find((n) => n.type === 'debug')?.id as string, /streaming/, 5000);
    await page.waitForTimeout(1200); // the next progress report
    await screenshot(page, 'running-flow.png');

    // the inject buttons: stop, then start again, which resumes the stream where it stopped
    const inject = (name: string): string => (flow.find((n) => n.type === 'inject' && n.name === name) as FlowNode).id;
    await page.locator(`[id="${inject('stop')}"] .red-ui-flow-node-button`).click();
    await waitForStatus(page, src.id, /^stopped/, 10_000);
    for (let i = 0; i < 5; i++) await src0.incr('counter');
    await page.locator(`[id="${inject('start')}"] .red-ui-flow-node-button`).click();
    await waitForStatus(page, src.id, /^streaming/, 20_000);
    const until = Date.now() + 20_000;
    while ((await dst.get('db0:counter')) !== '25') {
      if (Date.now() > until) throw new Error(`after stop and start db0:counter on the cluster is ${await dst.get('db0:counter')}, not 25`);
      await sleep(100);
    }
    assert.deepEqual(pageErrors, [], 'errors in the page');
  });
});
