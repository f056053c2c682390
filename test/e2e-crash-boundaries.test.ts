/**
 * kill -9 of Node-RED at the boundaries between the phases of a sync, where what the source
 * handed on, what a sink applied and what is saved as the resume point part ways: right after a
 * restart, before the sinks acknowledged anything; during the drain after a full sync's
 * snapshot-end; while a sink reconnects to its destination. Under a writer of commands that
 * must be applied exactly once, every key of the destination must end equal to the source.
 *
 * After each start a function node in front of the sinks holds the batches for HOLD_MS before
 * it passes them on, in order: a hop that is slow to pass the first batches, as any node of
 * the flow (or a busy machine) can be. The source meanwhile hands on the whole backlog of the
 * downtime, and its once-a-second save of the resume point falls inside the hold: a source
 * that saved what it handed on instead of what a sink applied loses that range at the next
 * kill (the next start asks the source to continue after it). It also logs the snapshot
 * markers as it passes them, so the test can kill right after a snapshot-end.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type Redis from 'ioredis';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import { converge, keyspaceOf } from './support/compare';
import type { FlowNode } from './support/node-red';
import { NodeRedProcess } from './support/node-red-process';
import { prng } from './support/random';
import { waitFor } from './support/wait';
import { fillAllTypes, nonIdempotentWrites } from './support/workload';

const HOLD_MS = 1500;

const HOLD_INIT = `context.set('held', []); context.set('openAt', Date.now() + ${HOLD_MS});`;
const HOLD_FUNC = `
const pass = (m) => {
  for (const op of m.payload) if (op.kind === 'snapshot-begin' || op.kind === 'snapshot-end') node.log('MARK ' + op.kind);
  node.send(m);
};
const held = context.get('held');
if (held.length === 0 && Date.now() >= context.get('openAt')) {
  pass(msg);
  return null;
}
held.push(msg);
if (held.length === 1) setTimeout(() => { for (const m of held.splice(0)) pass(m); }, Math.max(0, context.get('openAt') - Date.now()));
return null;
`;

type Destination = { kind: 'cluster'; partitions: number } | { kind: 'standalone' };

function flow(src: RedisServer, dst: RedisServer | RedisCluster, to: Destination): FlowNode[] {
  const dstEp: FlowNode =
    'seeds' in dst
      ? { id: 'dstEp', type: 'redis-endpoint', mode: 'cluster', seeds: dst.seeds.map((s) => `${s.host}:${s.port}`).join(',') }
      : { id: 'dstEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(dst.port) };
  const sink = (id: string): FlowNode => ({ id, type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict: 'intercept', exactlyOnce: true, wires: [[]] });
  const partitions = to.kind === 'cluster' ? to.partitions : 0;
  const sinks = Array.from({ length: Math.max(1, partitions) }, (_, i) => sink(`sink${i}`));
  const downstream: FlowNode[] = partitions > 0 ? [{ id: 'router', type: 'redis-slot-router', z: 'tab', partitions, outputs: partitions, wires: sinks.map((s) => [s.id]) }, ...sinks] : sinks;
  // a node of a flow has a place on its tab (x, y): Node-RED takes one without for a config node
  const placed = (nodes: FlowNode[]): FlowNode[] => nodes.map((n, i) => ({ ...n, x: 100 + 150 * i, y: 100 }));
  return [
    { id: 'tab', type: 'tab', label: 'sync' },
    { id: 'srcEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(src.port) },
    dstEp,
    ...placed([
      { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', batchLatencyMs: 5, batchOps: 200, bigKeyMb: 0.0625, wires: [['hold'], []] },
      { id: 'hold', type: 'function', z: 'tab', name: 'hold', func: HOLD_FUNC, initialize: HOLD_INIT, finalize: '', libs: [], outputs: 1, wires: [[downstream[0].id]] },
      ...downstream,
    ]),
  ];
}

/**
 * Writes that go wrong when applied twice or skipped (see nonIdempotentWrites), and more of
 * what a sink must carry out exactly once: LPOP, transactions in one slot and across slots,
 * LMOVE, RENAME and MSET between slots. Keys are never removed for good, so a repeated full
 * sync shows no key that only the destination still holds. Runs until stopped.
 */
function keepWriting(c: Redis, prefix: string): { stop: () => Promise<void> } {
  let running = true;
  let round = 0;
  const k = (tag: string, name: string): string => `${prefix}{${tag}}${name}`;
  const loop = (async () => {
    await c.set(k('r0', 'renamed'), '0');
    let renamedIn = 0;
    while (running) {
      await nonIdempotentWrites(c, prefix, 5);
      await c.lpop(k(`w${round % 5}`, 'rlist'));
      await c.multi().incr(k('t0', 'n')).rpush(k('t0', 'l'), `r${round}`).xadd(k('t0', 's'), '*', 'r', String(round)).hincrby(k('t0', 'h'), 'f', 3).exec();
      await c.multi().incr(k('t1', 'n')).append(k('t2', 'a'), `${round},`).lpush(k('t3', 'l'), `r${round}`).exec();
      await c.rpush(k('m0', 'from'), `a${round}`, `b${round}`);
      await c.lmove(k('m0', 'from'), k('m1', 'to'), 'LEFT', 'RIGHT');
      await c.incr(k(`r${renamedIn}`, 'renamed'));
      await c.rename(k(`r${renamedIn}`, 'renamed'), k(`r${1 - renamedIn}`, 'renamed'));
      renamedIn = 1 - renamedIn;
      await c.mset(k('s0', 'm'), String(round), k('s1', 'm'), String(round), k('s2', 'm'), String(round));
      round++;
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** Closes every client connection of the destination's masters but this one's: the sinks connect again. */
async function dropSinkConnections(dst: RedisServer | RedisCluster): Promise<void> {
  for (const m of 'seeds' in dst ? await dst.masters() : [dst]) await m.command('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
}

const destinations: Array<[string, Destination]> = [
  ['a 3-master cluster through a slot router with 1 partition', { kind: 'cluster', partitions: 1 }],
  ['a 3-master cluster through a slot router with 3 partitions', { kind: 'cluster', partitions: 3 }],
  ['a standalone destination', { kind: 'standalone' }],
];

describe('kill -9 of Node-RED at phase boundaries under non-idempotent writes', function () {
  this.timeout(180_000);
  let src: RedisServer;
  let cluster: RedisCluster;
  let standalone: RedisServer;
  let dir: string;
  let red: NodeRedProcess | null = null;

  before(async () => {
    // a backlog that outlasts every downtime here: each restart continues with a partial resync,
    // so what a crash left half done is replayed from the saved position (a full sync would mask it)
    src = await startRedis({ config: { 'repl-backlog-size': '256mb' } });
    cluster = await startCluster({ masters: 3, replicas: 0 });
    standalone = await startRedis();
  });
  after(async () => {
    await src.stop();
    await cluster.stop();
    await standalone.stop();
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crash-boundaries-'));
  });
  afterEach(async () => {
    await red?.stop();
    red = null;
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [what, to] of destinations) {
    it(`into ${what}: every key equal to the source after kills right after restarts, after snapshot-end and while the sinks reconnect`, async () => {
      const dst = to.kind === 'cluster' ? cluster : standalone;
      const seed = Date.now() % 100_000;
      const random = prng(seed);
      const between = (a: number, b: number): number => Math.round(a + random() * (b - a));
      const kills: string[] = [];
      const c = src.client();
      await c.flushall();
      for (const m of 'seeds' in dst ? await dst.masters() : [dst]) await m.command('FLUSHALL');
      await fillAllTypes(c, 'base:', 150);
      const load = keepWriting(src.client(), 'w:');
      const node = new NodeRedProcess(join(dir, 'node-red'), flow(src, dst, to));
      red = node;
      const crashAfter = async (ms: number, when: string): Promise<void> => {
        await sleep(ms);
        await node.crash();
        kills.push(`${when} +${ms} ms`);
      };
      try {
        // the first full sync (a stock 7.0 holds it back 5 s); killed while the sinks drain what
        // followed its snapshot-end, and then right away after the next snapshot-end
        await node.start();
        await waitFor(() => node.log.includes('MARK snapshot-end'), 60_000, 'the snapshot-end of the first full sync');
        await crashAfter(between(100, 600), 'after snapshot-end');
        // a start with no position saved (no sink confirmed one yet) makes a full sync again
        const fullSyncAgain = !existsSync(join(dir, 'node-red', 'redis-sync', 'src', 'positions.json'));
        await node.start();
        if (fullSyncAgain) {
          await waitFor(() => node.log.includes('MARK snapshot-end'), 60_000, 'the snapshot-end of the second full sync');
          await crashAfter(0, 'at snapshot-end');
        } else {
          await crashAfter(between(HOLD_MS * 0.6, HOLD_MS * 1.3), 'after a restart');
        }
        // restarts after a downtime that left a backlog: killed while the hold keeps the sinks
        // from acknowledging anything, before the first acknowledgement or just after
        for (let i = 0; i < 3; i++) {
          await sleep(between(800, 2000));
          await node.start();
          await crashAfter(between(HOLD_MS * 0.6, HOLD_MS * 1.3), 'after a restart');
        }
        // while the sinks reconnect to the destination (they read their checkpoints again)
        await node.start();
        await sleep(HOLD_MS + between(500, 1500));
        await dropSinkConnections(dst);
        await crashAfter(between(0, 300), 'while the sinks reconnect');
        await node.start();
        await sleep(between(1000, 2000));
      } finally {
        await load.stop();
      }
      const history = node.history + node.log;
      if (process.env.DEBUG_CRASH) console.log(history);
      assert.doesNotMatch(history, /could not continue|full sync starts again/, 'every restart with a saved position resumed with a partial resync');
      const fullSyncs = history.match(/MARK snapshot-begin/g)?.length ?? 0;
      assert.ok(fullSyncs <= 2, `${fullSyncs} full syncs: the restarts must mostly continue from saved positions (kills: ${kills.join(', ')})`);
      await converge(
        () => keyspaceOf(src),
        () => keyspaceOf(dst),
        { ms: 60_000 },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nseed ${seed}; kills: ${kills.join(', ')}`, { cause: err });
      });
      c.disconnect();
    });
  }
});
