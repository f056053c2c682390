/**
 * End to end in Node-RED: the destination drops the sink's connections again and again
 * (CLIENT KILL, as a network blip or a proxy restart would) during the full sync and while
 * non-idempotent writes stream. The sink connects again by itself, learns from the
 * destination's checkpoints which transactions in flight were applied, and goes on: the
 * destination ends up equal to the source, nothing applied twice, nothing lost, no error.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedis, type RedisServer } from './harness';
import { converge, keyspaceOf } from './support/compare';
import { builtNode, coreNodes, getNode, loadFlow, startNodeRed, statusesOf, stopNodeRed, unloadFlow, waitFor, type FlowNode } from './support/node-red';
import { fillAllTypes, nonIdempotentWrites } from './support/workload';

describe('end to end in Node-RED: the destination keeps dropping the sink\'s connections', function () {
  this.timeout(120_000);
  let src: RedisServer;
  let dst: RedisServer;
  let dir: string;

  before(async () => {
    await startNodeRed();
    [src, dst] = await Promise.all([startRedis(), startRedis()]);
    dir = mkdtempSync(join(tmpdir(), 'e2e-reconnect-'));
  });
  after(async () => {
    await unloadFlow();
    await stopNodeRed();
    await Promise.all([src.stop(), dst.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects again each time and converges exactly, under INCR, RPUSH, APPEND … load', async () => {
    const c = src.client();
    await fillAllTypes(c, 'f:', 300);
    const flow: FlowNode[] = [
      { id: 'tab', type: 'tab' },
      { id: 'srcEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(src.port) },
      { id: 'dstEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(dst.port) },
      { id: 'source', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', spoolDir: dir, batchOps: 100, batchLatencyMs: 5, wires: [['sink'], []] },
      { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict: 'intercept', exactlyOnce: true, wires: [[]] },
      { id: 'catcher', type: 'catch', z: 'tab', scope: null, uncaught: false, wires: [['caught']] },
      { id: 'caught', type: 'helper', z: 'tab' },
    ];
    let running = true;
    const writers = [src.client(), src.client()];
    const load = Promise.all(writers.map(async (w, n) => {
      for (let r = 0; running; r++) await nonIdempotentWrites(w, `live${n}:`, 5);
    }));
    await loadFlow([...['redis-endpoint', 'redis-replica-source', 'redis-cluster-sink'].map((t) => builtNode(t)), ...coreNodes('common/25-catch.js')], flow);
    const errors: string[] = [];
    getNode<EventEmitter>('caught').on('input', (msg: { error?: { message?: string } }) => errors.push(String(msg.error?.message)));
    const statuses = statusesOf('sink');

    // the sink connects with the first batch, once the source's master has started the sync (5 s with a stock 7.0)
    await waitFor(() => statuses.some((t) => t.startsWith('green:applied')), 30_000, 'the sink to apply its first batch');
    let kills = 0;
    for (let i = 0; i < 12; i++) {
      await sleep(150 + (i % 3) * 100);
      kills += Number(await dst.command('CLIENT', 'KILL', 'TYPE', 'normal'));
    }
    running = false;
    await load;
    for (const w of writers) w.disconnect();
    c.disconnect();

    assert.ok(kills >= 6, `only ${kills} sink connections were dropped: the test did not exercise the reconnects`);
    await converge(() => keyspaceOf(src), () => keyspaceOf(dst), { failure: () => (errors.length > 0 ? errors.join('; ') : null) });
    assert.ok(statuses.some((s) => s.startsWith('yellow:reconnecting')), statuses.join(', '));
    assert.ok(statuses.at(-1)?.startsWith('green:applied'), statuses.join(', '));
  });
});
