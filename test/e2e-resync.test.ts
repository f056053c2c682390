/**
 * End to end in Node-RED: a source whose replication history starts over (it was reset: made
 * a replica of an empty server and promoted again, so its offsets begin near 0 again) forces
 * a second full sync into the same flow. Behind a slot router with two partitions, each sink
 * keeps the applied offset of its slots; the second sync's commands have offsets below those
 * of the first, so a sink that did not learn of the new sync would skip them as replays.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import { converge, keyspaceOf } from './support/compare';
import { builtNode, coreNodes, loadFlow, getNode, startNodeRed, stopNodeRed, unloadFlow, type FlowNode } from './support/node-red';
import { waitFor } from './support/wait';
import { slotOf, partitionOf } from '../lib/cluster/slots';

const KEYS = Array.from({ length: 40 }, (_, i) => `counter:${i}`);

async function increments(server: RedisServer, rounds: number): Promise<void> {
  const c = server.client();
  for (let r = 0; r < rounds; r++) {
    const p = c.pipeline();
    for (const k of KEYS) p.incr(k);
    await p.exec();
  }
  c.disconnect();
}

async function info(server: RedisServer, field: string): Promise<string> {
  const text = String(await server.command('INFO', 'replication'));
  return new RegExp(`${field}:(\\S+)`).exec(text)?.[1] ?? '';
}

describe('end to end in Node-RED: the source starts its history over, two partitions', function () {
  this.timeout(120_000);
  let src: RedisServer;
  let empty: RedisServer;
  let dst: RedisCluster;
  let dir: string;

  before(async () => {
    await startNodeRed();
    [src, empty, dst] = await Promise.all([startRedis(), startRedis(), startCluster({ masters: 3, replicas: 0 })]);
    dir = mkdtempSync(join(tmpdir(), 'e2e-resync-'));
  });
  after(async () => {
    await unloadFlow();
    await stopNodeRed();
    await Promise.all([src.stop(), empty.stop(), dst.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('every sink starts the new sync: nothing of it is skipped as a replay of the old one', async () => {
    // the keys must be spread over both partitions, or the test shows nothing
    assert.deepEqual(new Set(KEYS.map((k) => partitionOf(slotOf(k), 2))), new Set([0, 1]));
    const flow: FlowNode[] = [
      { id: 'tab', type: 'tab' },
      { id: 'srcEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(src.port) },
      { id: 'dstEp', type: 'redis-endpoint', mode: 'cluster', seeds: dst.seeds.map((s) => `${s.host}:${s.port}`).join(',') },
      { id: 'source', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: dir, batchOps: 50, batchLatencyMs: 5, wires: [['router'], []] },
      { id: 'router', type: 'redis-slot-router', z: 'tab', partitions: 2, outputs: 2, wires: [['sinkA'], ['sinkB']] },
      { id: 'sinkA', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict: 'intercept', exactlyOnce: true, wires: [[]] },
      { id: 'sinkB', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict: 'intercept', exactlyOnce: true, wires: [[]] },
      { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'tab' },
    ];
    await loadFlow([...['redis-endpoint', 'redis-replica-source', 'redis-slot-router', 'redis-cluster-sink'].map((t) => builtNode(t)), ...coreNodes('common/25-catch.js')], flow);
    // the source reports its reconnects to Catch nodes too: what must not happen is a sink's error
    const errors: string[] = [];
    getNode<EventEmitter>('caught').on('input', (msg: { error?: { message?: string; source?: { id?: string } } }) => {
      if (msg.error?.source?.id !== 'source') errors.push(`${msg.error?.source?.id}: ${msg.error?.message}`);
    });

    const converged = (): Promise<void> =>
      converge(() => keyspaceOf(src), () => keyspaceOf(dst), { ms: 30_000, failure: () => (errors.length > 0 ? errors.join('; ') : null) });

    // the first history: many guarded writes, so both sinks record high offsets for their slots
    await increments(src, 60);
    await converged();
    const firstOffset = Number(await info(src, 'master_repl_offset'));

    // start over: an empty master's history, then promoted again with offsets near 0
    await src.command('REPLICAOF', '127.0.0.1', String(empty.port));
    await waitFor(async () => (await info(src, 'master_link_status')) === 'up', 20_000, 'the source to follow the empty server');
    await src.command('REPLICAOF', 'NO', 'ONE');
    assert.ok(Number(await info(src, 'master_repl_offset')) < firstOffset / 4, 'the new history starts below the old one');
    // the flow's second full sync: "precheck and intercept" empties what the first one wrote
    await converged();

    // these come as commands of the stream, at offsets the first history already passed
    await increments(src, 20);
    assert.equal(await src.command('GET', KEYS[0]), '20');
    await converged();
  });
});
