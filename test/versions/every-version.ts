/**
 * The version suite (`npm run test:versions`): every Redis and Valkey build we claim, started
 * with its stock configuration, as a source of a full + incremental sync through the nodes in
 * a Node-RED runtime while writes continue, into Redis 7.0, into its own version and into
 * older destinations; and, from 3.0 on, as a 3-master cluster source. Every key (type, value,
 * TTL, field TTLs, stream groups with their pending entries) and the function libraries are
 * compared. Builds that are absent are listed; under CI an absent build fails the suite.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from '../harness';
import { converge, keyspaceOf } from '../support/compare';
import { builtNode, coreNodes, loadFlow, received, startNodeRed, statusesOf, stopNodeRed, unloadFlow, waitFor, type FlowNode } from '../support/node-red';
import { redisBuild, REDIS_BIN_DIR, VERSIONS, type RedisBuild, type VersionName } from '../support/versions';
import { capabilities, fillEveryType, liveWrites, type Capabilities } from './workload';

type Target = RedisServer | RedisCluster;

const DBS = [0, 2, 9];
const NODE_TYPES = ['redis-endpoint', 'redis-replica-source', 'redis-slot-router', 'redis-cluster-sink'];

/** Destinations of each source: Redis 7.0, its own version, and the older ones users move to. */
const DESTINATIONS: Record<VersionName, VersionName[]> = {
  '2.8.24': ['7.0', '2.8.24', '4.0.14'],
  '3.2.13': ['7.0', '3.2.13', '4.0.14'],
  '4.0.14': ['7.0', '4.0.14'],
  '5.0.14': ['7.0', '5.0.14'],
  '6.2.16': ['7.0', '6.2.16'],
  '7.0': ['7.0', '5.0.14'],
  '7.2.6': ['7.0', '7.2.6', 'valkey-8.0.1'],
  '7.4.1': ['7.0', '7.4.1', '6.2.16', '5.0.14'],
  '8.0-m01': ['7.0', '8.0-m01'],
  'valkey-8.0.1': ['7.0', 'valkey-8.0.1', '7.2.6'],
};

const timings: string[] = [];
/** Statuses of the running flow's sources and sinks, recorded from the deploy on. */
let status = new Map<string, string[]>();
const absent: string[] = [];

function build(name: VersionName): RedisBuild | null {
  const b = redisBuild(name);
  if (typeof b === 'string') {
    if (!absent.includes(`${name}: ${b}`)) absent.push(`${name}: ${b}`);
    return null;
  }
  return b;
}

function capsOf(b: RedisBuild): Capabilities {
  return capabilities(b.version, b.name.startsWith('valkey'));
}

/** What both sides can hold: a source's data of kinds the destination lacks cannot arrive. */
function common(a: Capabilities, b: Capabilities): Capabilities {
  return { streams: a.streams && b.streams, functions: a.functions && b.functions, hashFieldTtls: a.hashFieldTtls && b.hashFieldTtls, moves: a.moves && b.moves };
}

function endpoint(id: string, target: Target): FlowNode {
  return 'seeds' in target
    ? { id, type: 'redis-endpoint', mode: 'cluster', seeds: target.seeds.map((s) => `${s.host}:${s.port}`).join(',') }
    : { id, type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(target.port) };
}

/** One source node and one sink per destination (each source node is a replica of its own), routed by slot into a cluster. */
function flow(src: Target, dsts: Target[], dir: string): FlowNode[] {
  const nodes: FlowNode[] = [{ id: 'tab', type: 'tab' }, endpoint('srcEp', src), { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] }, { id: 'caught', type: 'helper', z: 'tab' }];
  dsts.forEach((dst, i) => {
    const cluster = 'seeds' in dst;
    nodes.push(
      endpoint(`dstEp${i}`, dst),
      { id: `src${i}`, type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: join(dir, `s${i}`), batchLatencyMs: 5, bigKeyMb: 0.0625, wires: [[cluster ? `router${i}` : `sink${i}`], []] },
      { id: `sink${i}`, type: 'redis-cluster-sink', z: 'tab', endpoint: `dstEp${i}`, conflict: 'ignore', exactlyOnce: true, wires: [[]] },
    );
    if (cluster) nodes.push({ id: `router${i}`, type: 'redis-slot-router', z: 'tab', partitions: 1, outputs: 1, wires: [[`sink${i}`]] });
  });
  return nodes;
}

/** FUNCTION LIST WITHCODE of a server (or a cluster's first master), library by library; [] before 7.0. */
async function functionsOf(target: Target, caps: Capabilities): Promise<string[]> {
  if (!caps.functions) return [];
  const server = 'seeds' in target ? (await target.masters())[0] : target;
  const libs = (await server.command('FUNCTION', 'LIST', 'WITHCODE')) as unknown[][];
  return libs.map((l) => JSON.stringify(l)).sort();
}

/**
 * Fills the source, starts the flow, writes on while it syncs, and compares each destination
 * with the source (every key of every db, and the functions both sides can hold).
 */
async function syncAndCompare(source: RedisBuild, src: Target, dsts: Array<{ build: RedisBuild; target: Target }>, fillCaps: Capabilities, andThen?: (errors: () => string | null) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'versions-'));
  const c = src.client();
  const dbs = 'seeds' in src ? [0] : DBS;
  try {
    if ('seeds' in src) await fillCluster(src, fillCaps);
    else await fillEveryType(c as Redis, fillCaps);
    await loadFlow([...NODE_TYPES.map(builtNode), ...coreNodes('common/25-catch.js')], flow(src, dsts.map((d) => d.target), dir));
    const writer = liveWrites(c, fillCaps);
    const caught = received('caught');
    status = new Map(dsts.flatMap((_, i) => [`src${i}`, `sink${i}`]).map((id) => [id, statusesOf(id)]));
    const statuses = (id: string): string[] => status.get(id) ?? [];
    const failure = (): string | null => (caught.length === 0 ? null : caught.map((m) => String(m.error?.message)).join('\n'));
    // writes go on through the full sync and after it, until every sink applied some of them
    const seen = (): string => dsts.map((_, i) => `src${i}: ${statuses(`src${i}`).slice(-3).join(' | ')}; sink${i}: ${statuses(`sink${i}`).slice(-3).join(' | ')}`).join('\n');
    await waitFor(() => failure() ?? dsts.every((_, i) => statuses(`sink${i}`).some((t) => /applied/.test(t))), 60_000, 'every sink to apply').catch((err: Error) => {
      throw new Error(`${err.message}\n${seen()}`);
    });
    await new Promise((r) => setTimeout(r, 1000));
    const rounds = await writer.stop();
    assert.equal(failure(), null, 'no flow error');
    for (const [i, d] of dsts.entries()) {
      await converge(() => keyspaceOf(src, dbs), () => keyspaceOf(d.target, dbs), { ms: 60_000, failure: () => failure() ?? (statuses(`sink${i}`).at(-1)?.startsWith('red') ? (statuses(`sink${i}`).at(-1) ?? null) : null) });
      const both = common(fillCaps, capsOf(d.build));
      assert.deepEqual(await functionsOf(d.target, both), await functionsOf(src, both), `${source.name} -> ${d.build.name}: function libraries`);
    }
    assert.ok(rounds > 0, 'writes ran during the sync');
    await andThen?.(failure);
  } finally {
    c.disconnect();
    await unloadFlow();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fillCluster(cluster: RedisCluster, caps: Capabilities): Promise<void> {
  const c = cluster.client();
  try {
    const far = Date.now() + 3_600_000;
    for (let i = 0; i < 200; i++) {
      await c.set(`k:${i}`, `v${i}`);
      await c.rpush(`l:${i}`, 'a', 'b', String(i));
      await c.hmset(`h:${i}`, { f: String(i), g: 'x' });
      await c.sadd(`s:${i}`, 1, 2, i);
      await c.zadd(`z:${i}`, i, 'm');
      if (i % 10 === 0) await c.pexpireat(`k:${i}`, far + i);
      if (caps.streams && i % 20 === 0) {
        await c.xadd(`x:${i}`, '*', 'n', String(i));
        await c.xgroup('CREATE', `x:${i}`, 'g', '0');
        await c.xreadgroup('GROUP', 'g', 'alice', 'COUNT', 1, 'STREAMS', `x:${i}`, '>');
      }
    }
    await c.rpush('big:{l}', ...Array.from({ length: 3000 }, (_, j) => `element-${j}-${'y'.repeat(40)}`));
  } finally {
    c.disconnect();
  }
}

describe('every version as a stock-config source, through the nodes', function () {
  this.timeout(300_000);

  before(async () => {
    await startNodeRed();
  });
  after(async () => {
    await stopNodeRed();
    console.log(`\n  version suite: builds from ${REDIS_BIN_DIR}`);
    for (const t of timings) console.log(`    ${t}`);
    if (absent.length > 0) console.log(`  NOT RUN (build absent):\n${absent.map((a) => `    ${a}`).join('\n')}`);
  });

  for (const name of ['7.0', ...VERSIONS] as VersionName[]) {
    it(`${name} source (stock config): full + incremental under writes into ${DESTINATIONS[name].join(', ')} converges, every key and function compared`, async function () {
      const source = build(name);
      const dests = DESTINATIONS[name].map(build);
      if (source === null || dests.some((d) => d === null)) {
        if (process.env.CI) assert.fail(`builds absent: ${absent.join('; ')}`);
        return this.skip();
      }
      const t0 = Date.now();
      const src = await startRedis({ binary: source.server, cliBinary: source.cli });
      const targets = await Promise.all((dests as RedisBuild[]).map(async (b) => ({ build: b, target: await startRedis({ binary: b.server, cliBinary: b.cli }) })));
      try {
        // streams and the 6.2 moves only where every destination has them (a stream cannot go
        // into 4.0: see the README); functions and field TTLs always, the destinations that
        // lack them compared without them
        const all = targets.reduce((a, d) => common(a, capsOf(d.build)), capsOf(source));
        const fillCaps = { ...capsOf(source), streams: all.streams, moves: all.moves };
        await syncAndCompare(source, src, targets, fillCaps);
      } finally {
        await Promise.all([src.stop(), ...targets.map((d) => d.target.stop())]);
      }
      timings.push(`${name} -> ${DESTINATIONS[name].join(', ')}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });
  }

  it('5.0.14 source into a 4.0.14 destination: converges without streams, and a stream key stops the sink with an error naming it', async function () {
    const source = build('5.0.14');
    const dest = build('4.0.14');
    if (source === null || dest === null) {
      if (process.env.CI) assert.fail(`builds absent: ${absent.join('; ')}`);
      return this.skip();
    }
    const t0 = Date.now();
    const src = await startRedis({ binary: source.server, cliBinary: source.cli });
    const dst = await startRedis({ binary: dest.server, cliBinary: dest.cli });
    try {
      await syncAndCompare(source, src, [{ build: dest, target: dst }], { ...capsOf(source), streams: false }, async (errors) => {
        // 4.0 has no streams: the first one written on the source stops the sink, named
        await src.client().xadd('a:stream', '*', 'f', 'v');
        const sinkStatus = status.get('sink0') ?? [];
        await waitFor(() => sinkStatus.at(-1)?.startsWith('red'), 20_000, 'the sink to stop');
        assert.match(String(errors()), /XADD on key "a:stream".*unknown command/i);
      });
    } finally {
      await Promise.all([src.stop(), dst.stop()]);
    }
    timings.push(`5.0.14 -> 4.0.14: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  for (const name of ['7.0', ...VERSIONS].filter((v) => !/^2\./.test(v)) as VersionName[]) {
    it(`${name} 3-master cluster source (stock config) into a 7.0 cluster converges`, async function () {
      const source = build(name);
      if (source === null) {
        if (process.env.CI) assert.fail(`builds absent: ${absent.join('; ')}`);
        return this.skip();
      }
      const t0 = Date.now();
      const old = source.version[0] < 5;
      // redis-cli --cluster create arrived with 5.0: older clusters are built by hand
      const thirds: Array<Array<[number, number]>> = [[[0, 5460]], [[5461, 10922]], [[10923, 16383]]];
      const src = await startCluster({ binary: source.server, cliBinary: source.cli, replicas: 0, ...(old ? { slots: thirds } : {}) });
      const dst = await startCluster({ replicas: 0 });
      try {
        await syncAndCompare(source, src, [{ build: redisBuild('7.0') as RedisBuild, target: dst }], capsOf(source));
      } finally {
        await Promise.all([src.stop(), dst.stop()]);
      }
      timings.push(`${name} cluster -> 7.0 cluster: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });
  }
});
