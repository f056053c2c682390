import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCluster, startRedis, type RedisCluster, type RedisServer, type SlotMigration } from './harness';
import { assertSameFunctions } from './support/compare';
import { until } from './support/wait';
import { slotOf } from '../lib/cluster/slots';
import type { CommandOp, KeyOp, Operation } from '../lib/ops/operation';
import { ReplicaSource } from '../lib/replication/source';
import { encodeCommands } from '../lib/resp/encoder';
import { SinkError } from '../lib/sink/errors';
import { DestinationWriter, type ConflictPolicy } from '../lib/sink/writer';
import { RespError } from '../lib/resp/errors';

const SOURCE = { source: 'writer-test' };
let offset = 1000;

function command(name: string, ...args: string[]): CommandOp {
  return { kind: 'command', db: 0, name, args: args.map((a) => Buffer.from(a)), keys: [0], shard: 'standalone', offset: offset++, tx: 0 };
}

/** `count` SETs of `size`-byte values to keys `<prefix>0…`. */
function sets(prefix: string, count: number, size = 1024, fill = 'v'): CommandOp[] {
  return Array.from({ length: count }, (_, i) => command('SET', `${prefix}${i}`, fill.repeat(size)));
}

function encodedSize(ops: CommandOp[]): number {
  return encodeCommands(ops.map((o) => [o.name, ...o.args])).length;
}

/** A writer connected to a standalone destination. */
async function writerTo(server: RedisServer, conflict?: ConflictPolicy): Promise<DestinationWriter> {
  const w = new DestinationWriter({ endpoint: { mode: 'standalone', host: server.host, port: server.port }, conflict });
  await w.connect();
  return w;
}

/** The largest query buffer among the destination's clients: what it read but has not run yet. */
async function largestQueryBuffer(server: RedisServer): Promise<number> {
  const list = String(await server.command('CLIENT', 'LIST'));
  return Math.max(0, ...[...list.matchAll(/ qbuf=(\d+) /g)].map((m) => Number(m[1])));
}

describe('lib/sink DestinationWriter: batches in flight', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let writer: DestinationWriter;

  beforeEach(async () => {
    server = await startRedis();
    writer = await writerTo(server);
    // the first batch of a pipeline loads its checkpoints and is applied alone
    await writer.apply([command('SET', 'warm', '1')], SOURCE);
  });
  afterEach(async () => {
    writer.close();
    await server.stop();
  });

  it('writes later batches of assignments while earlier ones wait for their replies', async () => {
    const batches = [sets('a', 200), sets('b', 200), sets('c', 200, 1024, 'w')];
    await server.command('CLIENT', 'PAUSE', 1500, 'WRITE');
    const applied = batches.map((b) => writer.apply(b, SOURCE));
    await sleep(400);
    // the destination has read all three batches while the first one still waits
    const queued = await largestQueryBuffer(server);
    assert.ok(queued > encodedSize(batches[0]) + encodedSize(batches[1]), `query buffer ${queued} bytes: later batches were not written`);
    await server.command('CLIENT', 'UNPAUSE');
    await Promise.all(applied);
    assert.equal(await server.command('DBSIZE'), 600 + 1); // + warm; assignments write no checkpoint
    assert.equal(await server.command('GET', 'c199'), 'w'.repeat(1024));
  });

  it('writes a batch with a non-idempotent command only once everything before it is confirmed', async () => {
    const first = sets('a', 200);
    await server.command('CLIENT', 'PAUSE', 1500, 'WRITE');
    const one = writer.apply(first, SOURCE);
    const two = writer.apply([command('INCR', 'counter')], SOURCE);
    await sleep(400);
    const queued = await largestQueryBuffer(server);
    assert.ok(queued <= encodedSize(first), `query buffer ${queued} bytes holds more than the first batch (${encodedSize(first)})`);
    await server.command('CLIENT', 'UNPAUSE');
    await Promise.all([one, two]);
    assert.equal(await server.command('GET', 'counter'), '1');
  });

  it('a refused write in flight stops the writer before a later checkpoint could cover it', async () => {
    await server.command('SET', 'str', 'x');
    const refused = [...sets('a', 50), command('SADD', 'str', 'member'), ...sets('b', 50)];
    const results = await Promise.allSettled([writer.apply(refused, SOURCE), writer.apply([command('INCR', 'counter')], SOURCE), writer.apply(sets('c', 5), SOURCE)]);
    assert.equal(results[0].status, 'rejected');
    const reason = String((results[0] as PromiseRejectedResult).reason);
    assert.match(reason, /SADD on key "str".*WRONGTYPE/);
    assert.equal(results[1].status, 'rejected');
    assert.equal(results[2].status, 'rejected');
    // the guarded INCR never ran, and no checkpoint reaches past the refused SADD
    assert.equal(await server.command('GET', 'counter'), null);
    const checkpoint = (await server.command('HGET', 'redis-sync:ckpt', `${SOURCE.source}|standalone`)) as string | null;
    const sadd = refused[50].offset;
    assert.ok(checkpoint === null || Number(checkpoint.split(' ')[1]) < sadd, `checkpoint ${checkpoint} covers the refused SADD at ${sadd}`);
    await assert.rejects(writer.apply(sets('d', 1), SOURCE), /WRONGTYPE/);
  });
});

describe('lib/sink DestinationWriter: a slot moves under batches in flight', function () {
  this.timeout(120_000);
  let cluster: RedisCluster;

  before(async () => {
    cluster = await startCluster({ masters: 3, replicas: 0 });
  });
  after(async () => {
    await cluster.stop();
  });

  it('applies the redirected batch and every later one again, in order, and the last write wins', async () => {
    const writer = new DestinationWriter({ endpoint: { mode: 'cluster', seeds: cluster.seeds } });
    await writer.connect();
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `moved:{k${i}}`);
      const on = (ops: CommandOp[]): CommandOp[] => ops.map((o) => ({ ...o, slot: slotOf(o.args[0]) }));
      await writer.apply(on([command('SET', 'warm', '1')]), SOURCE);
      // move the slot of the first key to another master behind the writer's back
      const slot = slotOf(keys[0]);
      const from = (await cluster.masterForSlot(slot)) as RedisServer;
      const masters = await cluster.masters();
      const to = masters.find((m) => m.port !== from.port) as RedisServer;
      await cluster.moveSlot(slot, to);
      const writes = [1, 2, 3, 4].map((n) => on(keys.map((k) => command('SET', k, `v${n}`))));
      await Promise.all(writes.map((b) => writer.apply(b, SOURCE)));
      assert.ok(writer.stats.redirects > 0, 'no redirect was seen: the test did not exercise the recovery');
      const client = cluster.client();
      for (const k of keys) assert.equal(await client.get(k), 'v4', k);
      client.disconnect();
    } finally {
      writer.close();
    }
  });

  it('refuses a key whose slot is not the one the router set (renamed after the router), naming both', async () => {
    const writer = new DestinationWriter({ endpoint: { mode: 'cluster', seeds: cluster.seeds } });
    await writer.connect();
    try {
      const renamed = { ...command('SET', 'app:{user1}', 'v'), slot: slotOf('legacy:{user9}') };
      await assert.rejects(writer.apply([renamed], SOURCE), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'SLOT');
        assert.match(err.message, new RegExp(`"app:\\{user1\\}".*slot ${slotOf('app:{user1}')}.*slot ${slotOf('legacy:{user9}')}`));
        return true;
      });
    } finally {
      writer.close();
    }
  });
});

describe('lib/sink SinkError.redirected', () => {
  it('names the command, its key, its source offset and the last redirection', () => {
    const op = command('RPUSH', 'ask:{c}:list', 'b');
    const err = SinkError.redirected(310, new RespError('TRYAGAIN Multiple keys request during rehashing of slot'), op);
    assert.equal(err.code, 'MOVED');
    assert.equal(err.reply?.code, 'TRYAGAIN');
    assert.match(err.message, new RegExp(`RPUSH on key "ask:\\{c\\}:list" \\(db 0, source offset ${op.offset}\\) after 310 .*: TRYAGAIN Multiple keys`));
  });
});

describe('lib/sink DestinationWriter: a slot migrating between masters (ASK)', function () {
  this.timeout(120_000);
  let cluster: RedisCluster;
  let writer: DestinationWriter;

  before(async () => {
    cluster = await startCluster({ masters: 3, replicas: 0 });
  });
  after(async () => {
    await cluster.stop();
  });
  beforeEach(async () => {
    writer = new DestinationWriter({ endpoint: { mode: 'cluster', seeds: cluster.seeds } });
    await writer.connect();
    await writer.apply([command('SET', 'warm', '1')], SOURCE);
  });
  afterEach(() => writer.close());

  const routed = <T extends Operation>(ops: T[]): T[] =>
    ops.map((o) => ({ ...o, slot: slotOf(o.kind === 'key' ? o.key : o.kind === 'command' ? o.args[o.keys[0]] : Buffer.alloc(0)) }));
  const migrationOf = async (slot: number): Promise<SlotMigration> => {
    const owner = (await cluster.masterForSlot(slot)) as RedisServer;
    const to = (await cluster.masters()).find((m) => m.port !== owner.port) as RedisServer;
    return cluster.startSlotMigration(slot, to);
  };
  const keysIn = async (node: RedisServer, slot: number): Promise<string[]> => ((await node.command('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[]).sort();

  it('writes what the owner no longer has to the importing node, and the rest where it is, while the slot is still migrating', async () => {
    const [moved, stays, fresh] = ['ask:{a}:moved', 'ask:{a}:stays', 'ask:{a}:new'];
    const slot = slotOf(moved);
    const client = cluster.client();
    await client.mset(moved, 'old', stays, 'old');
    const migration = await migrationOf(slot);
    await migration.migrate([moved]);
    // would wait for the migration to end (and give up after about a minute) without following ASK
    await writer.apply(routed([command('SET', moved, 'v0'), command('SET', stays, 'v1'), command('SET', fresh, 'v1'), command('SET', moved, 'v1')]), SOURCE);
    assert.ok(writer.stats.asks >= 3, `${writer.stats.asks} commands asked: both of the moved key and the new one`);
    assert.deepEqual(await keysIn(migration.from, slot), [stays]);
    await migration.finish();
    assert.deepEqual(await client.mget(moved, stays, fresh), ['v1', 'v1', 'v1']);
    client.disconnect();
  });

  it('sends only the commands of a key that were asked: a big list in parts arrives whole and in order', async () => {
    const key = 'ask:{b}:list';
    const slot = slotOf(key);
    const client = cluster.client();
    await client.rpush(key, 'stale');
    const migration = await migrationOf(slot);
    // part 0 starts with DEL, which runs on the owner; the key is then gone there, so its RPUSHes are asked
    const items = Array.from({ length: 2000 }, (_, i) => Buffer.from(`item${i}`));
    const part = (index: number): KeyOp => ({
      kind: 'key', db: 0, key: Buffer.from(key), type: 'list', value: items.slice(index * 1000, index * 1000 + 1000), rdbType: 18,
      expireMs: null, idleSeconds: null, lfuFreq: null, raw: null, chunk: { index, last: index === 1 }, offset: 0, shard: 'standalone', rdbVersion: 11,
    });
    // the INCR elsewhere makes the batch one applied alone, so the asked commands are followed on its first try
    await writer.apply(routed([part(0), part(1), command('INCR', 'ask:elsewhere')]), SOURCE);
    assert.ok(writer.stats.asks >= 4, `${writer.stats.asks} commands asked`);
    assert.deepEqual(await keysIn(migration.from, slot), []);
    await migration.finish();
    assert.deepEqual(await client.lrange(key, 0, -1), items.map(String));
    client.disconnect();
  });

  it('a guarded group whose keys the migration split waits for it to end, then runs exactly once', async () => {
    const [counter, list] = ['ask:{c}:counter', 'ask:{c}:list'];
    const slot = slotOf(counter);
    const client = cluster.client();
    await client.set(counter, '5');
    // the slot's checkpoint exists before the migration, on the owner, beside the list
    await writer.apply(routed([command('INCR', counter), command('RPUSH', list, 'a')]), SOURCE);
    const migration = await migrationOf(slot);
    await migration.migrate([counter]);
    const applied = writer.apply(routed([command('INCR', counter), command('RPUSH', list, 'b')]), SOURCE);
    // the owner asks for the counter, the importing node answers TRYAGAIN for the group: nothing runs
    await sleep(1500);
    assert.equal(await (await cluster.masterForSlot(slot))?.command('LLEN', list), 1);
    await migration.finish();
    await applied;
    assert.ok(writer.stats.asks > 0, 'the group was never asked: the test did not exercise ASK');
    assert.equal(await client.get(counter), '7');
    assert.deepEqual(await client.lrange(list, 0, -1), ['a', 'b']);
    client.disconnect();
  });
});

describe('lib/sink DestinationWriter: a cluster source shard synced again under "precheck and intercept"', function () {
  this.timeout(60_000);
  const SHARD = 'slots:0-5460';
  const inShard = (prefix: string): string => {
    for (let i = 0; ; i++) if (slotOf(`${prefix}${i}`) <= 5460) return `${prefix}${i}`;
  };
  const outside = (prefix: string): string => {
    for (let i = 0; ; i++) if (slotOf(`${prefix}${i}`) > 5460) return `${prefix}${i}`;
  };
  const begin = (epoch: string): Operation => ({ kind: 'snapshot-begin', shard: SHARD, replid: epoch, offset: 0 });
  const set = (key: string): CommandOp => ({ ...command('SET', key, 'v'), shard: SHARD });
  let server: RedisServer;

  beforeEach(async () => {
    server = await startRedis();
  });
  afterEach(async () => {
    await server.stop();
  });

  const writer = (): Promise<DestinationWriter> => writerTo(server, 'intercept');

  it("removes the shard's earlier keys by slot when its keys kept their names", async () => {
    const own = inShard('own:');
    const w1 = await writer();
    await w1.apply([begin('first'), set(own)], SOURCE);
    w1.close();
    await server.command('SET', outside('other:'), 'another shard wrote it');
    const w2 = await writer();
    await w2.apply([begin('second')], SOURCE);
    w2.close();
    assert.equal(await server.command('EXISTS', own), 0, 'the earlier sync of the shard left its key');
    assert.equal(await server.command('EXISTS', outside('other:')), 1, "another shard's key was removed");
  });

  it('refuses to guess when its keys were renamed on the way, and says what to do', async () => {
    const renamed = outside('renamed:');
    const w1 = await writer();
    await w1.apply([begin('first'), set(inShard('own:')), set(renamed)], SOURCE);
    w1.close();
    const w2 = await writer();
    await assert.rejects(w2.apply([begin('second')], SOURCE), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'NOT_EMPTY');
      assert.match(err.message, /slots:0-5460 needs a new full sync.*other names.*empty the destination/);
      return true;
    });
    w2.close();
    // nothing was removed: another shard's keys may be among them
    assert.equal(await server.command('EXISTS', renamed), 1);
  });
});

describe('lib/sink DestinationWriter: a standalone destination behind a slot router with two outputs', function () {
  this.timeout(60_000);
  let server: RedisServer;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });

  it('the sink behind the first output empties the destination once; the other only starts over, and keeps what the first wrote', async () => {
    const [first, second] = [await writerTo(server, 'intercept'), await writerTo(server, 'intercept')];
    try {
      const begin = (replid: string): Operation => ({ kind: 'snapshot-begin', shard: 'standalone', replid, offset: 0 });
      // the first sync: each sink applies a guarded command of its slots
      await first.apply([begin('one'), command('SET', 'old', '1')], { source: 'routed', partition: 0 });
      await second.apply([begin('one')], { source: 'routed', partition: 1 });
      await second.apply([command('INCR', 'n')], { source: 'routed', partition: 1 });
      // the source starts over: a new full sync whose offsets are below the first one's
      offset = 1;
      await first.apply([begin('two'), command('SET', 'new', '2')], { source: 'routed', partition: 0 });
      await second.apply([begin('two')], { source: 'routed', partition: 1 });
      assert.equal(await server.command('EXISTS', 'old'), 0, 'the earlier sync was removed');
      assert.equal(await server.command('GET', 'new'), '2', 'the second sink emptied the destination again after the first wrote to it');
      // the second sink's offsets of the first sync no longer count: the new INCR at a lower offset is applied
      await second.apply([command('INCR', 'n')], { source: 'routed', partition: 1 });
      assert.equal(await server.command('GET', 'n'), '1', 'the INCR of the second sync was taken for a replay');
    } finally {
      first.close();
      second.close();
    }
  });

  it('keeps a checkpoint per router output: the parts of a batch come in no common order, and a replay skips exactly what landed', async () => {
    const at = (op: CommandOp, o: number): CommandOp => ({ ...op, offset: o });
    // one source batch, split by slot: part 0 holds a later write than part 1's
    const part0 = [at(command('INCR', 'x'), 20)];
    const part1 = [at(command('SET', 'y', 'v'), 10), at(command('INCR', 'z'), 15)];
    const first = await writerTo(server);
    await first.apply(part0, { source: 'split', partition: 0 });
    await first.apply(part1, { source: 'split', partition: 1 });
    first.close();
    assert.deepEqual([await server.command('GET', 'x'), await server.command('GET', 'y'), await server.command('GET', 'z')], ['1', 'v', '1']);
    // after a restart the whole batch comes again: the non-idempotent writes are not repeated
    const again = await writerTo(server);
    await again.apply(part0, { source: 'split', partition: 0 });
    await again.apply(part1, { source: 'split', partition: 1 });
    again.close();
    assert.deepEqual([await server.command('GET', 'x'), await server.command('GET', 'z')], ['1', '1']);
  });
});


describe('lib/sink DestinationWriter: the function libraries of a full sync', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'writer-functions-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('all of them arrive from a source that never had a replica (offset 0), exactly once and at least once', async () => {
    const source = await startRedis();
    const c = source.client();
    for (const name of ['first', 'second']) {
      await c.call('FUNCTION', 'LOAD', `#!lua name=${name}\nredis.register_function('${name}_get', function(keys) return redis.call('get', keys[1]) end)`);
    }
    await c.set('k', 'v');
    const ops: Operation[] = [];
    const replica = new ReplicaSource({ endpoint: { mode: 'standalone', host: source.host, port: source.port }, dir, batchLatencyMs: 5, onBatch: async (b) => void ops.push(...b) });
    await replica.start();
    try {
      await until(() => ops.some((o) => o.kind === 'snapshot-end'), 'the snapshot');
    } finally {
      await replica.stop();
    }
    assert.equal(ops.find((o) => o.kind === 'snapshot-begin')?.offset, 0, 'the full sync starts at offset 0');
    for (const exactlyOnce of [true, false]) {
      const destination = await startRedis();
      const writer = new DestinationWriter({ endpoint: { mode: 'standalone', host: destination.host, port: destination.port }, exactlyOnce });
      await writer.connect();
      try {
        await writer.apply(ops, { source: 'functions' });
      } finally {
        writer.close();
      }
      await assertSameFunctions(source, destination);
      assert.equal(await destination.command('FCALL', 'second_get', 1, 'k'), 'v', `exactly once ${exactlyOnce}: FCALL on the destination`);
      await destination.stop();
    }
    await source.stop();
  });
});
