import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type Redis from 'ioredis';
import type { CommandOp, KeyOp, Operation } from '../lib/ops/operation';
import { ReplicationDecoder } from '../lib/replication/decoder';
import { ReplicationError } from '../lib/replication/errors';
import { ReplicaLink, type ReplPosition } from '../lib/replication/link';
import { startRedis, type RedisServer } from './harness';
import { until } from './support/wait';

/** A link feeding a decoder directly (no spool): the ops arrive in `ops`. */
function linkTo(server: RedisServer, decoder: ReplicationDecoder, ops: Operation[], position: ReplPosition | null, extra: Partial<ConstructorParameters<typeof ReplicaLink>[0]> = {}): ReplicaLink {
  return new ReplicaLink({
    host: server.host,
    port: server.port,
    position,
    onRecord: (r) => {
      for (const op of decoder.push(r)) ops.push(op);
    },
    ...extra,
  });
}

async function masterOffset(c: Redis): Promise<number> {
  return Number(/master_repl_offset:(\d+)/.exec(await c.info('replication'))?.[1]);
}

const commands = (ops: Operation[]): CommandOp[] => ops.filter((o): o is CommandOp => o.kind === 'command');

for (const diskless of [false, true]) {
  describe(`replica link, ${diskless ? 'diskless' : 'disk-based'} full sync (redis 7.0)`, function () {
    this.timeout(60_000);
    let server: RedisServer;
    let c: Redis;
    before(async () => {
      server = await startRedis({ config: { 'repl-diskless-sync': diskless ? 'yes' : 'no' } });
      c = server.client();
    });
    after(() => server.stop());

    it('receives the snapshot, then every write with its exact offset; resumes with +CONTINUE after CLIENT KILL', async () => {
      await c.set('a', '1');
      await c.rpush('l', 'x', 'y');
      await c.select(5);
      await c.hset('h', 'f', 'v');
      await c.select(0);
      const decoder = new ReplicationDecoder({ shard: 'test' });
      const ops: Operation[] = [];
      const link = linkTo(server, decoder, ops, null);
      await link.start();
      await until(() => ops.some((o) => o.kind === 'snapshot-end'), 'the snapshot');
      assert.equal(link.diskless, diskless);
      const keys = ops.filter((o): o is KeyOp => o.kind === 'key');
      assert.deepEqual(keys.map((k) => `${k.db}:${k.key}`).sort(), ['0:a', '0:l', '5:h']);
      assert.ok(keys.every((k) => k.raw !== null && k.rdbVersion === 10 && k.shard === 'test'));

      for (let i = 0; i < 100; i++) await c.incr('n');
      await c.multi().rpush('q', 'a').incr('n').exec();
      await c.select(3);
      await c.set('in3', 'v');
      await c.select(0);
      const expected = await masterOffset(c);
      await until(() => (decoder.position?.offset ?? -1) >= expected, `offset ${expected}`);
      const cmds = commands(ops);
      assert.equal(cmds.filter((o) => o.name === 'INCR').length, 101);
      const tx = cmds.filter((o) => o.tx !== 0);
      assert.deepEqual(tx.map((o) => o.name), ['MULTI', 'RPUSH', 'INCR', 'EXEC']);
      assert.equal(new Set(tx.map((o) => o.tx)).size, 1);
      const set3 = cmds.find((o) => o.name === 'SET' && o.args[0].toString() === 'in3');
      assert.equal(set3?.db, 3);
      assert.deepEqual(set3?.keys, [0]);
      assert.ok(!cmds.some((o) => o.name === 'PING' || o.name === 'REPLCONF' || o.name === 'SELECT'));
      for (let i = 1; i < cmds.length; i++) assert.ok(cmds[i].offset > cmds[i - 1].offset, 'offsets grow');

      // the master drops us; a new link continues from the same position, nothing lost or doubled
      const closed = new Promise<ReplicationError | null>((r) => link.once('close', r));
      await c.call('CLIENT', 'KILL', 'TYPE', 'replica');
      const err = await closed;
      assert.equal(err?.code, 'CLOSED');
      assert.ok(err?.retryable);
      for (let i = 0; i < 50; i++) await c.incr('n');
      const again = linkTo(server, decoder, ops, { ...(link.position as ReplPosition) });
      let continued = false;
      again.once('continue', () => (continued = true));
      await again.start();
      assert.ok(continued, '+CONTINUE, not a full resync');
      const expected2 = await masterOffset(c);
      await until(() => (decoder.position?.offset ?? -1) >= expected2, `offset ${expected2}`);
      assert.equal(commands(ops).filter((o) => o.name === 'INCR').length, 151);
      assert.equal(Number(await c.get('n')), 151);
      await again.close();
    });
  });
}

describe('replica link errors', function () {
  this.timeout(30_000);

  it('names a wrong password as an AUTH error that a retry cannot cure', async () => {
    const server = await startRedis({ config: { requirepass: 'secret' } });
    try {
      const link = new ReplicaLink({ host: server.host, port: server.port, password: 'wrong', position: null, onRecord: () => {} });
      await assert.rejects(link.start(), (e: unknown) => e instanceof ReplicationError && e.code === 'AUTH' && !e.retryable && /authentication/.test(e.message));
      const noPass = new ReplicaLink({ host: server.host, port: server.port, position: null, onRecord: () => {} });
      await assert.rejects(noPass.start(), (e: unknown) => e instanceof ReplicationError && e.code === 'AUTH' && /NOAUTH/.test(e.message));
    } finally {
      await server.stop();
    }
  });

  it('names the missing permission of an ACL user that may not replicate', async () => {
    const server = await startRedis();
    try {
      await server.client().call('ACL', 'SETUSER', 'reader', 'on', '>pw', '~*', '+@read', '+ping', '+auth');
      const link = new ReplicaLink({ host: server.host, port: server.port, username: 'reader', password: 'pw', position: null, onRecord: () => {} });
      await assert.rejects(link.start(), (e: unknown) => e instanceof ReplicationError && e.code === 'NOPERM' && /replconf|psync/i.test(e.message));
      // with exactly what a replica needs, it works
      await server.client().call('ACL', 'SETUSER', 'repl', 'on', '>pw', '+psync', '+replconf', '+ping');
      const ok = new ReplicaLink({ host: server.host, port: server.port, username: 'repl', password: 'pw', position: null, onRecord: () => {} });
      await ok.start();
      await ok.close();
    } finally {
      await server.stop();
    }
  });

  it('reports a refused connection as a retryable CONNECT error', async () => {
    const server = await startRedis();
    const port = server.port;
    await server.stop();
    const link = new ReplicaLink({ host: '127.0.0.1', port, position: null, onRecord: () => {} });
    await assert.rejects(link.start(), (e: unknown) => e instanceof ReplicationError && e.code === 'CONNECT' && e.retryable);
  });
});

/** A link feeding a decoder, started; resolves with the ops once the snapshot has ended. */
async function fullSync(server: RedisServer, timeoutMs = 30_000): Promise<{ link: ReplicaLink; ops: Operation[]; ms: number }> {
  const decoder = new ReplicationDecoder({ shard: 'test' });
  const ops: Operation[] = [];
  const link = linkTo(server, decoder, ops, null);
  const t0 = Date.now();
  await link.start();
  await until(() => ops.some((o) => o.kind === 'snapshot-end'), 'the snapshot', timeoutMs);
  return { link, ops, ms: Date.now() - t0 };
}

const keysOf = (ops: Operation[]): string[] => ops.filter((o): o is KeyOp => o.kind === 'key').map((k) => k.key.toString()).sort();

describe('replica link against masters that hold the sync back', function () {
  this.timeout(60_000);

  it('syncs from a stock Redis 7.0, whose diskless sync waits 5 s with newline keep-alives before +FULLRESYNC', async () => {
    const server = await startRedis();
    try {
      const c = server.client();
      assert.equal((await c.config('GET', 'repl-diskless-sync-delay'))[1], '5', 'the stock delay');
      await c.set('a', '1');
      const decoder = new ReplicationDecoder({ shard: 'test' });
      const ops: Operation[] = [];
      const link = linkTo(server, decoder, ops, null);
      const t0 = Date.now();
      await link.start();
      // start() resolves once PSYNC is answered: the master answered after its delay, the newlines before were skipped
      assert.ok(Date.now() - t0 >= 3000, `+FULLRESYNC came after ${Date.now() - t0} ms: the master did not hold the sync back`);
      await until(() => ops.some((o) => o.kind === 'snapshot-end'), 'the snapshot');
      assert.ok(link.diskless);
      assert.deepEqual(keysOf(ops), ['a']);
      assert.deepEqual(link.server, { role: 'master', master: null, masterLink: null, keys: 1 });
      await c.set('b', '2');
      await until(() => commands(ops).some((o) => o.name === 'SET'), 'the SET after the snapshot');
      await link.close();
    } finally {
      await server.stop();
    }
  });

  it('says it waits while the master holds the sync back (state psync)', async () => {
    const server = await startRedis();
    try {
      const link = new ReplicaLink({ host: server.host, port: server.port, position: null, onRecord: () => {} });
      const started = link.start();
      await until(() => link.state === 'psync', 'PSYNC sent');
      await sleep(1500);
      assert.equal(link.state, 'psync', 'still waiting after 1.5 s');
      await started;
      await link.close();
    } finally {
      await server.stop();
    }
  });

  it('waits through a BGSAVE already running, before +FULLRESYNC and before the payload (disk-based; tuned: rdb-key-save-delay makes the BGSAVE last)', async () => {
    const server = await startRedis({ config: { 'repl-diskless-sync': 'no', 'rdb-key-save-delay': '3000' } });
    try {
      const c = server.client();
      for (let i = 0; i < 500; i++) await c.set(`k${i}`, String(i));
      await c.bgsave();
      assert.match(await c.info('persistence'), /rdb_bgsave_in_progress:1/);
      const { link, ops, ms } = await fullSync(server);
      assert.ok(!link.diskless);
      assert.equal(keysOf(ops).length, 500);
      // the user's BGSAVE (~1.5 s), then the replica's own (~1.5 s), each with keep-alives
      assert.ok(ms >= 2500, `synced after ${ms} ms: the BGSAVEs did not run as assumed`);
      await link.close();
    } finally {
      await server.stop();
    }
  });
});

describe('replica link against nodes that cannot serve a sync yet', function () {
  this.timeout(60_000);

  it('names a loading node LOADING, which a retry may cure (tuned: key-load-delay and loading-process-events-interval-bytes make the replica load slowly and answer meanwhile)', async () => {
    const master = await startRedis();
    const replica = await startRedis({ config: { 'key-load-delay': '5000', 'loading-process-events-interval-bytes': '1024' } });
    try {
      const m = master.client();
      for (let i = 0; i < 2000; i += 100) await m.mset(Object.fromEntries(Array.from({ length: 100 }, (_, j) => [`k${i + j}`, 'v'.repeat(100)])));
      await replica.client().replicaof(master.host, master.port);
      // redis-cli, as ioredis's ready check would wait until the load ends
      await until(async () => /loading:1/.test(await replica.cli('INFO', 'persistence')), 'the replica loading', 20_000);
      const link = new ReplicaLink({ host: replica.host, port: replica.port, position: null, onRecord: () => {} });
      await assert.rejects(link.start(), (e: unknown) => e instanceof ReplicationError && e.code === 'LOADING' && e.retryable && /loading/.test(e.message));
    } finally {
      await Promise.all([replica.stop(), master.stop()]);
    }
  });

  it('names a replica whose master is gone (replica-serve-stale-data no: MASTERDOWN) as retryable NOMASTERLINK', async () => {
    const gone = await startRedis();
    const port = gone.port;
    await gone.stop();
    const replica = await startRedis({ config: { 'replica-serve-stale-data': 'no' } });
    try {
      await replica.client().replicaof('127.0.0.1', port);
      const link = new ReplicaLink({ host: replica.host, port: replica.port, position: null, onRecord: () => {} });
      await assert.rejects(link.start(), (e: unknown) => e instanceof ReplicationError && e.code === 'NOMASTERLINK' && e.retryable && /MASTERDOWN/.test(e.message));
    } finally {
      await replica.stop();
    }
  });

  it('syncs from a replica node as Redis serves it (chained replication) and says it is one', async () => {
    const master = await startRedis();
    const replica = await startRedis();
    try {
      const m = master.client();
      await m.set('before', '1');
      await replica.client().replicaof(master.host, master.port);
      await until(async () => /master_link_status:up/.test(await replica.client().info('replication')), 'the replica up', 30_000);
      const { link, ops } = await fullSync(replica);
      assert.deepEqual(link.server, { role: 'replica', master: `${master.host}:${master.port}`, masterLink: 'up', keys: 1 });
      assert.deepEqual(keysOf(ops), ['before']);
      await m.incr('after');
      await until(() => commands(ops).some((o) => o.name === 'INCR'), 'the master\'s INCR, through the replica');
      await link.close();
    } finally {
      await Promise.all([replica.stop(), master.stop()]);
    }
  });
});

describe('replica link against a master without PSYNC', function () {
  this.timeout(60_000);

  it('falls back to SYNC, as Redis\'s replica does, when PSYNC is renamed away; the snapshot and the stream arrive', async () => {
    const server = await startRedis({ config: { 'rename-command': 'PSYNC ""' } });
    try {
      const c = server.client();
      await c.set('a', '1');
      const { link, ops } = await fullSync(server);
      assert.equal(link.position?.replid, '?', 'SYNC gives no replication id');
      assert.deepEqual(keysOf(ops), ['a']);
      await c.incr('n');
      await until(() => commands(ops).some((o) => o.name === 'INCR'), 'the INCR after the snapshot');
      await link.close();
    } finally {
      await server.stop();
    }
  });

  it('names SYNC refused too (both renamed, as managed services do) as REFUSED, which a retry cannot cure', async () => {
    const server = await startRedis({ config: { 'rename-command': ['PSYNC ""', 'SYNC ""'] } });
    try {
      const link = new ReplicaLink({ host: server.host, port: server.port, position: null, onRecord: () => {} });
      const closed = new Promise<ReplicationError | null>((r) => link.once('close', r));
      await link.start().catch(() => undefined);
      const err = await closed;
      assert.ok(err instanceof ReplicationError);
      assert.ok(!err.retryable, `${err.code}: ${err.message}`);
      assert.match(err.message, /unknown command/i);
    } finally {
      await server.stop();
    }
  });
});
