import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandOp, Operation } from '../lib/ops/operation';
import type { ReplicationError } from '../lib/replication/errors';
import { commandNames } from '../lib/replication/renamed';
import { ReplicaSource } from '../lib/replication/source';
import type { RedisServer } from './harness';
import { TestServers } from './support/servers';
import { until } from './support/wait';

describe('replica source where the provider renamed PSYNC and SYNC (rename-command, as managed services do)', function () {
  this.timeout(60_000);
  const servers = new TestServers();
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'renamed-'));
  });
  afterEach(async () => {
    await servers.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A source on `server` with the given names; its operations, and the error it ends with. */
  function source(server: RedisServer, names: { psyncCommand?: string; syncCommand?: string }): { s: ReplicaSource; ops: Operation[]; ended: Promise<ReplicationError | null> } {
    const ops: Operation[] = [];
    const s = new ReplicaSource({ endpoint: { mode: 'standalone', host: '127.0.0.1', port: server.port }, dir, ...names, onBatch: async (b) => void ops.push(...b) });
    const ended = new Promise<ReplicationError | null>((resolve) => s.once('end', resolve));
    return { s, ops, ended };
  }

  async function fullSyncThenStream(server: RedisServer, names: { psyncCommand?: string; syncCommand?: string }): Promise<Operation[]> {
    const c = server.client();
    for (let i = 0; i < 50; i++) await c.set(`k${i}`, String(i));
    const { s, ops } = source(server, names);
    try {
      await s.start();
      await until(() => ops.some((o) => o.kind === 'snapshot-end'), 'the snapshot', 20_000).catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(s.progress.shards.map((p) => p.lastError))}`);
      });
      assert.equal(ops.filter((o) => o.kind === 'key').length, 50);
      await c.incr('after');
      await until(() => ops.some((o) => o.kind === 'command' && (o as CommandOp).name === 'INCR'), 'the stream', 10_000);
      return ops;
    } finally {
      await s.stop();
    }
  }

  it('PSYNC renamed, SYNC disabled: with the per-node name (host:port@name, the aws_psync form) a stock master serves it as SYNC and it syncs; without, it stops naming the setting', async () => {
    const server = await servers.server({ config: { 'rename-command': ['PSYNC psync-7f3a9c', 'SYNC ""'] } });
    const ops = await fullSyncThenStream(server, { psyncCommand: `10.9.9.9:6379@other, 127.0.0.1:${server.port}@psync-7f3a9c` });
    // a stock master serves a renamed PSYNC as SYNC (syncCommand in replication.c compares the name sent): no replication id
    assert.equal((ops.find((o) => o.kind === 'snapshot-begin') as { replid: string }).replid, '?');

    const { s, ended } = source(server, {});
    await s.start();
    const err = await ended;
    assert.match(String(err?.message), /neither PSYNC nor SYNC is known here.*Renamed PSYNC \/ SYNC/);
    await s.stop();
  });

  it('PSYNC disabled, SYNC renamed: with the SYNC name it syncs by SYNC', async () => {
    const server = await servers.server({ config: { 'rename-command': ['PSYNC ""', 'SYNC sync-51be07'] } });
    const ops = await fullSyncThenStream(server, { syncCommand: 'sync-51be07' });
    assert.equal((ops.find((o) => o.kind === 'snapshot-begin') as { replid: string }).replid, '?', 'a SYNC full sync');
  });

  it('reads one name for every node, per-node names with a name for the others, and refuses a malformed entry', () => {
    assert.equal(commandNames('', 'PSYNC')('h', 1), 'PSYNC');
    assert.equal(commandNames('abc', 'PSYNC')('h', 1), 'abc');
    const names = commandNames('10.0.0.1:6379@one, 10.0.0.2:6379@two, rest', 'PSYNC');
    assert.deepEqual([names('10.0.0.1', 6379), names('10.0.0.2', 6379), names('10.0.0.3', 6379)], ['one', 'two', 'rest']);
    assert.throws(() => commandNames('10.0.0.1@x', 'SYNC'), /the renamed SYNC "10.0.0.1@x" is neither a command name nor host:port@name/);
  });
});
