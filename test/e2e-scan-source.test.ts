/**
 * The scan source end to end in a real Node-RED runtime (the built nodes) against servers
 * tuned as managed services are: SYNC, PSYNC and CONFIG renamed away, notify-keyspace-events
 * set (as a user sets it in the provider's console). Every test compares the destination
 * with the source exactly (compare.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RedisCluster, RedisServer } from './harness';
import { converge, keyspaceOf } from './support/compare';
import { builtNode, coreNodes, loadFlow, received, startNodeRed, statusesOf, stopNodeRed, unloadFlow, waitFor, type FlowNode, type HelperMessage } from './support/node-red';
import { TestServers } from './support/servers';
import { fillAllTypes, nonIdempotentWrites } from './support/workload';

/** What managed services do to their customers' servers: no replication, no CONFIG. */
const MANAGED = { 'rename-command': ['SYNC ""', 'PSYNC ""', 'CONFIG ""'] };
const MANAGED_NOTIFYING = { ...MANAGED, 'notify-keyspace-events': 'KA' };

type Target = RedisServer | RedisCluster;

function endpoint(id: string, target: Target): FlowNode {
  return 'seeds' in target
    ? { id, type: 'redis-endpoint', mode: 'cluster', seeds: target.seeds.map((s) => `${s.host}:${s.port}`).join(',') }
    : { id, type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(target.port) };
}

function pipeline(src: Target, dst: Target, dir: string, source: Partial<FlowNode> = {}): FlowNode[] {
  return [
    { id: 'tab', type: 'tab' },
    endpoint('srcEp', src),
    endpoint('dstEp', dst),
    { id: 'src', type: 'redis-scan-source', z: 'tab', endpoint: 'srcEp', stateDir: dir, scanCount: 200, bigKeyMb: 0.0625, ...source, wires: [['sink'], ['progress']] },
    { id: 'progress', type: 'helper', z: 'tab' },
    { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict: 'ignore', exactlyOnce: true, wires: [[]] },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

const nodes = () => [builtNode('redis-endpoint'), builtNode('redis-scan-source'), builtNode('redis-cluster-sink'), ...coreNodes('common/25-catch.js')];

interface Progress {
  phase: string;
  rescans: number;
  scanned: number;
}

function lastProgress(messages: HelperMessage[]): Progress | null {
  return (messages.at(-1)?.payload as Progress | undefined) ?? null;
}

/** Writes of every type, deletes, renames, expirations and evictions-free TTL changes, in db 0 and db 2. */
async function liveWrites(src: RedisServer, prefix: string, rounds: number): Promise<void> {
  const c = src.client();
  try {
    await nonIdempotentWrites(c, prefix, rounds);
    for (let r = 0; r < rounds; r++) {
      await c.set(`${prefix}ttl:${r % 5}`, `short-${r}`, 'PX', 200);
      await c.rpush(`${prefix}{w${r % 10}}rlist`, `again-${r}`);
      await c.rename(`${prefix}{w${r % 10}}rlist`, `${prefix}{w${r % 10}}renamed`);
      await c.del(`${prefix}{w${(r + 5) % 10}}text`);
      await c.expire(`${prefix}{w${r % 10}}h`, 3600);
    }
    await c.select(2);
    await fillAllTypes(c, `${prefix}db2:`, 3);
  } finally {
    c.disconnect();
  }
}

describe('scan source end to end (sources tuned as managed services: SYNC, PSYNC, CONFIG renamed)', function () {
  this.timeout(180_000);
  const servers = new TestServers();
  let dir: string;

  before(startNodeRed);
  after(stopNodeRed);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-scan-'));
  });
  afterEach(async () => {
    await unloadFlow();
    await servers.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tuned server: copies every type in several dbs, big keys in chunks, then live writes of every type, and converges exactly', async () => {
    const src = await servers.server({ config: MANAGED_NOTIFYING });
    const dst = await servers.server();
    const c = src.client();
    await assert.rejects(c.call('PSYNC', '?', '-1'), /unknown command/);
    for (const db of [0, 3]) {
      await c.select(db);
      await fillAllTypes(c, `db${db}:`, 12);
    }
    c.disconnect();
    await loadFlow(nodes(), pipeline(src, dst, dir));
    const caught = received('caught');
    await liveWrites(src, 'live:', 150); // during the copy and after
    await converge(() => keyspaceOf(src, [0, 2, 3]), () => keyspaceOf(dst, [0, 2, 3]), { ms: 60_000, failure: () => caught[0]?.error?.message ?? null });
  });

  it('tuned cluster: every master is scanned and its notifications followed', async () => {
    const src = await servers.cluster({ replicas: 0, config: MANAGED_NOTIFYING });
    const dst = await servers.cluster({ replicas: 0 });
    const c = src.client();
    await fillAllTypes(c, 'c:', 10);
    await loadFlow(nodes(), pipeline(src, dst, dir));
    const caught = received('caught');
    await nonIdempotentWrites(c, 'live:', 200);
    await c.del('c:{t3}list');
    await c.del('c:{t4}hash');
    await converge(() => keyspaceOf(src), () => keyspaceOf(dst), { ms: 60_000, failure: () => caught[0]?.error?.message ?? null });
    c.disconnect();
  });

  it('after a restart, what was written while the node was stopped arrives by a rescan in the same sync (no new snapshot)', async () => {
    const src = await servers.server({ config: MANAGED_NOTIFYING });
    const dst = await servers.server();
    const c = src.client();
    await fillAllTypes(c, 'a:', 5);
    await loadFlow(nodes(), pipeline(src, dst, dir));
    await converge(() => keyspaceOf(src), () => keyspaceOf(dst), { ms: 30_000 });
    await unloadFlow();
    await nonIdempotentWrites(c, 'while-stopped:', 50);
    await c.set('a:{t1}str', 'changed while stopped');
    await loadFlow(nodes(), pipeline(src, dst, dir));
    const progress = received('progress');
    const statuses = statusesOf('src');
    await converge(() => keyspaceOf(src), () => keyspaceOf(dst), { ms: 30_000 });
    await waitFor(() => (lastProgress(progress)?.rescans ?? 0) >= 1, 5000, 'the rescan to be counted');
    assert.ok(!statuses.some((s) => s.startsWith('blue:full')), `a restart rescans, it does not copy anew: ${statuses.join(', ')}`);
    c.disconnect();
  });

  it('a killed notification connection (CLIENT KILL) is followed by a rescan that copies what was written meanwhile', async () => {
    const src = await servers.server({ config: MANAGED_NOTIFYING });
    const dst = await servers.server();
    const c = src.client();
    await fillAllTypes(c, 'k:', 3);
    await loadFlow(nodes(), pipeline(src, dst, dir));
    const progress = received('progress');
    await converge(() => keyspaceOf(src), () => keyspaceOf(dst), { ms: 30_000 });
    await waitFor(() => lastProgress(progress)?.phase === 'streaming', 5000, 'the source to stream');
    // the writes right after the kill reach no subscriber: only the rescan can copy them (a
    // delete made then could not be seen at all: the README says so)
    await c.multi().call('CLIENT', 'KILL', 'TYPE', 'pubsub').set('k:missed', 'written while unsubscribed').rpush('k:{t0}list', 'pushed while unsubscribed').exec();
    await converge(() => keyspaceOf(src), () => keyspaceOf(dst), { ms: 30_000 });
    assert.ok((lastProgress(progress)?.rescans ?? 0) >= 1);
    c.disconnect();
  });

  it('tuned server without notify-keyspace-events: the node stops, red, saying what to set', async () => {
    const src = await servers.server({ config: MANAGED });
    const dst = await servers.server();
    await loadFlow(nodes(), pipeline(src, dst, dir));
    const caught = received('caught');
    const statuses = statusesOf('src');
    await waitFor(() => caught.length > 0, 15_000, 'the failure');
    assert.match(String(caught[0].error?.message), /keyspace notifications are off.*notify-keyspace-events to "KA"/);
    await waitFor(() => statuses.includes('red:failed: notifications off'), 5000, 'the red status');
  });
});
