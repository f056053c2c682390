import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import { converge, keyspaceOf } from './support/compare';
import type { FlowNode } from './support/node-red';
import { NodeRedProcess } from './support/node-red-process';
import { fillAllTypes, nonIdempotentWrites } from './support/workload';

function flow(src: RedisServer, dst: RedisServer | RedisCluster, sinkExtra: Partial<FlowNode> = {}): FlowNode[] {
  const dstEp: FlowNode =
    'seeds' in dst
      ? { id: 'dstEp', type: 'redis-endpoint', mode: 'cluster', seeds: dst.seeds.map((s) => `${s.host}:${s.port}`).join(',') }
      : { id: 'dstEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(dst.port) };
  return [
    { id: 'tab', type: 'tab', label: 'sync' },
    { id: 'srcEp', type: 'redis-endpoint', mode: 'standalone', host: '127.0.0.1', port: String(src.port) },
    dstEp,
    { id: 'src', type: 'redis-replica-source', z: 'tab', endpoint: 'srcEp', batchLatencyMs: 5, batchOps: 200, bigKeyMb: 0.0625, wires: [['sink'], []] },
    { id: 'sink', type: 'redis-cluster-sink', z: 'tab', endpoint: 'dstEp', conflict: 'ignore', exactlyOnce: true, ...sinkExtra, wires: [[]] },
  ];
}

/** Keeps writing until stopped; returns how many rounds ran. */
function keepWriting(c: Redis, prefix: string): { stop: () => Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) await nonIdempotentWrites(c, prefix, 20);
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

for (const destination of ['standalone', 'cluster'] as const) {
  describe(`kill -9 of Node-RED during a sync under non-idempotent write load -> ${destination} destination`, function () {
    this.timeout(300_000);
    let src: RedisServer;
    let dst: RedisServer | RedisCluster;
    let dir: string;
    let red: NodeRedProcess | null = null;

    before(async () => {
      // a backlog that outlasts a Node-RED restart under this load: resumes are partial,
      // so what a crash left half-done is really replayed (a full resync would mask it)
      src = await startRedis({ config: { 'repl-backlog-size': '256mb' } });
      dst = destination === 'cluster' ? await startCluster({ masters: 3, replicas: 0 }) : await startRedis();
    });
    after(async () => {
      await src.stop();
      await dst.stop();
    });
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'crash-'));
    });
    afterEach(async () => {
      await red?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('converges to exactly the source after crashes mid full sync and mid stream', async () => {
      const c = src.client();
      await c.flushall();
      await fillAllTypes(c, 'base:', 300);
      const load = keepWriting(src.client(), 'w:');
      red = new NodeRedProcess(join(dir, 'node-red'), flow(src, dst));
      await red.start();
      // mid full sync: as soon as the first keys landed
      const d = 'seeds' in dst ? dst.client() : dst.client();
      const t0 = Date.now();
      while ((await keyspaceOf(dst)).valueOf() && Object.keys((await keyspaceOf(dst))[0]).length === 0 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 20));
      await red.crash();
      await red.start();
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 700 + 300 * i)); // mid stream, under load
        await red.crash();
        await red.start();
      }
      await load.stop();
      if (process.env.DEBUG_CRASH) console.log(red.history + red.log);
      assert.doesNotMatch(red.history + red.log, /could not continue|full sync starts again/, 'every restart resumed with a partial resync');
      await converge(() => keyspaceOf(src), () => keyspaceOf(dst));
      d.disconnect();
    });
  });
}
