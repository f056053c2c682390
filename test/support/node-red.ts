/**
 * Node-RED node tests: node-red-node-test-helper running the installed node-red, loading the
 * BUILT nodes from dist/ (the .js beside its .html and locales, as the published package has
 * them). `npm test` builds first; a single test file run on its own needs `npm run build`.
 *
 *   before(startNodeRed); after(stopNodeRed); afterEach(unloadFlow);
 *   await loadFlow([builtNode('redis-endpoint')], [{ id: 'e1', type: 'redis-endpoint', ... }], { e1: { password: 'x' } });
 *
 * A node under test with its outputs wired to helper nodes and a Catch node for its errors:
 *
 *   await loadFlow([builtNode('redis-op-filter'), ...coreNodes('common/25-catch.js')],
 *     testFlow([{ id: 'f', type: 'redis-op-filter', z: 'tab', wires: [['kept']] }], ['kept']));
 *   const kept = received('kept'), caught = received('caught');
 *   getNode<NodeUnderTest>('f').receive({ payload: [...] });
 *
 * editorDefinition(type) runs the editor half (the .html's registerType) outside a browser, so
 * its validators and label can be tested too.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { nodeRedMajor, nodeRedPackageDir } from './node-red-runtime';

const ROOT = path.resolve(__dirname, '..', '..');
const MODULE_NAME = 'node-red-contrib-redis-sync';

/** One node of a flow as stored in flows.json. */
export interface FlowNode {
  id: string;
  type: string;
  z?: string;
  name?: string;
  wires?: string[][];
  [property: string]: unknown;
}

/** Credentials by node id, as flows_cred.json holds them (decrypted). */
export type FlowCredentials = Record<string, Record<string, string>>;

/** A node module's export: the `function (RED) {...}` that registers its types. */
export type NodeModule = (RED: NodeApiStub) => void | Promise<void>;

/** The parts of the RED object the helper hands to node modules that this file touches. */
interface NodeApiStub {
  _: (key: string, substitutions?: Record<string, unknown>) => string;
}

// The helper ships no types: these are the methods used here, as in its index.js (0.3.x).
interface TestHelper {
  init(runtimePath: string, userSettings?: object): void;
  load(nodes: NodeModule[], flow: FlowNode[], credentials?: FlowCredentials): Promise<void>;
  unload(): Promise<void>;
  startServer(): Promise<void>;
  stopServer(): Promise<void>;
  getNode(id: string): unknown;
  /** A spy on the runtime's log of the flow loaded last: one call per line, `{ level, type, msg }` (level 20 error, 30 warning). */
  log(): { args: Array<[{ level: number; type?: string; msg: unknown }]> };
}

// eslint-disable-next-line @typescript-eslint/no-require-imports -- an untyped CommonJS package, typed by TestHelper
export const helper = require('node-red-node-test-helper') as TestHelper;

let initialised = false;

/** Initialises the helper with the node-red installed here and starts its HTTP server. */
export async function startNodeRed(): Promise<void> {
  if (!initialised) {
    helper.init(require.resolve(nodeRedPackageDir()));
    initialised = true;
  }
  await helper.startServer();
}

export async function stopNodeRed(): Promise<void> {
  await helper.unload();
  await helper.stopServer();
}

/** Loads and starts a flow; resolves once every node's constructor has run. */
export function loadFlow(nodes: NodeModule[], flow: FlowNode[], credentials: FlowCredentials = {}): Promise<void> {
  return helper.load(nodes, flow, credentials);
}

/** Stops the running flow (every node's close handler has finished when it resolves). */
export function unloadFlow(): Promise<void> {
  return helper.unload();
}

/** A node of the running flow, typed as the test expects; throws when there is none. */
export function getNode<T>(id: string): T {
  const node = helper.getNode(id);
  if (node === null || node === undefined) throw new Error(`no node "${id}" in the running flow`);
  return node as T;
}

/**
 * The built node module for a type from dist/nodes/<type>/<type>.js. Its RED._ translates
 * with the built en-US catalog (the helper's own RED._ returns keys unchanged), so tests see
 * the messages users see, and a key missing from the catalog fails loudly.
 */
export function builtNode(type: string): NodeModule {
  const file = path.join(ROOT, 'dist', 'nodes', type, `${type}.js`);
  if (!existsSync(file)) {
    throw new Error(`${path.relative(ROOT, file)} is missing: Node-RED tests load the built package, run \`npm run build\` first`);
  }
  // Only the node's own sources are compared: lib/ changes under parallel work would make this flaky.
  const source = path.join(ROOT, 'nodes', type);
  const newest = newestMtime(source);
  if (newest > statSync(file).mtimeMs) {
    throw new Error(`${path.relative(ROOT, file)} is older than ${path.relative(ROOT, source)}/: run \`npm run build\``);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the path is only known at run time
  const mod = require(file) as NodeModule;
  const translate = messages(type);
  // The helper hands one RED object to every module of a flow: each gets its own _ on top.
  return (RED) => mod(Object.create(RED, { _: { value: translate } }) as NodeApiStub);
}

// The node tests' waitFor lives with the other waiting helpers.
export { waitFor } from './wait';

export type Translate = (key: string, substitutions?: Record<string, unknown>) => string;

/**
 * Node-RED's message lookup for a type, from its built en-US catalog: keys of its own, bare
 * or namespaced ("node-red-contrib-redis-sync/<type>:..."), with __name__ substituted as
 * Node-RED's i18next does. Throws for a key the catalog lacks.
 */
export function messages(type: string): Translate {
  const catalogFile = path.join(ROOT, 'dist', 'nodes', type, 'locales', 'en-US', `${type}.json`);
  const catalog: unknown = existsSync(catalogFile) ? JSON.parse(readFileSync(catalogFile, 'utf8')) : {};
  const ownPrefix = `${MODULE_NAME}/${type}:`;
  return (key, substitutions = {}) => {
    let local = key;
    if (key.startsWith(ownPrefix)) local = key.slice(ownPrefix.length);
    // Another catalog (node-red's own "node-red:common..."): not loaded here, left as the helper leaves it.
    else if (key.includes(':')) return key;
    const message = local.split('.').reduce<unknown>((at, part) => (at as Record<string, unknown> | undefined)?.[part], catalog);
    if (typeof message !== 'string') throw new Error(`message "${local}" is missing from ${path.relative(ROOT, catalogFile)}`);
    return message.replace(/__([A-Za-z0-9_]+)__/g, (whole, name: string) => (name in substitutions ? String(substitutions[name]) : whole));
  };
}

/** A property as the editor defines it; validate returns true, or false / a message when invalid. */
export interface EditorProperty {
  value?: unknown;
  type?: string;
  validate?: (this: Record<string, unknown>, value: unknown, opt?: object) => boolean | string;
}

/** A port's label as the editor asks for it: `this` is the node (its `_` translates), i the port's index. */
export type PortLabels = string | string[] | ((this: Record<string, unknown>, i: number) => string);

export interface EditorDefinition {
  category: string;
  defaults: Record<string, EditorProperty>;
  credentials?: Record<string, EditorProperty>;
  label?: string | ((this: Record<string, unknown>) => string);
  icon?: string;
  inputs?: number;
  outputs?: number;
  inputLabels?: PortLabels;
  outputLabels?: PortLabels;
}

/**
 * What the built .html registers for the type, evaluated in a sandbox: RED._ is messages(type)
 * and `$` finds nothing, as when no edit dialog is open (validators then read the node's own
 * values). Script files it loads from the package's resources/ folder (as Node-RED serves it,
 * resources/<package>/<file>) run first, as in the editor. Call label with a node whose `_` is
 * messages(type).
 */
export function editorDefinition(type: string): EditorDefinition {
  const file = path.join(ROOT, 'dist', 'nodes', type, `${type}.html`);
  const html = readFileSync(file, 'utf8');
  const registered = new Map<string, EditorDefinition>();
  const context = vm.createContext({
    RED: { _: messages(type), nodes: { registerType: (t: string, def: EditorDefinition) => registered.set(t, def) } },
    $: () => ({ length: 0 }),
  });
  const resource = `resources/${MODULE_NAME}/`;
  for (const [, attributes, code] of html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)) {
    const src = /\bsrc="([^"]*)"/.exec(attributes)?.[1];
    if (src !== undefined) {
      if (!src.startsWith(resource)) throw new Error(`${path.relative(ROOT, file)} loads ${src}, not a file of ${resource}`);
      const script = path.join(ROOT, 'resources', src.slice(resource.length));
      vm.runInContext(readFileSync(script, 'utf8'), context, { filename: script });
    } else if (/type="text\/javascript"/.test(attributes)) {
      vm.runInContext(code, context, { filename: file });
    }
  }
  const definition = registered.get(type);
  if (definition === undefined) throw new Error(`${path.relative(ROOT, file)} does not register "${type}"`);
  return definition;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/** Core nodes the test helper of Node-RED 5 registers by itself; giving them again fails. */
const BUILT_IN_FROM_5 = new Set(['common/25-catch.js', 'common/25-status.js', 'common/24-complete.js']);

/**
 * Core nodes a flow needs (catch, inject, debug, function …), by their file under
 * @node-red/nodes/core, from the runtime under test.
 */
export function coreNodes(...files: string[]): NodeModule[] {
  if (nodeRedMajor() >= 5) files = files.filter((f) => !BUILT_IN_FROM_5.has(f));
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the core nodes of the runtime under test
  return files.map((f) => require(path.join(nodeRedPackageDir(), '..', '@node-red', 'nodes', 'core', f)) as NodeModule);
}

/** A message as a helper node of a test flow receives it (one from a Catch node has `error`). */
export interface HelperMessage {
  topic?: string;
  payload: unknown;
  redisSync?: Record<string, unknown>;
  error?: { message: string };
}

/** The node under test as a test drives it: receive() hands it a message, as a wire would. */
export interface NodeUnderTest {
  receive(msg: object): void;
  status: (s: { fill?: string; text?: string }) => void;
}

/**
 * A flow on the tab "tab": `nodes`, a helper node for each id in `helpers` (wire the outputs
 * under test to them), and a Catch node for the whole tab that sends to the helper "caught"
 * (load it with coreNodes('common/25-catch.js')).
 */
export function testFlow(nodes: FlowNode[], helpers: string[]): FlowNode[] {
  return [
    { id: 'tab', type: 'tab' },
    ...nodes,
    ...helpers.map((id) => ({ id, type: 'helper', z: 'tab' })),
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

/** A helper node of the running flow: it calls its input listeners with each message. */
export interface HelperNode<M = HelperMessage> {
  on(event: 'input', cb: (msg: M) => void): void;
}

/** Every message the helper node `id` of the running flow receives from now on, in order. */
export function received<M = HelperMessage>(id: string): M[] {
  const messages: M[] = [];
  getNode<HelperNode<M>>(id).on('input', (m) => messages.push(m));
  return messages;
}

/** Records every status a node of the running flow sets, as "fill:text", while still setting it. */
export function statusesOf(id: string): string[] {
  const node = getNode<{ status: (s: { fill?: string; text?: string }) => void }>(id);
  const seen: string[] = [];
  const original = node.status.bind(node);
  node.status = (s) => {
    seen.push(`${s.fill}:${s.text}`);
    original(s);
  };
  return seen;
}

/**
 * Records the text of every node.error a node of the running flow makes from now on (what
 * Node-RED logs, unless a Catch node takes it), while still making it.
 */
export function errorsOf(id: string): string[] {
  const node = getNode<{ error: (message: unknown, msg?: object) => void }>(id);
  const seen: string[] = [];
  const original = node.error.bind(node);
  node.error = (message, msg) => {
    seen.push(String(message));
    original(message, msg);
  };
  return seen;
}
