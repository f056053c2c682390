import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRedis, type RedisServer } from './harness';
import { builtNode, coreNodes, getNode, loadFlow, startNodeRed, stopNodeRed, unloadFlow, waitFor, type FlowNode } from './support/node-red';

const EXAMPLES = resolve(__dirname, '..', 'examples');

interface StatusNode {
  status: (s: { fill?: string; text?: string }) => void;
  receive(msg: object): void;
}

describe('examples deploy and run', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let destination: RedisServer;
  let dir: string;
  before(async () => {
    await startNodeRed();
    server = await startRedis();
    destination = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'examples-'));
  });
  after(async () => {
    await stopNodeRed();
    await server.stop();
    await destination.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(unloadFlow);

  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));
  it('there is at least one example for each node type', () => {
    const types = new Set(files.flatMap((f) => (JSON.parse(readFileSync(join(EXAMPLES, f), 'utf8')) as FlowNode[]).map((n) => n.type)));
    const pkg = JSON.parse(readFileSync(resolve(__dirname, '..', 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
    for (const t of Object.keys(pkg['node-red'].nodes)) assert.ok(types.has(t), `no example uses ${t}`);
  });

  for (const file of files) {
    it(`${file}: deploys against a live server and its sources reach streaming`, async () => {
      const flow = JSON.parse(readFileSync(join(EXAMPLES, file), 'utf8')) as FlowNode[];
      // endpoints a source reads from point at one live server, every other endpoint at another
      const sourceEndpoints = new Set(flow.filter((n) => n.type === 'redis-replica-source').map((n) => n.endpoint));
      for (const n of flow) {
        if (n.type === 'redis-endpoint') {
          const target = sourceEndpoints.has(n.id) ? server : destination;
          Object.assign(n, { mode: 'standalone', host: '127.0.0.1', port: String(target.port) });
        }
        if (n.type === 'redis-replica-source') n.spoolDir = join(dir, n.id);
      }
      const pkg = JSON.parse(readFileSync(resolve(__dirname, '..', 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } };
      const ours = Object.keys(pkg['node-red'].nodes).map((t) => builtNode(t));
      const modules = [...ours, ...coreNodes('common/20-inject.js', 'common/21-debug.js', 'common/25-catch.js', 'function/10-function.js')];
      await loadFlow(modules, flow);
      for (const src of flow.filter((n) => n.type === 'redis-replica-source')) {
        const node = getNode<StatusNode>(src.id);
        const texts: string[] = [];
        const original = node.status.bind(node);
        node.status = (s) => {
          texts.push(String(s.text));
          original(s);
        };
        // an inject named "start" wired to it starts a source set to start on input
        for (const inj of flow.filter((n) => n.type === 'inject' && n.name === 'start' && n.wires?.[0]?.includes(src.id))) {
          getNode<{ receive(m: object): void }>(inj.id).receive({});
        }
        await waitFor(() => texts.some((t) => t.startsWith('streaming')), 15_000, `${src.id} streaming`);
      }
    });
  }
});
