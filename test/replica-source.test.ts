import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandOp, KeyOp, Operation } from '../lib/ops/operation';
import { ReplicaSource } from '../lib/replication/source';
import { startCluster, type RedisCluster } from './harness';
import { until } from './support/wait';

describe('replica source on a 3-master cluster with replicas', function () {
  this.timeout(180_000);
  let cluster: RedisCluster;
  let dir: string;
  before(async () => {
    cluster = await startCluster({ masters: 3, replicas: 1 });
    dir = mkdtempSync(join(tmpdir(), 'source-'));
  });
  after(async () => {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies every key once, then follows a failover with nothing lost or doubled', async () => {
    const c = cluster.client();
    for (let i = 0; i < 300; i++) await c.set(`key:${i}`, `v${i}`);
    const ops: Operation[] = [];
    const source = new ReplicaSource({
      endpoint: { mode: 'cluster', seeds: cluster.seeds },
      dir,
      topologyIntervalMs: 500,
      onBatch: async (batch) => {
        ops.push(...batch);
      },
    });
    await source.start();
    await until(() => ops.filter((o) => o.kind === 'snapshot-end').length === 3, 'three snapshots', 30_000);
    const keys = ops.filter((o): o is KeyOp => o.kind === 'key').map((k) => k.key.toString());
    assert.equal(keys.length, 300, 'every key once');
    assert.equal(new Set(keys).size, 300);
    assert.equal(new Set(ops.filter((o) => o.kind === 'key').map((o) => o.shard)).size, 3);

    const counters = 20;
    let pushes = 0;
    const write = async (rounds: number): Promise<void> => {
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < counters; i++) {
          await c.incr(`counter:${i}`);
          await c.rpush(`list:${i}`, `item-${pushes++}`);
        }
      }
    };
    await write(10);
    const masters = await cluster.masters();
    const replicaOfFirst = (await cluster.replicasOf(masters[0]))[0];
    const writing = write(30);
    await cluster.failover(replicaOfFirst);
    await writing;
    await write(10);

    const expectedIncr = 50 * counters;
    const incrs = (): CommandOp[] => ops.filter((o): o is CommandOp => o.kind === 'command' && o.name === 'INCR');
    await until(() => incrs().length >= expectedIncr, `${expectedIncr} INCRs`, 60_000);
    await new Promise((r) => setTimeout(r, 1500)); // anything doubled would arrive now
    assert.equal(incrs().length, expectedIncr, 'no INCR lost or doubled');
    for (let i = 0; i < counters; i++) {
      const seen = incrs().filter((o) => o.args[0].toString() === `counter:${i}`).length;
      assert.equal(seen, Number(await c.get(`counter:${i}`)), `counter:${i}`);
      const pushed = ops
        .filter((o): o is CommandOp => o.kind === 'command' && o.name === 'RPUSH' && o.args[0].toString() === `list:${i}`)
        .map((o) => o.args[1].toString());
      assert.deepEqual(pushed, await c.lrange(`list:${i}`, 0, -1), `list:${i} in order`);
    }
    assert.ok(source.progress.reconnects >= 1, 'the link of the failed-over shard reconnected');
    assert.ok(!ops.slice(ops.findIndex((o) => o.kind === 'command')).some((o) => o.kind === 'snapshot-begin'), 'no full resync after the failover');
    await source.stop();
    assert.equal(source.phase, 'stopped');
  });
});
