import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import type { RedisCluster, RedisServer } from './harness';
import { assertSameKeyspace, keyspaceOf } from './support/compare';
import { listRdbFixtures, type RdbFixture } from './support/fixtures';
import { comparable, readKeyspace } from './support/keyspace';
import { builtNode, coreNodes, errorsOf, getNode, loadFlow, received, startNodeRed, statusesOf, stopNodeRed, testFlow, unloadFlow, waitFor, type FlowNode, type NodeModule, type NodeUnderTest } from './support/node-red';
import { TestServers } from './support/servers';
import { requireBuilds } from './support/versions';
import { fillAllTypes } from './support/workload';

const nodes = (): NodeModule[] => [builtNode('redis-endpoint'), builtNode('redis-rdb-source'), builtNode('redis-slot-router'), builtNode('redis-cluster-sink'), ...coreNodes('common/25-catch.js')];

function endpoint(target: RedisServer | RedisCluster): FlowNode {
  if ('seeds' in target) return { id: 'dst', type: 'redis-endpoint', mode: 'cluster', host: '127.0.0.1', port: String(target.seeds[0].port), seeds: target.seeds.map((s) => `${s.host}:${s.port}`).join(',') };
  return { id: 'dst', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(target.port) };
}

/** file source -> slot router (`partitions` outputs) -> one sink per output -> destination. */
function flow(target: RedisServer | RedisCluster, partitions: number, source: Partial<FlowNode> = {}): FlowNode[] {
  const sinks = Array.from({ length: partitions }, (_, i) => ({ id: `sink${i}`, type: 'redis-cluster-sink', z: 'tab', endpoint: 'dst', wires: [[]] }));
  return testFlow(
    [
      endpoint(target),
      { id: 'src', type: 'redis-rdb-source', z: 'tab', wires: [['router'], ['progress']], ...source },
      { id: 'router', type: 'redis-slot-router', z: 'tab', partitions, outputs: partitions, wires: sinks.map((s) => [s.id]) },
      ...sinks,
    ],
    ['progress'],
  );
}

/** Sends `msg` to the source and waits for its load to end: the last status, green done or red. */
async function load(statuses: string[], msg: object): Promise<string> {
  const before = statuses.length;
  getNode<NodeUnderTest>('src').receive(msg);
  await waitFor(() => statuses.slice(before).some((s) => /^(green:done|red:)/.test(s)), 60_000, 'the load to end');
  return statuses.slice(before).find((s) => /^(green:done|red:)/.test(s)) as string;
}

/** The destination holds exactly the fixture: its dbs, keys, values, TTLs, field TTLs and function libraries. */
async function assertHoldsFixture(c: Redis, fx: RdbFixture): Promise<void> {
  const info = await c.info('keyspace');
  const dbs = [...info.matchAll(/^db(\d+):keys=(\d+)/gm)].map((m) => m[1]);
  for (const db of dbs) {
    const live = Object.fromEntries(Object.entries(await readKeyspace(c, Number(db))).filter(([k]) => !k.startsWith('redis-sync:')));
    const expected = fx.expected.databases[db] ?? {};
    assert.deepEqual(Object.keys(live).sort(), Object.keys(expected).sort(), `db ${db} keys`);
    for (const [name, exp] of Object.entries(expected)) {
      assert.deepEqual(comparable(live[name]), comparable(exp), `db ${db} key ${name.slice(0, 60)}`);
      if (exp.field_expire_ms !== undefined) assert.deepEqual(live[name].field_expire_ms, exp.field_expire_ms, `db ${db} key ${name.slice(0, 60)}: field TTLs`);
    }
  }
  for (const db of Object.keys(fx.expected.databases)) assert.ok(dbs.includes(db), `db ${db} is loaded`);
  await c.select(0);
  const libraries = (await c.call('FUNCTION', 'LIST', 'WITHCODE')) as unknown[][];
  const got = libraries.map((l) => `${String(l[1])}:${String(l[l.length - 1])}`).sort();
  const want = (fx.expected.functions as Array<{ library_name: string; code: string }>).map((l) => `${l.library_name}:${l.code}`).sort();
  assert.deepEqual(got, want, 'function libraries');
}

describe('redis-rdb-source node: an RDB backup file through the slot router and the cluster sink', function () {
  this.timeout(180_000);
  const servers = new TestServers();
  let dir: string;
  before(startNodeRed);
  after(stopNodeRed);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rdb-source-'));
  });
  afterEach(async () => {
    await unloadFlow();
    await servers.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every fixture of the conformance suite, from its path and from its bytes in msg.payload, arrives in a real 8.0 server equal to its JSON', async function () {
    requireBuilds(this, ['8.0-m01']);
    const destination = await servers.version('8.0-m01');
    const c = destination.client();
    await loadFlow(nodes(), flow(destination, 1));
    const statuses = statusesOf('src');
    const fixtures = listRdbFixtures();
    assert.ok(fixtures.length >= 40, `only ${fixtures.length} fixtures found`);
    for (const fx of fixtures) {
      for (const msg of [{ filename: fx.rdbPath }, { payload: readFileSync(fx.rdbPath) }]) {
        const how = 'filename' in msg ? 'path' : 'bytes';
        await c.flushall();
        await c.call('FUNCTION', 'FLUSH');
        const keys = Object.values(fx.expected.databases).reduce((n, db) => n + Object.keys(db).length, 0);
        assert.equal(await load(statuses, msg), `green:done: ${keys} keys`, `${fx.release}/${fx.name} from its ${how}`);
        await assertHoldsFixture(c, fx).catch((err: Error) => {
          throw new Error(`${fx.release}/${fx.name} from its ${how}: ${err.message}`);
        });
      }
    }
  });

  it('a dump.rdb of a server with every type and big keys in parts, into a 3-master cluster over 3 router partitions, equals the server it came from', async () => {
    const [origin, cluster] = await Promise.all([servers.server(), servers.cluster({ masters: 3, replicas: 0 })]);
    const o = origin.client();
    await fillAllTypes(o, 'f:', 30);
    for (let i = 0; i < 3000; i++) await o.set(`plain:${i}`, `value-${i}`, 'PX', 3_600_000 + i);
    await o.hset('big:hash', Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`field-${i}`, 'v'.repeat(40)])));
    await o.rpush('big:list', ...Array.from({ length: 5000 }, (_, i) => `item-${i}-${'x'.repeat(30)}`));
    await o.call('SAVE');
    const path = join(String(await o.config('GET', 'dir').then((r) => (r as string[])[1])), 'dump.rdb');
    // the file as a backup is: a copy, read while the server goes on
    const file = join(dir, 'backup.rdb');
    writeFileSync(file, readFileSync(path));

    await loadFlow(nodes(), flow(cluster, 3, { path: file, bigKeyMb: 0.0625, batchOps: 200 }));
    const statuses = statusesOf('src');
    const progress = received('progress');
    const caught = received('caught');
    const keys = Number(/keys=(\d+)/.exec(await o.info('keyspace'))?.[1]);
    assert.equal(await load(statuses, {}), `green:done: ${keys} keys`, JSON.stringify(caught.map((m) => m.error?.message)));
    assertSameKeyspace(await keyspaceOf(cluster), await keyspaceOf(origin), 100);
    assert.equal((progress[progress.length - 1].payload as { phase: string }).phase, 'done');
    assert.ok(statuses.some((s) => /^blue:reading/.test(s)));
  });

  const faults: Array<[string, (rdb: Buffer) => Buffer, RegExp, (rdb: Buffer) => number]> = [
    ['cut off in the middle', (rdb) => rdb.subarray(0, rdb.length >> 1), /RDB TRUNCATED at byte (\d+)/, (rdb) => rdb.length >> 1],
    [
      'with one byte of a value changed',
      (rdb) => {
        const bad = Buffer.from(rdb);
        const at = bad.indexOf('fixturelib');
        bad[at] ^= 0x20;
        return bad;
      },
      /RDB BAD_CHECKSUM at byte (\d+)/,
      (rdb) => rdb.length - 8,
    ],
  ];
  for (const [what, damage, error, offsetOf] of faults) {
    it(`a file ${what} ends red with the byte offset, said to Catch nodes`, async () => {
      const destination = await servers.server();
      const fx = listRdbFixtures().find((f) => f.release === 'redis-7.0.15' && f.name === 'all-types') as RdbFixture;
      const rdb = readFileSync(fx.rdbPath);
      const file = join(dir, 'damaged.rdb');
      writeFileSync(file, damage(rdb));
      await loadFlow(nodes(), flow(destination, 1, { path: file }));
      const statuses = statusesOf('src');
      const caught = received('caught');
      const errors = errorsOf('src');
      const end = await load(statuses, {});
      await waitFor(() => caught.length > 0, 5000, 'a caught error');
      const m = error.exec(String(caught[0].error?.message));
      assert.ok(m, `${caught[0].error?.message}`);
      assert.equal(Number(m[1]), offsetOf(rdb));
      assert.match(errors[0], new RegExp(`^loading ${file} stopped: `));
      assert.equal(end, `red:bad RDB at ${Number(m[1]) >= 1e4 ? `${Math.round(Number(m[1]) / 1e3)}k` : m[1]}`);
    });
  }

  it('a file that does not exist ends red naming ENOENT, said to Catch nodes with its path', async () => {
    const destination = await servers.server();
    const file = join(dir, 'absent.rdb');
    await loadFlow(nodes(), flow(destination, 1, { path: file }));
    const statuses = statusesOf('src');
    const caught = received('caught');
    assert.equal(await load(statuses, {}), 'red:failed: ENOENT');
    await waitFor(() => caught.length > 0, 5000, 'a caught error');
    assert.match(String(caught[0].error?.message), new RegExp(`^loading ${file} stopped: ENOENT`));
  });

  it('a load with no file set and no file in the message fails at once, naming what to send', async () => {
    const destination = await servers.server();
    await loadFlow(nodes(), flow(destination, 1));
    const statuses = statusesOf('src');
    const caught = received('caught');
    getNode<NodeUnderTest>('src').receive({ payload: 'load' });
    await waitFor(() => caught.length > 0, 5000, 'a caught error');
    assert.match(String(caught[0].error?.message), /msg\.filename/);
    assert.equal(statuses[statuses.length - 1], 'red:failed: INPUT');
  });
});
