/**
 * Commands between dbs (MOVE, COPY … DB, SWAPDB) and operations of dbs the destination lacks,
 * from a live source through Node-RED flows set up with defaults: none of them stops the sync
 * (README, "Dbs and the commands between them").
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import { converge, keyspaceOf, type Keyspace } from './support/compare';
import { builtNode, coreNodes, getNode, loadFlow, received, startNodeRed, statusesOf, stopNodeRed, unloadFlow, waitFor, type FlowNode, type HelperMessage } from './support/node-red';
import { fillAllTypes, nonIdempotentWrites } from './support/workload';

type Target = RedisServer | RedisCluster;

function endpoint(id: string, target: Target): FlowNode {
  return 'seeds' in target
    ? { id, type: 'redis-endpoint', mode: 'cluster', seeds: target.seeds.map((s) => `${s.host}:${s.port}`).join(',') }
    : { id, type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(target.port) };
}

/** Source -> [op filter] -> sink, with defaults but what `filter` sets; errors go to the `caught` helper. */
function flow(src: RedisServer, dst: Target, dir: string, filter: Partial<FlowNode> | null = null): FlowNode[] {
  const first = filter === null ? 'sink' : 'filter';
  return [
    { id: 'tab', type: 'tab' },
    endpoint('srcEp', src),
    endpoint('dstEp', dst),
    { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: dir, batchLatencyMs: 5, wires: [[first], []] },
    ...(filter === null ? [] : [{ id: 'filter', type: 'redis-op-filter', z: 'tab', ...filter, wires: [['sink']] }]),
    { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', wires: [[]] },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

const NODES = () => [...['redis-endpoint', 'redis-replica-source', 'redis-op-filter', 'redis-cluster-sink'].map((t) => builtNode(t)), ...coreNodes('common/25-catch.js')];

interface Running {
  caught: HelperMessage[];
  sink: string[];
  filter: string[];
  /** What the sink and the filter said as warnings. */
  warnings: string[];
  /** What the flow reported as failed: ends a converge at once. */
  failure: () => string | null;
}

/** Deploys, and waits until the source streams (a stock 7.0 master holds the full sync back 5 s). */
async function deploy(nodes: FlowNode[]): Promise<Running> {
  await loadFlow(NODES(), nodes);
  const caught = received('caught');
  const sink = statusesOf('sink');
  const filter = nodes.some((n) => n.id === 'filter') ? statusesOf('filter') : [];
  const source = statusesOf('src');
  const warnings: string[] = [];
  for (const id of nodes.some((n) => n.id === 'filter') ? ['sink', 'filter'] : ['sink']) {
    const node = getNode<{ warn: (m: unknown) => void }>(id);
    const warn = node.warn.bind(node);
    node.warn = (m) => {
      warnings.push(`${id}: ${String(m)}`);
      warn(m);
    };
  }
  const failure = (): string | null => {
    const bad = [...caught.map((m) => JSON.stringify(m.error)), ...sink.filter((s) => s.startsWith('red')), ...source.filter((s) => s.startsWith('red'))];
    return bad.length === 0 ? null : bad.join('\n');
  };
  await waitFor(() => failure() !== null || source.some((s) => s.startsWith('green:streaming')), 60_000, 'the source to stream');
  assert.equal(failure(), null);
  return { caught, sink, filter, warnings, failure };
}

/** Every db of `ks` as db 0, each key under `db<n>:`, as an op filter with every db to db 0 and the prefix db{db}: makes it. */
function prefixed(ks: Keyspace): Keyspace {
  const out: Keyspace = { 0: {} };
  for (const [db, keys] of Object.entries(ks)) for (const [name, v] of Object.entries(keys)) out[0][`db${db}:${name}`] = v;
  return out;
}

describe('end to end in Node-RED: commands between dbs never stop a sync set up with defaults', function () {
  this.timeout(180_000);
  let src: RedisServer;
  let c: Redis;
  let dir: string;
  const dbClient = (db: number): Redis => src.client({ db });

  before(async () => {
    await startNodeRed();
  });
  after(async () => {
    await stopNodeRed();
  });
  beforeEach(async () => {
    src = await startRedis();
    c = src.client();
    dir = mkdtempSync(join(tmpdir(), 'e2e-dbs-'));
  });
  afterEach(async () => {
    await unloadFlow();
    await src.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('into a standalone destination: SWAPDB, MOVE and COPY … DB as they came, exactly once across restarts, the checkpoints kept in db 0', async () => {
    const dst = await startRedis();
    try {
      for (const db of [0, 1, 2]) await fillAllTypes(dbClient(db), `db${db}:`, 4);
      const first = await deploy(flow(src, dst, dir));
      const [db0, db1] = [dbClient(0), dbClient(1)];
      await nonIdempotentWrites(db0, 'a:', 40);
      await db0.swapdb(0, 1);
      await nonIdempotentWrites(db0, 'b:', 40);
      await db0.move('db1:{t0}str', 2);
      await db1.call('COPY', 'db0:{t1}list', 'copied', 'DB', '2');
      await db0.swapdb(2, 0);
      await nonIdempotentWrites(db1, 'c:', 40);
      await converge(() => keyspaceOf(src, [0, 1, 2]), () => keyspaceOf(dst, [0, 1, 2]), { failure: first.failure });
      // a restart of the flow between two swaps: the next start continues from the saved position
      await unloadFlow();
      await db0.swapdb(1, 0);
      await nonIdempotentWrites(db0, 'd:', 40);
      const second = await deploy(flow(src, dst, dir));
      await converge(() => keyspaceOf(src, [0, 1, 2]), () => keyspaceOf(dst, [0, 1, 2]), { failure: second.failure });
      for (const db of [1, 2]) assert.deepEqual(await dst.client({ db }).keys('redis-sync:*'), [], `checkpoint keys in db ${db}`);
      assert.ok((await dst.client().keys('redis-sync:ckpt*')).length > 0, 'the checkpoints are in db 0');
      assert.ok(second.sink.at(-1)?.startsWith('green:applied'), second.sink.join(', '));
    } finally {
      await dst.stop();
    }
  });

  describe('into a cluster destination', () => {
    let dst: RedisCluster;
    before(async () => {
      dst = await startCluster({ masters: 3, replicas: 0 });
    });
    after(async () => {
      await dst.stop();
    });
    beforeEach(async () => {
      for (const m of await dst.masters()) await m.command('FLUSHALL');
    });

    it('without an op filter: db 0 as the source\'s, what other dbs do and SWAPDB dropped, counted in the status and said once', async () => {
      await fillAllTypes(c, 'k:', 4);
      const run = await deploy(flow(src, dst, dir));
      const [db0, db1] = [dbClient(0), dbClient(1)];
      await nonIdempotentWrites(db0, 'a:', 30);
      // the key leaves db 0 (a DEL there); what it does in db 1 has no place in the cluster
      await db0.move('k:{t0}str', 1);
      await db1.set('only-in-db1', 'x');
      await db1.incr('only-in-db1:n');
      await db0.call('COPY', 'k:{t1}list', 'copy-in-db1', 'DB', '1');
      await db0.swapdb(1, 2);
      await nonIdempotentWrites(db0, 'b:', 30);
      await converge(() => keyspaceOf(src), () => keyspaceOf(dst), { failure: run.failure });
      await waitFor(() => run.sink.some((s) => /^yellow:applied .* ops, dropped 5 db 1$/.test(s)), 10_000, `the drops in the sink's status (${run.sink.at(-1)})`);
      // db 0 takes db 1's keys on the source: nothing the cluster can do
      await db0.swapdb(0, 1);
      await db0.set('after-the-swap', 'still applied');
      await waitFor(async () => (await dst.client().get('after-the-swap')) === 'still applied', 10_000, 'a write after the SWAPDB to arrive');
      await waitFor(() => run.sink.some((s) => /dropped 5 db 1, 1 SWAPDB$/.test(s)), 10_000, `SWAPDB in the sink's status (${run.sink.at(-1)})`);
      assert.equal(run.failure(), null);
      assert.equal(run.warnings.length, 2, run.warnings.join('\n'));
      assert.match(run.warnings[0], /^sink: the operations of db 1 are dropped \(the first: MOVE of key "k:\{t0\}str" in db 0 at source offset \d+\): a cluster has db 0 only. Map db 1 into a db it has with a redis-op-filter/);
      assert.match(run.warnings[1], /^sink: SWAPDB 0 1 in db 0 at source offset \d+ is dropped: the destination has db 0 but not db 1 \(a cluster has db 0 only\)/);
    });

    it('through an op filter with every db to db 0 and a key prefix per db: MOVE and COPY … DB between dbs carried out, SWAPDB counted as lost', async () => {
      for (const db of [0, 1, 2]) await fillAllTypes(dbClient(db), `k${db}:`, 3);
      const run = await deploy(flow(src, dst, dir, { allDbsToZero: true, keyPrefix: 'db{db}:' }));
      const [db1, db2] = [dbClient(1), dbClient(2)];
      await nonIdempotentWrites(db1, 'a:', 30);
      // RENAME db1:… db2:… and COPY db1:… db2:…, in one slot (a hash tag) and across slots
      await db1.set('plain', 'moved across slots');
      await db1.move('plain', 2);
      await db1.move('k1:{t0}list', 2);
      await db1.move('a:{w3}counter', 2);
      await db2.incr('a:{w3}counter');
      await db1.call('COPY', 'k1:{t1}hash', 'copied', 'DB', '2');
      await nonIdempotentWrites(db2, 'b:', 30);
      const expected = async (): Promise<Keyspace> => prefixed(await keyspaceOf(src, [0, 1, 2]));
      await converge(expected, () => keyspaceOf(dst), { failure: run.failure });
      await db1.swapdb(1, 2);
      await db1.set('after-the-swap', 'still applied');
      await waitFor(async () => (await dst.client().get('db1:after-the-swap')) === 'still applied', 10_000, 'a write after the SWAPDB to arrive');
      await waitFor(() => run.filter.some((s) => /^yellow:kept .*, lost 1 SWAPDB$/.test(s)), 10_000, `the loss in the filter's status (${run.filter.at(-1)})`);
      assert.ok(run.sink.at(-1)?.startsWith('green:applied'), run.sink.join(', '));
      assert.equal(run.failure(), null);
      assert.equal(run.warnings.length, 1, run.warnings.join('\n'));
      assert.match(run.warnings[0], /^filter: SWAPDB in db 1 at source offset \d+ is dropped: dbs 1 and 2 both go into db 0, told apart by their key prefixes/);
    });
  });
});
