/**
 * The replica link against the older protocol of real older builds (part of `npm run
 * test:versions`): what a 2.8 master without PSYNC and a 4.0 replica without its master say.
 */
import assert from 'node:assert/strict';
import type { Operation } from '../../lib/ops/operation';
import { ReplicationDecoder } from '../../lib/replication/decoder';
import { ReplicationError } from '../../lib/replication/errors';
import { ReplicaLink } from '../../lib/replication/link';
import { startRedis } from '../harness';
import { redisBuild, type RedisBuild, type VersionName } from '../support/versions';
import { until } from '../support/wait';

function buildOrSkip(ctx: Mocha.Context, name: VersionName): RedisBuild {
  const b = redisBuild(name);
  if (typeof b === 'string') {
    if (process.env.CI) assert.fail(`build absent: ${b}`);
    ctx.skip();
  }
  return b as RedisBuild;
}

describe('replica link against older builds', function () {
  this.timeout(60_000);

  it('2.8.24 with PSYNC renamed away: falls back to SYNC; the snapshot and the stream arrive', async function () {
    const b = buildOrSkip(this, '2.8.24');
    const server = await startRedis({ binary: b.server, cliBinary: b.cli, config: { 'rename-command': 'PSYNC ""' } });
    try {
      const c = server.client();
      await c.set('a', '1');
      const decoder = new ReplicationDecoder({ shard: 'test' });
      const ops: Operation[] = [];
      const link = new ReplicaLink({ host: server.host, port: server.port, position: null, onRecord: (r) => ops.push(...decoder.push(r)) });
      await link.start();
      await until(() => ops.some((o) => o.kind === 'snapshot-end'), 'the snapshot');
      assert.equal(link.position?.replid, '?');
      assert.deepEqual(link.server, { role: 'master', master: null, masterLink: null, keys: 1 });
      await c.incr('n');
      await until(() => ops.some((o) => o.kind === 'command' && o.name === 'INCR'), 'the INCR');
      await link.close();
    } finally {
      await server.stop();
    }
  });

  it('4.0.14 replica whose master is gone ("Can\'t SYNC while not connected with my master", before NOMASTERLINK): retryable NOMASTERLINK', async function () {
    const b = buildOrSkip(this, '4.0.14');
    const gone = await startRedis({ binary: b.server, cliBinary: b.cli });
    const port = gone.port;
    await gone.stop();
    const replica = await startRedis({ binary: b.server, cliBinary: b.cli });
    try {
      await replica.client().slaveof('127.0.0.1', port);
      const link = new ReplicaLink({ host: replica.host, port: replica.port, position: null, onRecord: () => {} });
      await assert.rejects(link.start(), (e: unknown) => e instanceof ReplicationError && e.code === 'NOMASTERLINK' && e.retryable && /not connected with my master/.test(e.message));
    } finally {
      await replica.stop();
    }
  });
});
