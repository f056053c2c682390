/**
 * End to end in a real Node-RED runtime (in process, the built nodes) against real servers,
 * with cluster sources and destinations: every scenario starts a write load of every type
 * BEFORE the flow is deployed (so writes are in flight during the full sync, which each test
 * checks), keeps it running while the sync streams (and while the destination is resharded or
 * fails over), then stops it and waits until the destination equals the source exactly: every
 * key, its type, value and TTL (compare.ts; the destination's redis-sync:* checkpoint keys are
 * left out, anything else left behind, e.g. a temporary key of a cross-slot emulation, counts).
 *
 * The load (liveRound) mixes the non-idempotent writes of workload.ts with multi-key commands:
 * MSET, multi-key DEL, RENAME (with a TTL), SUNIONSTORE, SMOVE, LMOVE, ZUNIONSTORE that reads its
 * own result (wrong if applied twice), MULTI/EXEC across keys, EXPIRE, PERSIST, DEL, and short
 * TTLs that expire at the source during the run. On a standalone source its keys carry no hash
 * tag, so the multi-key commands span slots of the destination cluster (split by the router or
 * the sink, or emulated across slots); on a cluster source every command's keys share a tag.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { type RedisCluster, type RedisServer, type StartClusterOptions } from './harness';
import { TestServers } from './support/servers';
import { slotOf } from '../lib/cluster/slots';
import { converge, keyspaceOf, type Keyspace } from './support/compare';
import { builtNode, coreNodes, getNode, loadFlow, startNodeRed, stopNodeRed, unloadFlow, waitFor, type FlowNode } from './support/node-red';
import { fillAllTypes, nonIdempotentWrites } from './support/workload';

type Client = Redis | Cluster;
type Target = RedisServer | RedisCluster;

// ---------------------------------------------------------------------------------------
// The write load

/**
 * One round of live writes. `crossSlot`: keys without hash tags (a standalone source), so the
 * multi-key commands span destination slots; otherwise every key of a command has the tag of
 * r % 4 (a cluster source refuses anything else). Keys reached again in a later round are
 * named by r - 4 or r % 8 …, so they keep the tag they were written with.
 */
async function liveRound(c: Client, p: string, r: number, crossSlot: boolean): Promise<void> {
  const t = crossSlot ? '' : `{g${r % 4}}`;
  const k = (s: string): string => `${p}${t}${s}`;
  await nonIdempotentWrites(c, `${p}n${r % 3}:`, 2);
  // MSET / DEL of several keys
  await c.mset(k(`m:a${r}`), `a${r}`, k(`m:b${r % 48}`), `b${r}`, k(`m:c${r % 8}`), `c${r}`);
  await c.del(k(`m:a${r - 4}`), k(`m:b${(r + 24) % 48}`), k(`m:none${r}`));
  // RENAME onto a key that may exist, carrying a TTL
  await c.set(k(`rn:src${r}`), `renamed-${r}`, 'PX', 900_000 + r);
  await c.rename(k(`rn:src${r}`), k(`rn:dst${r % 8}`));
  // SUNIONSTORE, SMOVE, LMOVE
  await c.sadd(k('su:a'), `a${r % 20}`);
  await c.sadd(k(`su:b${r % 8}`), `b${r}`);
  await c.sunionstore(k(`su:dst${r % 8}`), k('su:a'), k(`su:b${r % 8}`));
  await c.sadd(k('sm:from'), `m${r}`);
  await c.smove(k('sm:from'), k(`sm:to${r % 8}`), `m${r - 4}`);
  await c.rpush(k('lm:src'), `e${r}`, `f${r}`);
  await c.lmove(k('lm:src'), k(`lm:dst${r % 8}`), 'LEFT', 'RIGHT');
  // a store that reads its own result: applied twice (or skipped) it shows
  await c.zadd(k('zu:a'), r, `z${r % 10}`);
  await c.zunionstore(k('zu:acc'), 2, [k('zu:acc'), k('zu:a')]);
  // a transaction across keys
  const tx = await c.multi().incr(k('tx:n')).rpush(k(`tx:l${r % 8}`), `t${r}`).set(k(`tx:s${r % 12}`), `s${r}`).hincrby(k('tx:h'), `f${r % 3}`, r).exec();
  assert.ok(tx !== null && tx.every(([err]) => err === null), `MULTI/EXEC of round ${r} failed`);
  // TTLs set, removed, expiring at the source during the run (on keys nothing reads), DEL
  await c.expire(k(`m:c${r % 8}`), 500 + r);
  if (r % 10 === 5) await c.persist(k(`m:c${(r + 4) % 8}`));
  await c.set(k(`ttl:${r % 8}`), `short-${r}`, 'PX', 250);
  await c.del(k(`tx:l${(r + 4) % 8}`));
}

/** Runs rounds in `workers` parallel loops until stopped, remembering when each round ended. */
class WriteLoad {
  rounds = 0;
  private readonly ends: number[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(workers: number, round: (worker: number, r: number) => Promise<void>) {
    this.loop = Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        for (let r = 0; this.running; r++) {
          await round(w, r);
          this.rounds++;
          this.ends.push(Date.now());
        }
      }),
    ).then(() => undefined);
    this.loop.catch(() => undefined); // reported by stop()
  }

  roundsBetween(from: number, to: number): number {
    return this.ends.filter((t) => t > from && t <= to).length;
  }

  /** Waits until `n` more rounds are done (the load is really running). */
  async advance(n: number): Promise<void> {
    const target = this.rounds + n;
    let failure: unknown = null;
    this.loop.catch((err: unknown) => {
      failure = err;
    });
    await waitFor(() => failure !== null || this.rounds >= target, 20_000, `${n} rounds of writes`);
    if (failure !== null) throw failure as Error;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/**
 * Data that makes the full sync take a while: big lists and hashes (above the source's
 * big-key threshold, so they come in chunks and are written with typed commands) and strings.
 */
async function bulk(c: Client, p: string, n = 12): Promise<void> {
  for (let i = 0; i < n; i++) {
    await c.rpush(`${p}{b${i}}list`, ...Array.from({ length: 4000 }, (_, j) => `element-${i}-${j}-${'l'.repeat(30)}`));
    await c.hset(`${p}{b${i}}hash`, ...Array.from({ length: 3000 }, (_, j) => [`field-${j}`, `${i}-${'h'.repeat(30)}`]).flat());
    await c.zadd(`${p}{b${i}}zset`, ...Array.from({ length: 2000 }, (_, j) => [j * 1.5, `member-${j}-${'z'.repeat(20)}`]).flat());
    for (let j = 0; j < 20; j++) await c.set(`${p}{b${i}}str${j}`, `${i}:${j}:`.padEnd(16_384, 's'));
  }
}

// ---------------------------------------------------------------------------------------
// Flows

function endpoint(id: string, target: Target): FlowNode {
  return 'seeds' in target
    ? { id, type: 'redis-endpoint', mode: 'cluster', seeds: target.seeds.map((s) => `${s.host}:${s.port}`).join(',') }
    : { id, type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(target.port) };
}

interface Shape {
  /** Node ids the source's batches go to. */
  first: string;
  /** The nodes between the source and the sinks, and the sinks (wired to 'tap'). */
  nodes: FlowNode[];
  sinks: string[];
}

function sinkNode(id: string, conflict = 'ignore'): FlowNode {
  return { id, type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict, exactlyOnce: true, wires: [['tap']] };
}

function flow(srcId: string, src: Target, dst: Target, dir: string, shape: Shape): FlowNode[] {
  return [
    { id: 'tab', type: 'tab' },
    endpoint('srcEp', src),
    endpoint('dstEp', dst),
    { id: srcId, type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: dir, batchOps: 200, batchLatencyMs: 5, bigKeyMb: 0.0625, wires: [[shape.first], ['progress']] },
    { id: 'progress', type: 'helper', z: 'tab' },
    ...shape.nodes,
    { id: 'tap', type: 'helper', z: 'tab' },
    { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'tab' },
  ];
}

const NODE_TYPES = ['redis-endpoint', 'redis-replica-source', 'redis-op-filter', 'redis-slot-router', 'redis-cluster-sink'];

interface SinkStats {
  keys: number;
  commands: number;
  redirects: number;
  asks: number;
}

/** What the running flow shows: errors caught, sink statuses, and the sinks' applied snapshot keys over time. */
class Observed {
  errors: string[] = [];
  statuses: string[] = [];
  /** The source's last progress report. */
  progress: unknown = null;
  /** When the sinks' count of applied snapshot keys last went up. */
  lastKeyAt = 0;
  /** Each sink's live stats object (one per writer). */
  private readonly stats = new Set<SinkStats>();

  constructor(sinks: string[]) {
    getNode<EventEmitter>('caught').on('input', (msg: { error?: { message?: string; source?: { id?: string } } }) => {
      this.errors.push(`${msg.error?.source?.id}: ${msg.error?.message}`);
    });
    getNode<EventEmitter>('progress').on('input', (msg: { payload: unknown }) => {
      this.progress = msg.payload;
    });
    // the sink's output: { applied, total, stats } after each batch, with the writer's live stats object
    let keys = 0;
    getNode<EventEmitter>('tap').on('input', (msg: { payload: { stats?: SinkStats } }) => {
      const s = msg.payload.stats;
      if (s === undefined) return;
      this.stats.add(s);
      const now = this.sum('keys');
      if (now > keys) {
        keys = now;
        this.lastKeyAt = Date.now();
      }
    });
    for (const id of sinks) {
      const node = getNode<{ status: (s: { fill?: string; text?: string }) => void }>(id);
      const orig = node.status.bind(node);
      node.status = (s) => {
        if (s.fill === 'red') this.statuses.push(`${id}: ${s.text}`);
        orig(s);
      };
    }
  }

  sum(field: keyof SinkStats): number {
    let n = 0;
    for (const s of this.stats.values()) n += s[field];
    return n;
  }

  /** For failure messages: what the flow reported and how far the sinks got. */
  describe(): string {
    const p = this.progress as { phase?: string; lagBytes?: number; spoolBytes?: number } | null;
    return `flow errors: ${JSON.stringify([...this.errors, ...this.statuses])}; sinks applied keys ${this.sum('keys')}, commands ${this.sum('commands')}, redirects ${this.sum('redirects')}, asks ${this.sum('asks')}; source ${p?.phase} lag ${p?.lagBytes} B spool ${p?.spoolBytes} B`;
  }

  assertHealthy(): void {
    assert.deepEqual([...this.errors, ...this.statuses], [], 'errors reported by the flow');
  }
}

const debugTimers: NodeJS.Timeout[] = [];

/** Deploys the flow while `load` runs and waits until the sinks applied the snapshot and stream. */
async function deployUnderLoad(load: WriteLoad, nodes: FlowNode[], sinks: string[]): Promise<{ obs: Observed; deployedAt: number }> {
  await load.advance(20); // the load runs before the flow exists
  const deployedAt = Date.now();
  await loadFlow(
    [...NODE_TYPES.map((t) => builtNode(t)), ...coreNodes('common/25-catch.js')],
    nodes,
  );
  const obs = new Observed(sinks);
  // DEBUG_E2E=1: how far the sinks got, every second until the test ends
  if (process.env.DEBUG_E2E) debugTimers.push(setInterval(() => console.log(`${Date.now() - deployedAt} ms: rounds ${load.rounds}; ${obs.describe()}`), 1000));
  await waitFor(() => obs.errors.length > 0 || (obs.sum('keys') > 0 && obs.sum('commands') > 0), 60_000, 'the sinks to apply snapshot keys and streamed commands');
  obs.assertHealthy();
  return { obs, deployedAt };
}

/** Writes went on while the snapshot was taken and applied: rounds ended between deploy and the last snapshot key applied. */
function assertWritesDuringFullSync(load: WriteLoad, obs: Observed, deployedAt: number): void {
  const during = load.roundsBetween(deployedAt, obs.lastKeyAt);
  if (process.env.DEBUG_E2E) console.log(`rounds ${load.rounds}, during full sync ${during} (${obs.lastKeyAt - deployedAt} ms); sinks: keys ${obs.sum('keys')}, commands ${obs.sum('commands')}, redirects ${obs.sum('redirects')}`);
  assert.ok(obs.lastKeyAt > deployedAt, 'snapshot keys were applied after the deploy');
  // the sink can finish a small snapshot in about 100 ms, a few rounds' time: one round is the proof
  assert.ok(during >= 1, `write rounds during the full sync: ${during} (of ${load.rounds}) between deploy and the last snapshot key applied ${obs.lastKeyAt - deployedAt} ms later`);
}

/** A converge option: what the flow reported (caught errors, red statuses) ends the wait. */
const reported = (obs: Observed) => (): string | null => (obs.errors.length > 0 || obs.statuses.length > 0 ? obs.describe() : null);

function keyCount(ks: Keyspace): number {
  return Object.values(ks).reduce((n, db) => n + Object.keys(db).length, 0);
}

/** Node id of each master of a cluster, with the number of slots it serves. */
async function slotCounts(cluster: RedisCluster): Promise<Array<{ port: number; id: string; slots: number }>> {
  const out = [];
  for (const m of await cluster.masters()) {
    const id = String(await m.command('CLUSTER', 'MYID'));
    const nodes = String(await m.command('CLUSTER', 'NODES'));
    const line = nodes.split('\n').find((l) => l.startsWith(id)) as string;
    let slots = 0;
    for (const range of line.trim().split(' ').slice(8)) {
      if (range.startsWith('[')) continue;
      const [a, b] = range.split('-').map(Number);
      slots += (b ?? a) - a + 1;
    }
    out.push({ port: m.port, id, slots });
  }
  return out;
}

// ---------------------------------------------------------------------------------------

describe('end to end in Node-RED: cluster sources and destinations under live writes', function () {
  this.timeout(150_000);
  let dir: string;
  let loads: WriteLoad[] = [];
  const servers = new TestServers();
  const server = (): Promise<RedisServer> => servers.server();
  const cluster = (opts: StartClusterOptions): Promise<RedisCluster> => servers.cluster(opts);
  function startLoad(workers: number, round: (worker: number, r: number) => Promise<void>): WriteLoad {
    const l = new WriteLoad(workers, round);
    loads.push(l);
    return l;
  }

  before(startNodeRed);
  after(stopNodeRed);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'e2e-cluster-'));
  });
  afterEach(async () => {
    for (const t of debugTimers.splice(0)) clearInterval(t);
    await Promise.allSettled(loads.map((l) => l.stop()));
    loads = [];
    await unloadFlow();
    await servers.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('1. standalone dbs 0, 3, 5 -> 3-master cluster through redis-op-filter (every db to 0, prefix db{db}:)', async () => {
    const [src, dst] = await Promise.all([server(), cluster({ masters: 3, replicas: 0 })]);
    const dbs = [0, 3, 5];
    const clients = dbs.map((db) => src.client({ db }));
    for (const [i, db] of dbs.entries()) {
      await fillAllTypes(clients[i], `f${db}:`, 15);
      await bulk(clients[i], `b${db}:`, 4);
    }
    // one writer per db, each on its own connection
    const load = startLoad(3, (w, r) => liveRound(clients[w], 'live:', r, true));
    const shape: Shape = {
      first: 'filter',
      nodes: [
        { id: 'filter', type: 'redis-op-filter', z: 'tab', preset: 'all', allDbsToZero: true, keyPrefix: 'db{db}:', flush: 'apply', wires: [['sink']] },
        sinkNode('sink'),
      ],
      sinks: ['sink'],
    };
    const { obs, deployedAt } = await deployUnderLoad(load, flow('src1', src, dst, dir, shape), shape.sinks);
    await sleep(3000); // streaming under load
    await load.stop();
    assertWritesDuringFullSync(load, obs, deployedAt);
    // the mapping: key k of source db d is db{d}:k in the destination's db 0
    const expected = async (): Promise<Keyspace> => {
      const source = await keyspaceOf(src, dbs);
      const want: Keyspace = { 0: {} };
      for (const db of dbs) for (const [key, v] of Object.entries(source[db])) want[0][`db${db}:${key}`] = v;
      return want;
    };
    await converge(expected, () => keyspaceOf(dst, [0]), { failure: reported(obs), pollMs: 500 });
    const final = await keyspaceOf(dst, [0]);
    for (const db of dbs) assert.ok(Object.keys(final[0]).some((k) => k.startsWith(`db${db}:live:`)), `live keys of db ${db} arrived`);
    assert.ok(keyCount(final) > 500, `${keyCount(final)} keys compared`);
    obs.assertHealthy();
  });

  it('2. 3-master cluster -> 3-master cluster with another slot layout, slot router with 2 partitions into 2 sinks; a function library reaches every master', async () => {
    const [src, dst] = await Promise.all([
      cluster({ masters: 3, replicas: 0 }),
      // uneven, and one master with two ranges
      cluster({ replicas: 0, slots: [[[0, 999], [12000, 16383]], [[1000, 3999]], [[4000, 11999]]] }),
    ]);
    // loaded on each master, as a cluster's users do; masters that never had a replica sync from offset 0
    for (const m of await src.masters()) await m.command('FUNCTION', 'LOAD', "#!lua name=lib\nredis.register_function('get_it', function(keys) return redis.call('get', keys[1]) end)");
    const c = src.client();
    await fillAllTypes(c, 'f:', 40);
    await bulk(c, 'b:');
    const writers = [src.client(), src.client()];
    const load = startLoad(2, (w, r) => liveRound(writers[w], `live${w}:`, r, false));
    // Sink B must not apply stream commands before sink A applied the snapshot batches (a key the
    // stream deleted would come back, XADD "ID equal or smaller"): the router holds its barriers
    // until FlowControl, which counts batches from the source's first, says all are applied.
    const shape: Shape = {
      first: 'router',
      nodes: [{ id: 'router', type: 'redis-slot-router', z: 'tab', partitions: 2, outputs: 2, wires: [['sinkA'], ['sinkB']] }, sinkNode('sinkA'), sinkNode('sinkB')],
      sinks: ['sinkA', 'sinkB'],
    };
    const { obs, deployedAt } = await deployUnderLoad(load, flow('src2', src, dst, dir, shape), shape.sinks);
    // the source must not stall: the stream keeps being applied while the load runs
    const before = obs.sum('commands');
    await sleep(3000);
    const rounds = load.rounds;
    await load.advance(20);
    assert.ok(obs.sum('commands') > before, 'the sinks keep applying the stream');
    await load.stop();
    assertWritesDuringFullSync(load, obs, deployedAt);
    await converge(() => keyspaceOf(src, [0]), () => keyspaceOf(dst, [0]), { failure: reported(obs), pollMs: 500 });
    const final = await keyspaceOf(dst, [0]);
    assert.ok(keyCount(final) > 500, `${keyCount(final)} keys compared`);
    assert.ok(load.rounds > rounds, 'the load ran');
    obs.assertHealthy();
  });

  it('3. 3-master cluster -> standalone ("precheck and intercept")', async () => {
    const [src, dst] = await Promise.all([cluster({ masters: 3, replicas: 0 }), server()]);
    const c = src.client();
    await fillAllTypes(c, 'f:', 40);
    await bulk(c, 'b:');
    const writers = [src.client(), src.client()];
    const load = startLoad(2, (w, r) => liveRound(writers[w], `live${w}:`, r, false));
    const shape: Shape = { first: 'sink', nodes: [sinkNode('sink', 'intercept')], sinks: ['sink'] };
    const { obs, deployedAt } = await deployUnderLoad(load, flow('src3', src, dst, dir, shape), shape.sinks);
    await sleep(3000);
    await load.stop();
    assertWritesDuringFullSync(load, obs, deployedAt);
    await converge(() => keyspaceOf(src, [0]), () => keyspaceOf(dst, [0]), { failure: reported(obs), pollMs: 500 });
    obs.assertHealthy();
  });

  it('4. standalone -> 3-master cluster resharded (redis-cli --cluster reshard) during the full sync and again while it streams, under load', async () => {
    const [src, dst] = await Promise.all([server(), cluster({ masters: 3, replicas: 0 })]);
    const c = src.client();
    await fillAllTypes(c, 'f:', 40);
    await bulk(c, 'b:');
    const writers = [src.client(), src.client()];
    const load = startLoad(2, (w, r) => liveRound(writers[w], `live${w}:`, r, true));
    const [m0, m1, m2] = await slotCounts(dst);
    const reshard = async (from: string, to: string, n: number): Promise<{ start: number; end: number }> => {
      const start = Date.now();
      await dst.nodes[0].cli('--cluster', 'reshard', `127.0.0.1:${dst.nodes[0].port}`, '--cluster-from', from, '--cluster-to', to, '--cluster-slots', String(n), '--cluster-yes');
      return { start, end: Date.now() };
    };
    // the first one runs while the flow is deployed and the snapshot is applied
    const first = reshard(m0.id, m1.id, 2000);
    const shape: Shape = { first: 'sink', nodes: [sinkNode('sink')], sinks: ['sink'] };
    const { obs, deployedAt } = await deployUnderLoad(load, flow('src4', src, dst, dir, shape), shape.sinks);
    const one = await first;
    const roundsBefore = load.rounds;
    const two = await reshard(m2.id, m0.id, 1500);
    assert.ok(load.rounds - roundsBefore >= 10, `writes went on during the second resharding (${load.rounds - roundsBefore} rounds)`);
    const after = await slotCounts(dst);
    assert.deepEqual(
      after.map((m) => m.slots).sort((a, b) => a - b),
      [m0.slots - 2000 + 1500, m1.slots + 2000, m2.slots - 1500].sort((a, b) => a - b),
      'the destination was resharded',
    );
    await load.advance(20);
    await load.stop();
    if (process.env.DEBUG_E2E) console.log(`reshards: ${one.start - deployedAt}..${one.end - deployedAt} ms and ${two.start - deployedAt}..${two.end - deployedAt} ms after the deploy; last snapshot key at ${obs.lastKeyAt - deployedAt} ms; asks ${obs.sum('asks')}`);
    assert.ok(one.end > deployedAt, 'the first resharding went on after the deploy');
    assertWritesDuringFullSync(load, obs, deployedAt);
    await converge(() => keyspaceOf(src, [0]), () => keyspaceOf(dst, [0]), { failure: reported(obs), pollMs: 500 });
    assert.ok(obs.sum('redirects') > 0, 'the sink was redirected (MOVED/ASK) and followed');
    obs.assertHealthy();
  });

  it('5. standalone -> 3-master cluster with replicas, a destination master fails over during the sync', async () => {
    const [src, dst] = await Promise.all([server(), cluster({ masters: 3, replicas: 1 })]);
    const c = src.client();
    await fillAllTypes(c, 'f:', 40);
    await bulk(c, 'b:');
    const writers = [src.client(), src.client()];
    const load = startLoad(2, (w, r) => liveRound(writers[w], `live${w}:`, r, true));
    const shape: Shape = { first: 'sink', nodes: [sinkNode('sink')], sinks: ['sink'] };
    const { obs, deployedAt } = await deployUnderLoad(load, flow('src5', src, dst, dir, shape), shape.sinks);
    const [master] = await dst.masters();
    const [replica] = await dst.replicasOf(master);
    const roundsBefore = load.rounds;
    await dst.failover(replica);
    assert.ok((await dst.masters()).some((m) => m.port === replica.port), 'the replica is a master now');
    await load.advance(30);
    assert.ok(load.rounds - roundsBefore >= 30, 'writes went on across the failover');
    await load.stop();
    assertWritesDuringFullSync(load, obs, deployedAt);
    await converge(() => keyspaceOf(src, [0]), () => keyspaceOf(dst, [0]), { failure: reported(obs), pollMs: 500 });
    assert.ok(obs.sum('redirects') > 0, 'the sink was redirected to the new master');
    obs.assertHealthy();
  });

  it('6. standalone -> 3-master cluster, a destination slot left half migrated while the sync streams: moved keys are written at once (ASK)', async () => {
    // redis-cli --cluster reshard moves a slot's few keys in one MIGRATE, so test 4 meets MOVED;
    // a slot holding many or big keys stays open for longer, and writes to the keys that left it
    // must not wait for it to close
    const [src, dst] = await Promise.all([server(), cluster({ masters: 3, replicas: 0 })]);
    const c = src.client();
    await fillAllTypes(c, 'f:', 20);
    const hotSlot = slotOf(Buffer.from('{hot}'));
    const counters = Array.from({ length: 6 }, (_, i) => `count:${i}`);
    assert.ok(counters.every((k) => slotOf(Buffer.from(k)) !== hotSlot), 'the counters live outside the migrating slot');
    // assignments into the hot slot (applied without a checkpoint), exactly-once INCRs elsewhere
    const writer = src.client();
    const load = startLoad(1, async (_w, r) => {
      await writer.set(`k:{hot}:${r % 60}`, `v${r}`);
      await writer.hset(`h:{hot}:${r % 6}`, `f${r % 9}`, `${r}`);
      await writer.incr(counters[r % counters.length]);
    });
    const shape: Shape = { first: 'sink', nodes: [sinkNode('sink')], sinks: ['sink'] };
    const { obs } = await deployUnderLoad(load, flow('src6', src, dst, dir, shape), shape.sinks);
    const owner = (await dst.masterForSlot(hotSlot)) as RedisServer;
    await waitFor(async () => ((await owner.command('CLUSTER', 'COUNTKEYSINSLOT', hotSlot)) as number) >= 30, 20_000, 'the hot keys on the destination');
    const migration = await dst.startSlotMigration(hotSlot, (await dst.masters()).find((m) => m.port !== owner.port) as RedisServer);
    const keys = (await owner.command('CLUSTER', 'GETKEYSINSLOT', hotSlot, 1000)) as string[];
    await migration.migrate(keys.filter((_, i) => i % 2 === 0));
    await waitFor(() => obs.sum('asks') > 0, 20_000, 'a write of a moved key sent to the importing node');
    // the destination catches up with what the source had well after the migration opened: a
    // sink waiting for the slot to close would hold every later batch behind the first moved key
    await load.advance(20);
    const sum = (values: Array<string | null>): number => values.reduce((n, v) => n + Number(v ?? 0), 0);
    const sourceCount = sum(await c.mget(...counters));
    const dstClient = dst.client();
    await waitFor(
      async () => sum(await Promise.all(counters.map((k) => dstClient.get(k)))) >= sourceCount,
      20_000,
      'the destination to catch up with the source while the slot is migrating',
    );
    await migration.finish();
    await load.advance(10);
    await load.stop();
    await converge(() => keyspaceOf(src, [0]), () => keyspaceOf(dst, [0]), { failure: reported(obs), pollMs: 500 });
    obs.assertHealthy();
  });
});
