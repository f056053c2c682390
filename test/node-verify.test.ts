/**
 * The redis-verify node in a Node-RED runtime (the built node from dist/) against real
 * servers: the report, differing keys and progress on their outputs, the statuses, the op
 * filter picked in the dialog, "stop", and a failure red, logged and caught.
 */
import assert from 'node:assert/strict';
import type { KeyDifference, VerifyProgress, VerifyReport } from '../lib/verify';
import type { RedisServer } from './harness';
import { builtNode, coreNodes, errorsOf, getNode, loadFlow, received, startNodeRed, statusesOf, stopNodeRed, testFlow, unloadFlow, waitFor, type FlowNode, type NodeModule, type NodeUnderTest } from './support/node-red';
import { TestServers } from './support/servers';

const nodes = (): NodeModule[] => [builtNode('redis-endpoint'), builtNode('redis-op-filter'), builtNode('redis-verify'), ...coreNodes('common/25-catch.js')];

function flow(sourcePort: number, destinationPort: number, extra: Partial<FlowNode> = {}, more: FlowNode[] = []): FlowNode[] {
  return testFlow(
    [
      { id: 'src', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(sourcePort), connectTimeout: '2000' },
      { id: 'dst', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(destinationPort), connectTimeout: '2000' },
      { id: 'ver', type: 'redis-verify', z: 'tab', source: 'src', destination: 'dst', rounds: '1', rate: '0', wires: [['report'], ['differences'], ['progress']], ...extra },
      ...more,
    ],
    ['report', 'differences', 'progress'],
  );
}

describe('redis-verify node in a Node-RED runtime', function () {
  this.timeout(60_000);
  const servers = new TestServers();
  let source: RedisServer;
  let destination: RedisServer;

  before(startNodeRed);
  after(stopNodeRed);
  beforeEach(async () => {
    [source, destination] = await Promise.all([servers.server(), servers.server()]);
  });
  afterEach(async () => {
    await unloadFlow();
    await servers.stopAll();
  });

  it('reports an equal destination on output 1, green with the key count', async () => {
    for (const s of [source, destination]) for (let i = 0; i < 30; i++) await s.command('SET', `k${i}`, 'v');
    await loadFlow(nodes(), flow(source.port, destination.port));
    const report = received('report');
    const statuses = statusesOf('ver');
    getNode<NodeUnderTest>('ver').receive({ topic: 'check', payload: 'go' });
    await waitFor(() => report.length === 1, 15_000, 'the report');
    const r = report[0].payload as VerifyReport;
    assert.equal(report[0].topic, 'check');
    assert.deepEqual([r.equal, r.compared, r.missing, r.extra, r.differ, r.rounds], [true, 30, 0, 0, 0, 1]);
    assert.equal(statuses.at(-1), 'green:equal (30 keys)');
  });

  it('sends each differing key on output 2 and says how many differ', async () => {
    await source.command('MSET', 'a', '1', 'b', '2', 'c', '3');
    await destination.command('MSET', 'a', '1', 'b', 'two');
    await loadFlow(nodes(), flow(source.port, destination.port));
    const report = received('report');
    const differences = received('differences');
    const statuses = statusesOf('ver');
    getNode<NodeUnderTest>('ver').receive({ payload: 'go' });
    await waitFor(() => report.length === 1, 15_000, 'the report');
    const got = differences.map((m) => m.payload as KeyDifference).map((d) => [Buffer.from(d.key).toString(), d.reason]).sort();
    assert.deepEqual(got, [['b', 'value'], ['c', 'missing']]);
    assert.deepEqual((report[0].payload as VerifyReport).samples.map((s) => s.key).sort(), ['b', 'c']);
    assert.equal(statuses.at(-1), 'yellow:2 differ');
  });

  it("follows the op filter picked in the dialog (every db to 0 under a {db} prefix)", async () => {
    await source.command('SET', 'k', 'v');
    const c = source.client();
    await c.select(1);
    await c.set('k', 'one');
    c.disconnect();
    await destination.command('MSET', 'db0:k', 'v', 'db1:k', 'one');
    const filter: FlowNode = { id: 'flt', type: 'redis-op-filter', z: 'tab', allDbsToZero: true, keyPrefix: 'db{db}:', wires: [[]] };
    await loadFlow(nodes(), flow(source.port, destination.port, { filter: 'flt', extra: true }, [filter]));
    const report = received('report');
    getNode<NodeUnderTest>('ver').receive({ payload: 'go' });
    await waitFor(() => report.length === 1, 15_000, 'the report');
    const r = report[0].payload as VerifyReport;
    assert.deepEqual([r.equal, r.compared], [true, 2], JSON.stringify(r.samples));
  });

  it('shows its progress while verifying and stops on "stop"', async () => {
    const c = source.client();
    const p = c.pipeline();
    for (let i = 0; i < 20_000; i++) p.set(`k${i}`, 'v');
    await p.exec();
    c.disconnect();
    await loadFlow(nodes(), flow(source.port, destination.port, { rate: '5000' }));
    const report = received('report');
    const progress = received('progress');
    const statuses = statusesOf('ver');
    getNode<NodeUnderTest>('ver').receive({ payload: 'go' });
    await waitFor(() => progress.length >= 1, 5_000, 'a progress message');
    const first = progress[0].payload as VerifyProgress;
    assert.ok(first.percent > 0 && first.percent < 100 && first.total === 20_000, JSON.stringify(first));
    assert.ok(statuses.some((s) => /^blue:verifying \d+%$/.test(s)), statuses.join());
    getNode<NodeUnderTest>('ver').receive({ payload: 'stop' });
    await waitFor(() => report.length === 1, 5_000, 'the report of the stopped run');
    const r = report[0].payload as VerifyReport;
    assert.deepEqual([r.stopped, r.equal], [true, false]);
    assert.ok(r.compared < 20_000);
    assert.equal(statuses.at(-1), 'grey:stopped');
  });

  it('fails red, to the log and Catch nodes, when the destination cannot be reached', async () => {
    const port = destination.port;
    await destination.stop();
    await loadFlow(nodes(), flow(source.port, port));
    const caught = received('caught');
    const errors = errorsOf('ver');
    const statuses = statusesOf('ver');
    getNode<NodeUnderTest>('ver').receive({ payload: 'go' });
    await waitFor(() => caught.length === 1, 15_000, 'the Catch node');
    assert.match(errors.join(), /the destination cannot be reached: 127\.0\.0\.1/);
    assert.equal(statuses.at(-1), 'red:failed: CONNECT');
  });

  it('a source killed (SIGKILL) during a verify ends red as failed: CONNECT, to Catch nodes naming the source', async () => {
    const c = source.client();
    const p = c.pipeline();
    for (let i = 0; i < 20_000; i++) p.set(`k${i}`, 'v');
    await p.exec();
    c.disconnect();
    await loadFlow(nodes(), flow(source.port, destination.port, { rate: '5000' }));
    const progress = received('progress');
    const caught = received('caught');
    const statuses = statusesOf('ver');
    getNode<NodeUnderTest>('ver').receive({ payload: 'go' });
    await waitFor(() => progress.length >= 1, 5_000, 'a progress message');
    source.kill('SIGKILL');
    await waitFor(() => caught.length === 1, 15_000, 'the Catch node');
    assert.match(String(caught[0].error?.message), /the source broke off: 127\.0\.0\.1:\d+: /);
    assert.equal(statuses.at(-1), 'red:failed: CONNECT');
  });

  it('a wrong password of the source ends red as failed: AUTH, to Catch nodes naming the source', async () => {
    await source.command('CONFIG', 'SET', 'requirepass', 'right');
    await loadFlow(nodes(), flow(source.port, destination.port), { src: { password: 'wrong' } });
    const caught = received('caught');
    const statuses = statusesOf('ver');
    getNode<NodeUnderTest>('ver').receive({ payload: 'go' });
    await waitFor(() => caught.length === 1, 15_000, 'the Catch node');
    assert.match(String(caught[0].error?.message), /the source cannot be reached: 127\.0\.0\.1:\d+: authentication .* failed: WRONGPASS/);
    assert.equal(statuses.at(-1), 'red:failed: AUTH');
  });
});
