import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { applyCrossSlot } from '../lib/cluster/colocate';
import { IoredisClusterExecutor } from './support/cluster-executor';
import { SlotRouter } from '../lib/cluster/router';
import { hashTagForSlot, partitionOf, slotOf } from '../lib/cluster/slots';
import { keysOf } from '../lib/ops/commands';
import { SLOT_CROSS, SLOT_NONE, type CommandOp, type KeyOp, type Operation } from '../lib/ops/operation';
import { buildDumpPayload } from '../lib/rdb/dump';
import { ReplicaSource } from '../lib/replication/source';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import { assertSameKeyspace, keyspaceOf } from './support/compare';
import { until } from './support/wait';
import { fillAllTypes } from './support/workload';

const B = (s: string): Buffer => Buffer.from(s);

let offset = 100;
/** A replicated command as the decoder makes it: upper-case name, Buffer args, key indexes from the command table. */
function cmd(name: string, args: Array<string | Buffer>, fields: Partial<CommandOp> = {}): CommandOp {
  const bufs = args.map((a) => (Buffer.isBuffer(a) ? a : B(a)));
  return { kind: 'command', db: 0, name, args: bufs, keys: keysOf(name, bufs), shard: 'standalone', offset: (offset += 10), tx: 0, ...fields };
}

/** Keys in distinct slots, named by the slot they are in. */
const inSlot = (slot: number, name = 'k'): string => `${name}{${hashTagForSlot(slot)}}`;

const commands = (ops: Operation[]): CommandOp[] => ops.filter((o): o is CommandOp => o.kind === 'command');
const text = (op: CommandOp): string => [op.name, ...op.args.map((a) => a.toString())].join(' ');

describe('slot router: slots, hash tags, partitions', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  before(async () => {
    cluster = await startCluster({ masters: 3, replicas: 0 });
  });
  after(() => cluster.stop());

  it('computes the slot Redis computes, hash tags and binary keys included', async () => {
    const keys = [
      B('foo'),
      B('{user1000}.following'),
      B('{user1000}.followers'),
      B('foo{}{bar}'), // an empty tag does not count: the whole key is hashed
      B('foo{{bar}}zap'), // the tag is "{bar"
      B('foo{bar}{zap}'), // the first tag only
      B('{}'),
      B(''),
      Buffer.from([0xff, 0x00, 0x7b, 0xfe, 0x7d, 0x80]), // a tag of one non-UTF-8 byte
      Buffer.from([0x7b, 0x7d, 0x00, 0xc3]),
    ];
    for (let i = 0; i < 40; i++) keys.push(Buffer.from(Array.from({ length: 1 + ((i * 7) % 30) }, (_, j) => (i * 31 + j * 17) % 256)));
    for (const key of keys) assert.equal(slotOf(key), Number(await cluster.nodes[0].command('CLUSTER', 'KEYSLOT', key)), key.toString('hex'));
    assert.equal(slotOf(B('{user1000}.following')), slotOf(B('{user1000}.followers')));
  });

  it('has a short hash tag for every slot, the same on every call', async () => {
    for (let slot = 0; slot < 16384; slot++) {
      const tag = hashTagForSlot(slot);
      assert.ok(/^[0-9a-z]{1,4}$/.test(tag), `slot ${slot}: tag "${tag}"`);
      assert.equal(slotOf(B(`{${tag}}anything`)), slot);
    }
    for (const slot of [0, 1, 5460, 5461, 8191, 16383]) {
      assert.equal(Number(await cluster.nodes[0].command('CLUSTER', 'KEYSLOT', `{${hashTagForSlot(slot)}}x`)), slot);
    }
    // the first tags of the fixed order (the sink's checkpoint keys are named with them)
    assert.equal(hashTagForSlot(slotOf(B('0'))), '0');
    assert.throws(() => hashTagForSlot(16384), RangeError);
  });

  it('partitions slots in contiguous ranges, as redis-cli splits them among masters', async () => {
    for (let n = 1; n <= 16; n++) {
      let previous = 0;
      const seen = new Set<number>();
      for (let slot = 0; slot < 16384; slot++) {
        const p = partitionOf(slot, n);
        assert.ok(p === previous || p === previous + 1, `n=${n} slot ${slot}: ${previous} then ${p}`);
        assert.equal(partitionOf(slot, n), p, 'stable');
        previous = p;
        seen.add(p);
      }
      assert.equal(seen.size, n);
    }
    // the harness cluster was made by redis-cli: partition i of 3 is exactly master i's slots
    const ranges = ((await cluster.nodes[0].command('CLUSTER', 'SLOTS')) as Array<[number, number]>).map(([a, b]) => [a, b]).sort((x, y) => x[0] - y[0]);
    ranges.forEach(([a, b], i) => {
      assert.equal(partitionOf(a, 3), i);
      assert.equal(partitionOf(b, 3), i);
    });
    assert.throws(() => partitionOf(-2, 3), RangeError);
    assert.throws(() => partitionOf(5, 0), RangeError);
  });
});

describe('SlotRouter.route', () => {
  const a = inSlot(100, 'a');
  const b = inSlot(9000, 'b');
  const c = inSlot(100, 'c'); // a's slot
  const d = inSlot(15000, 'd');

  it('gives a key operation the slot of its key and leaves snapshot markers alone', () => {
    const key = { kind: 'key', key: B(a), db: 0, shard: 's', offset: 1 } as unknown as KeyOp;
    const begin: Operation = { kind: 'snapshot-begin', shard: 's', replid: 'r', offset: 1 };
    const out = new SlotRouter().route([begin, key]);
    assert.deepEqual(out, [begin, { ...key, slot: 100 }]);
  });

  it('gives a command the common slot of its keys, SLOT_NONE without keys, SLOT_CROSS when it cannot be split', () => {
    const router = new SlotRouter();
    const ops = [cmd('SET', [a, '1']), cmd('RENAME', [a, c]), cmd('FLUSHALL', []), cmd('PUBLISH', ['ch', 'm']), cmd('RENAME', [a, b]), cmd('SUNIONSTORE', [a, b, d])];
    const out = commands(router.route(ops));
    assert.deepEqual(out.map((o) => o.slot), [100, 100, SLOT_NONE, SLOT_NONE, SLOT_CROSS, SLOT_CROSS]);
    assert.deepEqual(router.stats, { ops: 6, split: 0, cross: 2 });
  });

  it('routes SORT … STORE by its sorted key and its STORE key, not by its BY and GET patterns', () => {
    const [op] = commands(new SlotRouter().route([cmd('SORT', [a, 'BY', 'nosort', 'LIMIT', '0', '5', 'GET', '#', 'STORE', b])]));
    assert.deepEqual(op.keys, [0, 9]);
    assert.equal(op.slot, SLOT_CROSS);
    const [same] = commands(new SlotRouter().route([cmd('SORT', [a, 'STORE', c])]));
    assert.equal(same.slot, 100);
    const [patterned] = commands(new SlotRouter().route([cmd('SORT', [a, 'BY', `${b}_*`, 'GET', `${d}_*`, 'STORE', c])]));
    assert.deepEqual([patterned.keys, patterned.slot], [[0, 6], 100]);
  });

  it('splits DEL, UNLINK and TOUCH per slot, in the order the slots first appear, keeping db, shard, offset and tx', () => {
    for (const name of ['DEL', 'UNLINK', 'TOUCH']) {
      const op = cmd(name, [b, a, d, c, b], { db: 3, shard: 'slots:0-5460', tx: 7 });
      const router = new SlotRouter();
      const out = commands(router.route([op]));
      assert.deepEqual(out.map(text), [`${name} ${b} ${b}`, `${name} ${a} ${c}`, `${name} ${d}`]);
      assert.deepEqual(out.map((o) => o.slot), [9000, 100, 15000]);
      for (const part of out) {
        assert.deepEqual([part.db, part.shard, part.offset, part.tx], [3, 'slots:0-5460', op.offset, 7]);
        assert.deepEqual(part.keys, part.args.map((_, i) => i));
      }
      assert.deepEqual(router.stats, { ops: 1, split: 1, cross: 0 });
    }
  });

  it('splits MSET by pairs, a key set twice keeping its order, and MSETNX into MSETs', () => {
    const out = commands(new SlotRouter().route([cmd('MSET', [a, '1', b, '2', c, '3', a, '4']), cmd('MSETNX', [d, 'x', a, 'y'])]));
    assert.deepEqual(out.map(text), [`MSET ${a} 1 ${c} 3 ${a} 4`, `MSET ${b} 2`, `MSET ${d} x`, `MSET ${a} y`]);
    assert.deepEqual(out.map((o) => o.keys), [[0, 2, 4], [0], [0], [0]]);
    const [same] = commands(new SlotRouter().route([cmd('MSETNX', [a, '1', c, '2'])]));
    assert.equal(same.name, 'MSETNX', 'kept when its keys share a slot');
  });

  it('splits MSETEX (Redis 8.4) with its expiry on every part and NX/XX dropped', () => {
    const op = { ...cmd('MSETEX', ['3', a, '1', b, '2', c, '3', 'NX', 'PXAT', '99999999999999']), keys: [1, 3, 5] };
    const out = commands(new SlotRouter().route([op]));
    assert.deepEqual(out.map(text), [`MSETEX 2 ${a} 1 ${c} 3 PXAT 99999999999999`, `MSETEX 1 ${b} 2 PXAT 99999999999999`]);
    assert.deepEqual(out.map((o) => o.keys), [[1, 3], [1]]);
  });

  it('removes MULTI and EXEC, keeps the tx of the members, and drops a discarded transaction', () => {
    const ops = [
      cmd('MULTI', [], { tx: 1 }),
      cmd('SET', [a, '1'], { tx: 1 }),
      cmd('DEL', [a, b], { tx: 1 }),
      cmd('EXEC', [], { tx: 1 }),
      cmd('MULTI', [], { tx: 2 }),
      cmd('SET', [b, '1'], { tx: 2 }),
      cmd('DISCARD', [], { tx: 2 }),
      cmd('SET', [d, '1']),
    ];
    const out = commands(new SlotRouter().route(ops));
    assert.deepEqual(out.map(text), [`SET ${a} 1`, `DEL ${a}`, `DEL ${b}`, `SET ${d} 1`]);
    assert.deepEqual(out.map((o) => o.tx), [1, 1, 1, 0]);
  });

  it('names a key index that is not an argument', () => {
    assert.throws(() => new SlotRouter().route([{ ...cmd('SET', [a, '1']), keys: [5] }]), /SET at offset \d+: keys\[0\] = 5 is not an argument index/);
  });
});

/** What a sink does with routed operations, reduced to what this test needs. */
async function applyRouted(ops: Operation[], cluster: RedisCluster, client: Cluster): Promise<void> {
  const exec = new IoredisClusterExecutor(client);
  for (let i = 0; i < ops.length; ) {
    const op = ops[i];
    if (op.kind === 'key') {
      const payload = buildDumpPayload(op.rdbType, op.raw as Buffer, op.rdbVersion);
      await client.callBuffer('RESTORE', op.key, op.expireMs ?? 0, payload, 'REPLACE', ...(op.expireMs === null ? [] : ['ABSTTL']));
      i++;
    } else if (op.kind !== 'command') {
      i++;
    } else if (op.slot === SLOT_CROSS) {
      await applyCrossSlot(op, exec);
      i++;
    } else if (op.slot === SLOT_NONE) {
      if (op.name === 'FLUSHALL') for (const m of await cluster.masters()) await m.command('FLUSHALL');
      else await client.callBuffer(op.name, ...op.args);
      i++;
    } else if (op.tx !== 0) {
      // the members of one transaction that share a slot run as one MULTI/EXEC
      const bySlot = new Map<number, Array<Array<string | Buffer>>>();
      for (; i < ops.length; i++) {
        const m = ops[i];
        if (m.kind !== 'command' || m.tx !== op.tx || (m.slot ?? -1) < 0) break;
        bySlot.set(m.slot as number, [...(bySlot.get(m.slot as number) ?? []), [m.name, ...m.args]]);
      }
      for (const [slot, group] of bySlot) await exec.multi(slot, group);
    } else {
      await exec.call(op.slot as number, [op.name, ...op.args]);
      i++;
    }
  }
}

describe('routed replication stream of a standalone source applied to a 3-master cluster', function () {
  this.timeout(120_000);
  let source: RedisServer;
  let cluster: RedisCluster;
  let src: Redis;
  let dst: Cluster;
  let dir: string;

  before(async () => {
    [source, cluster] = await Promise.all([startRedis(), startCluster({ masters: 3, replicas: 0 })]);
    src = source.client();
    dst = cluster.client();
    dir = mkdtempSync(join(tmpdir(), 'slot-router-'));
  });
  after(async () => {
    await cluster.stop();
    await source.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ends with the keyspace of the source: every key, type, value and TTL', async () => {
    await fillAllTypes(src, 'snap:', 6);
    const ops: Operation[] = [];
    const replica = new ReplicaSource({
      endpoint: { mode: 'standalone', host: source.host, port: source.port },
      dir,
      batchLatencyMs: 5,
      onBatch: async (batch) => {
        ops.push(...batch);
      },
    });
    await replica.start();
    try {
      // the writes below are to arrive as the stream, not in the snapshot (a stock master holds the sync back 5 s)
      await until(() => ops.some((o) => o.kind === 'snapshot-end'), 'the snapshot', 30_000);
      const far = Date.now() + 3_600_000;
      const k = (i: number, name = 'k'): string => `${name}:${i}`; // plain names: slots all over
      const bin = (i: number): Buffer => Buffer.from([0xff, 0x00, i, 0x7b, 0x80 + i, 0x7d]);
      for (let r = 0; r < 3; r++) {
        await src.mset(k(1), `a${r}`, k(2), `b${r}`, k(3), `c${r}`, k(1), `again${r}`, bin(r), 'binary');
        await src.call('MSETNX', k(10 + r), 'x', k(20 + r), 'y', k(30 + r), 'z'); // sets all
        await src.call('MSETNX', k(10 + r), 'no', k(99), 'no'); // sets nothing, is not replicated
        await src.set(k(40 + r), 'ttl', 'PXAT', far + r);
        await src.rpush(k(50 + r, 'list'), 'p', 'q');
        await src.del(k(2), k(10 + r), 'nothing', k(50 + r, 'list'));
        await src.unlink(k(3), k(20 + r), bin(r));
        await src.multi().set(k(60), `t${r}`).del(k(1), k(30 + r)).incr(k(61)).exec();
        // a script: Redis 7 replicates its effects, wrapped in MULTI/EXEC
        await src.eval("redis.call('mset', KEYS[1], ARGV[1], KEYS[2], ARGV[1]); return redis.call('del', KEYS[3], KEYS[2])", 3, k(70), k(71), k(40 + r), `s${r}`);
        await src.sadd(k(80, 'set'), `m${r}`, `n${r}`);
        await src.sunionstore(k(81, 'set'), k(80, 'set'), 'snap:{t1}set');
        await src.rename(k(60), k(62 + r));
        await src.smove(k(80, 'set'), k(82, 'set'), `m${r}`);
        await src.publish('channel', `message ${r}`);
        // some writes inside one hash tag, to keep single-slot transactions whole
        await src.multi().incr('{acct}:balance').rpush('{acct}:log', `r${r}`).exec();
      }
      await src.set('{acct}:ttl', 'v', 'PX', 600_000);
      const target = Number(/master_repl_offset:(\d+)/.exec(await src.info('replication'))?.[1]);
      const deadline = Date.now() + 10_000;
      while ((replica.progress.shards[0]?.offset ?? 0) < target) {
        if (Date.now() > deadline) throw new Error('the stream did not reach the source offset');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await replica.stop();
    }

    const router = new SlotRouter();
    const routed = router.route(ops);
    const routedCommands = commands(routed);
    assert.ok(!routedCommands.some((o) => o.name === 'MULTI' || o.name === 'EXEC'), 'transaction markers removed');
    for (const op of routedCommands) {
      assert.notEqual(op.slot, undefined);
      if ((op.slot as number) >= 0) for (const i of op.keys) assert.equal(slotOf(op.args[i]), op.slot, `${text(op)}: keys in its slot`);
    }
    assert.ok(router.stats.split >= 12, `${router.stats.split} commands split`);
    assert.deepEqual([...new Set(routedCommands.filter((o) => o.slot === SLOT_CROSS).map((o) => o.name))].sort(), ['RENAME', 'SMOVE', 'SUNIONSTORE']);
    // the parts of a split command keep its offset, and their order within a partition is the stream's order
    const original = commands(ops).filter((o) => o.name !== 'MULTI' && o.name !== 'EXEC');
    assert.deepEqual([...new Set(routedCommands.map((o) => o.offset))], [...new Set(original.map((o) => o.offset))]);
    for (let n = 2; n <= 5; n++) {
      const byPartition = new Map<number, number[]>();
      for (const op of routed) {
        if ((op.kind === 'command' || op.kind === 'key') && (op.slot as number) >= 0) {
          const p = partitionOf(op.slot as number, n);
          byPartition.set(p, [...(byPartition.get(p) ?? []), op.offset]);
        }
      }
      for (const offsets of byPartition.values()) assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y));
    }

    await applyRouted(routed, cluster, dst);
    const expected = await keyspaceOf(source);
    assert.ok(Object.keys(expected[0]).length > 60, `${Object.keys(expected[0]).length} keys to compare`);
    assertSameKeyspace(await keyspaceOf(cluster), expected, 100);
  });
});
