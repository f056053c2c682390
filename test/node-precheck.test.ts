/**
 * The redis-precheck node in a Node-RED runtime (the built node from dist/): routing by the
 * result, status texts, run on deploy, faults of the node itself to Catch, editor validation.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PrecheckReport } from '../lib/precheck';
import { startRedis, type RedisServer } from './harness';
import {
  builtNode,
  coreNodes,
  editorDefinition,
  getNode,
  helper,
  loadFlow,
  startNodeRed,
  stopNodeRed,
  unloadFlow,
  waitFor,
  type FlowNode,
  type HelperMessage,
  type NodeModule,
  type NodeUnderTest,
  received,
  statusesOf,
  testFlow,
} from './support/node-red';


const nodes = (): NodeModule[] => [builtNode('redis-endpoint'), builtNode('redis-precheck'), ...coreNodes('common/25-catch.js')];

function flow(sourcePort: number, destinationPort: number, extra: Partial<FlowNode> = {}): FlowNode[] {
  return testFlow(
    [
      { id: 'src', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(sourcePort), connectTimeout: '2000' },
      { id: 'dst', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(destinationPort), connectTimeout: '2000' },
      { id: 'pre', type: 'redis-precheck', z: 'tab', source: 'src', destination: 'dst', wires: [['passed'], ['failed']], ...extra },
    ],
    ['passed', 'failed'],
  );
}

/** What the outputs and Catch receive, and the node's status texts (fill:text). */
const collect = (): { passed: HelperMessage[]; failed: HelperMessage[]; caught: HelperMessage[]; statuses: string[] } =>
  ({ passed: received('passed'), failed: received('failed'), caught: received('caught'), statuses: statusesOf('pre') });

describe('redis-precheck node in a Node-RED runtime', function () {
  this.timeout(60_000);
  let source: RedisServer;
  let destination: RedisServer;

  before(async () => {
    await startNodeRed();
    [source, destination] = await Promise.all([startRedis(), startRedis()]);
  });
  after(async () => {
    await stopNodeRed();
    await Promise.all([source.stop(), destination.stop()]);
  });
  beforeEach(async () => {
    await Promise.all([source.command('FLUSHALL'), destination.command('FLUSHALL')]);
  });
  afterEach(unloadFlow);

  it('sends a passing precheck to output 1 with the report, keeping the message', async () => {
    await source.command('SET', 'k', 'v');
    await loadFlow(nodes(), flow(source.port, destination.port));
    const got = collect();
    getNode<NodeUnderTest>('pre').receive({ topic: 'go', payload: 'start' });
    await waitFor(() => got.passed.length === 1, 15_000, 'output 1');
    const msg = got.passed[0];
    assert.equal(msg.topic, 'go');
    const report = msg.payload as PrecheckReport;
    assert.equal(report.passed, true);
    assert.deepEqual(report.errors, []);
    assert.ok(report.findings.some((f) => f.id === 'eviction-policy' && f.severity === 'info'));
    assert.deepEqual(got.failed, []);
    assert.deepEqual(got.statuses, ['yellow:checking', 'green:passed']);
  });

  it('sends a failing precheck to output 2, shows the error count, and leaves Catch nodes alone', async () => {
    await destination.command('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    await destination.command('SET', 'taken', 'x');
    try {
      await loadFlow(nodes(), flow(source.port, destination.port, { requireEmpty: true }));
      const got = collect();
      getNode<NodeUnderTest>('pre').receive({ payload: 'start' });
      await waitFor(() => got.failed.length === 1, 15_000, 'output 2');
      const report = got.failed[0].payload as PrecheckReport;
      assert.equal(report.passed, false);
      assert.deepEqual(report.errors.map((f) => f.id).sort(), ['destination-empty', 'eviction-policy']);
      assert.equal(got.statuses.at(-1), 'red:failed: 2 errors');
      await sleep(200);
      assert.deepEqual(got.passed, []);
      assert.deepEqual(got.caught, [], 'a failed precheck is a result, not an error');
    } finally {
      await destination.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('passes the destination dbs to the emptiness check', async () => {
    await destination.command('SELECT', '0');
    const c = destination.client({ db: 2 });
    await c.set('x', '1');
    c.disconnect();
    await loadFlow(nodes(), flow(source.port, destination.port, { requireEmpty: true, databases: '0, 1' }));
    let got = collect();
    getNode<NodeUnderTest>('pre').receive({});
    await waitFor(() => got.passed.length === 1, 15_000, 'output 1 for dbs 0 and 1');
    await unloadFlow();
    // a range, as the op filter's db lists take them
    await loadFlow(nodes(), flow(source.port, destination.port, { requireEmpty: true, databases: '2-3' }));
    got = collect();
    getNode<NodeUnderTest>('pre').receive({});
    await waitFor(() => got.failed.length === 1, 15_000, 'output 2 for dbs 2 to 3');
    assert.match((got.failed[0].payload as PrecheckReport).errors[0].message, /db2: 1 key/);
    assert.equal(got.statuses.at(-1), 'red:failed: 1 error');
  });

  it('shows warnings in a passed status', async () => {
    await source.command('SET', 'huge', Buffer.alloc(2 * 1024 * 1024, 'y'));
    await destination.command('CONFIG', 'SET', 'proto-max-bulk-len', String(1024 * 1024));
    try {
      await loadFlow(nodes(), flow(source.port, destination.port));
      const got = collect();
      getNode<NodeUnderTest>('pre').receive({});
      await waitFor(() => got.passed.length === 1, 15_000, 'output 1');
      assert.equal(got.statuses.at(-1), 'yellow:passed (1 warning)');
    } finally {
      await destination.command('CONFIG', 'SET', 'proto-max-bulk-len', String(512 * 1024 * 1024));
    }
  });

  it('runs on deploy when set to', async () => {
    await loadFlow(nodes(), flow(source.port, destination.port, { runOnDeploy: true }));
    const got = collect();
    await waitFor(() => got.passed.length === 1, 15_000, 'a result without any input');
    assert.equal((got.passed[0].payload as PrecheckReport).passed, true);
  });

  it('does not run before an input message otherwise', async () => {
    await loadFlow(nodes(), flow(source.port, destination.port));
    const got = collect();
    await sleep(1500);
    assert.deepEqual([got.passed.length, got.failed.length], [0, 0]);
  });

  it('reports a fault of the node itself (no endpoint, bad dbs) with done(err), to Catch nodes', async () => {
    await loadFlow(nodes(), flow(source.port, destination.port, { destination: 'missing' }));
    let got = collect();
    getNode<NodeUnderTest>('pre').receive({ payload: 'x' });
    await waitFor(() => got.caught.length === 1, 10_000, 'a caught error');
    // Node-RED's done(err) hands Catch nodes err.toString()
    assert.equal(got.caught[0].error?.message, 'Error: no destination endpoint is configured');
    assert.equal(got.statuses.at(-1), 'red:error: CONFIG');
    assert.deepEqual([got.passed.length, got.failed.length], [0, 0]);
    await unloadFlow();

    await loadFlow(nodes(), flow(source.port, destination.port, { databases: 'zero' }));
    got = collect();
    getNode<NodeUnderTest>('pre').receive({});
    await waitFor(() => got.caught.length === 1, 10_000, 'a caught error');
    assert.match(String(got.caught[0].error?.message), /^Error: destination dbs: "zero" is not a db number/);
  });

  it('reports an unreachable endpoint as a failed precheck named in the status, not as a fault', async () => {
    const gone = await startRedis();
    const port = gone.port;
    await gone.stop();
    await loadFlow(nodes(), flow(source.port, port));
    const got = collect();
    getNode<NodeUnderTest>('pre').receive({});
    await waitFor(() => got.failed.length === 1, 15_000, 'output 2');
    const report = got.failed[0].payload as PrecheckReport;
    assert.deepEqual(report.errors.map((f) => f.id), ['connection']);
    assert.equal(got.statuses.at(-1), 'red:no connection', 'the cause that hid every other check');
    assert.deepEqual(got.caught, []);
  });

  it('names refused credentials in the status, and logs the errors with their remedies as a warning', async () => {
    const locked = await startRedis({ config: { requirepass: 'right' } });
    try {
      await loadFlow(nodes(), flow(locked.port, destination.port), { src: { password: 'wrong' } });
      const got = collect();
      const warnings = (): string[] =>
        helper.log().args.filter(([o]) => o.level === 30 && o.type === 'redis-precheck').map(([o]) => String(o.msg));
      getNode<NodeUnderTest>('pre').receive({});
      await waitFor(() => got.failed.length === 1, 15_000, 'output 2');
      assert.match(got.statuses.at(-1) ?? '', /^red:auth failed( \(\+\d+\))?$/);
      await waitFor(() => warnings().length > 0, 2000, 'the warning');
      assert.match(warnings()[0], new RegExp(`^precheck failed: source 127\\.0\\.0\\.1:${locked.port}: authentication as \\(default user\\) failed: WRONGPASS.* \\(check the user and password of the endpoint`));
      assert.deepEqual(got.caught, [], 'a result, not a fault');
    } finally {
      await locked.stop();
    }
  });

  it('validates the destination dbs in the editor', () => {
    const def = editorDefinition('redis-precheck');
    assert.equal(def.category, 'redis sync');
    const validate = def.defaults.databases.validate as (v: unknown) => boolean | string;
    for (const ok of ['', '0', '0, 3', '1,2 5', '0, 2-4', '0,']) assert.equal(validate.call({}, ok), true, ok);
    for (const bad of ['x', '-1', '1;2', '5-2']) assert.equal(validate.call({}, bad), 'db numbers or ranges like 2-5, separated by commas, or empty for every db', bad);
    assert.equal(def.defaults.typedFallback.value, true);
    assert.equal(def.defaults.requireEmpty.value, false);
    assert.equal(def.defaults.runOnDeploy.value, false);
  });
});
