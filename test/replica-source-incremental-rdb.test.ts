import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandOp, Operation } from '../lib/ops/operation';
import { ReplicaSource } from '../lib/replication/source';
import type { RedisServer } from './harness';
import { TestServers } from './support/servers';
import { requireBuilds } from './support/versions';
import { until } from './support/wait';

describe('replica source, incremental only: the snapshot it must take is asked for without keys where the master can (7.0+)', function () {
  this.timeout(90_000);
  const servers = new TestServers();
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'incremental-rdb-'));
  });
  afterEach(async () => {
    await servers.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Incremental only on a source of 20,000 keys of 100 bytes: the RDB bytes received, and the writes after the start only. */
  async function incrementalOnly(server: RedisServer): Promise<number> {
    const c = server.client();
    const value = 'v'.repeat(100);
    for (let i = 0; i < 20_000; i += 1000) await c.mset(...Array.from({ length: 1000 }, (_, j) => [`k${i + j}`, value]).flat());
    const ops: Operation[] = [];
    const s = new ReplicaSource({ endpoint: { mode: 'standalone', host: '127.0.0.1', port: server.port }, dir, mode: 'incremental', onBatch: async (b) => void ops.push(...b) });
    try {
      await s.start();
      await until(() => s.progress.phase === 'streaming', 'streaming', 30_000);
      await c.incr('after');
      await until(() => ops.some((o) => o.kind === 'command' && (o as CommandOp).name === 'INCR'), 'the write after the start', 10_000);
      assert.equal(ops.filter((o) => o.kind === 'key').length, 0, 'no key of the snapshot handed on');
      return s.progress.snapshot.bytes;
    } finally {
      await s.stop();
    }
  }

  it('7.0: the RDB received holds no keys (a few hundred bytes for 20,000 keys), and the stream follows', async () => {
    const bytes = await incrementalOnly(await servers.version('7.0'));
    assert.ok(bytes > 0 && bytes < 1000, `${bytes} RDB bytes received`);
  });

  it('6.2, which has no rdb-filter-only: the whole RDB is received and discarded, and the stream follows', async function () {
    requireBuilds(this, ['6.2.16']);
    const bytes = await incrementalOnly(await servers.version('6.2.16'));
    // the values are compressed (LZF): about 20 bytes a key
    assert.ok(bytes > 20_000 * 10, `${bytes} RDB bytes received`);
  });
});
