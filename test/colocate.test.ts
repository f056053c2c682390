import assert from 'node:assert/strict';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { applyCrossSlot, CrossSlotError, type Arg, type ClusterExecutor, type StepLog } from '../lib/cluster/colocate';
import { IoredisClusterExecutor } from './support/cluster-executor';
import { SlotRouter } from '../lib/cluster/router';
import { hashTagForSlot, slotOf } from '../lib/cluster/slots';
import { keysOf } from '../lib/ops/commands';
import { SLOT_CROSS, type CommandOp } from '../lib/ops/operation';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import { assertSameKeyspace, keyspaceOf } from './support/compare';

/**
 * Every cross-slot command the sink emulates, run on a standalone server (the reference) and
 * through applyCrossSlot on a 3-master cluster holding the same data; the keyspaces must then
 * be equal (temporary keys included: none may be left). Keys are placed by hash tag: A and
 * A2 on the first master, B on the second, C on the third.
 */
const A = 1000;
const A2 = 1001;
const B = 7000;
const C = 13000;

/** A key named `name` in `slot`. */
const k = (name: string, slot: number): Buffer => Buffer.from(`${name}{${hashTagForSlot(slot)}}`);
/** A key whose name is not UTF-8, in `slot`. */
const bin = (slot: number): Buffer => Buffer.concat([Buffer.from([0xff, 0x00, 0xfe]), k('', slot)]);

interface Case {
  title: string;
  setup: Arg[][];
  command: Arg[];
}

const cases: Case[] = [
  {
    title: 'RENAME onto an existing key, with the source TTL taking over',
    setup: [['SET', k('a', A), 'va'], ['PEXPIRE', k('a', A), 60_000], ['SET', k('b', B), 'vb'], ['PEXPIRE', k('b', B), 999_000]],
    command: ['RENAME', k('a', A), k('b', B)],
  },
  {
    title: 'RENAME of a hash without TTL onto a missing key over a TTL-carrying one (same node, other slot)',
    setup: [['HSET', k('a', A), 'f', '1', 'g', '2'], ['SET', k('b', A2), 'old'], ['PEXPIRE', k('b', A2), 50_000]],
    command: ['RENAME', k('a', A), k('b', A2)],
  },
  { title: 'RENAME with binary key names', setup: [['RPUSH', bin(C), 'x', 'y']], command: ['RENAME', bin(C), bin(A)] },
  { title: 'RENAMENX onto a missing key', setup: [['ZADD', k('a', A), 1, 'm', 2, 'n']], command: ['RENAMENX', k('a', A), k('b', B)] },
  {
    title: 'SMOVE into a set with a TTL',
    setup: [['SADD', k('s1', A), 'm', 'n'], ['SADD', k('s2', B), 'o'], ['PEXPIRE', k('s2', B), 40_000]],
    command: ['SMOVE', k('s1', A), k('s2', B), 'm'],
  },
  { title: 'SMOVE of the last member into a missing set', setup: [['SADD', k('s1', A), 'm']], command: ['SMOVE', k('s1', A), k('s2', C), 'm'] },
  { title: 'SMOVE of a member already in the destination', setup: [['SADD', k('s1', B), 'm', 'x'], ['SADD', k('s2', C), 'm']], command: ['SMOVE', k('s1', B), k('s2', C), 'm'] },
  {
    title: 'LMOVE LEFT RIGHT',
    setup: [['RPUSH', k('l1', A), 'a', 'b', 'c'], ['RPUSH', k('l2', B), 'x'], ['PEXPIRE', k('l2', B), 30_000]],
    command: ['LMOVE', k('l1', A), k('l2', B), 'LEFT', 'RIGHT'],
  },
  { title: 'LMOVE right left into a missing list', setup: [['RPUSH', k('l1', A), 'a', 'b']], command: ['LMOVE', k('l1', A), k('l2', C), 'right', 'left'] },
  {
    title: 'LMOVE of the last element (source deleted, its TTL with it)',
    setup: [['RPUSH', k('l1', C), 'only'], ['PEXPIRE', k('l1', C), 20_000], ['RPUSH', k('l2', A), 'z']],
    command: ['LMOVE', k('l1', C), k('l2', A), 'RIGHT', 'RIGHT'],
  },
  { title: 'LMOVE from a missing list', setup: [['RPUSH', k('l2', B), 'z']], command: ['LMOVE', k('l1', A), k('l2', B), 'LEFT', 'LEFT'] },
  { title: 'RPOPLPUSH', setup: [['RPUSH', k('l1', A), 'a', 'b'], ['RPUSH', k('l2', B), 'x']], command: ['RPOPLPUSH', k('l1', A), k('l2', B)] },
  { title: 'BLMOVE', setup: [['RPUSH', k('l1', A), 'a', 'b']], command: ['BLMOVE', k('l1', A), k('l2', B), 'LEFT', 'LEFT', 0] },
  { title: 'BRPOPLPUSH', setup: [['RPUSH', k('l1', B), 'a', 'b'], ['RPUSH', k('l2', A2), 'x']], command: ['BRPOPLPUSH', k('l1', B), k('l2', A2), 0] },
  {
    title: 'COPY of a key with a TTL to a missing key',
    setup: [['HSET', k('src', A), 'f', 'v'], ['PEXPIRE', k('src', A), 70_000]],
    command: ['COPY', k('src', A), k('dst', B)],
  },
  {
    title: 'COPY REPLACE onto an existing key',
    setup: [['SADD', k('src', B), 'a', 'b'], ['SET', k('dst', C), 'old'], ['PEXPIRE', k('dst', C), 10_000]],
    command: ['COPY', k('src', B), k('dst', C), 'REPLACE'],
  },
  { title: 'COPY onto an existing key without REPLACE (nothing changes)', setup: [['SET', k('src', A), 'new'], ['SET', k('dst', B), 'old']], command: ['COPY', k('src', A), k('dst', B)] },
  {
    title: 'SUNIONSTORE with a missing source',
    setup: [['SADD', k('s1', B), 'a', 'b'], ['SADD', k('s2', C), 'b', 'c'], ['SET', k('d', A), 'was a string'], ['PEXPIRE', k('d', A), 90_000]],
    command: ['SUNIONSTORE', k('d', A), k('s1', B), k('s2', C), k('none', A2)],
  },
  { title: 'SINTERSTORE', setup: [['SADD', k('s1', B), 'a', 'b', 'c'], ['SADD', k('s2', C), 'b', 'c', 'd'], ['SADD', k('s3', A), 'c', 'b']], command: ['SINTERSTORE', k('d', A), k('s1', B), k('s2', C), k('s3', A)] },
  {
    title: 'SDIFFSTORE whose destination is also a source',
    setup: [['SADD', k('d', A), 'a', 'b', 'c'], ['PEXPIRE', k('d', A), 80_000], ['SADD', k('s', B), 'b']],
    command: ['SDIFFSTORE', k('d', A), k('d', A), k('s', B)],
  },
  {
    title: 'ZUNIONSTORE with WEIGHTS and AGGREGATE, a source repeated',
    setup: [['ZADD', k('z1', B), 1, 'a', 2, 'b'], ['ZADD', k('z2', C), 5, 'b', 1, 'c']],
    command: ['ZUNIONSTORE', k('d', A), 3, k('z1', B), k('z2', C), k('z1', B), 'WEIGHTS', 1, 2, 3, 'AGGREGATE', 'MAX'],
  },
  { title: 'ZINTERSTORE', setup: [['ZADD', k('z1', B), 1, 'a', 2, 'b'], ['ZADD', k('z2', C), 5, 'b', 1, 'c']], command: ['ZINTERSTORE', k('d', A), 2, k('z1', B), k('z2', C)] },
  { title: 'ZDIFFSTORE', setup: [['ZADD', k('z1', B), 1, 'a', 2, 'b'], ['ZADD', k('z2', C), 5, 'b']], command: ['ZDIFFSTORE', k('d', A), 2, k('z1', B), k('z2', C)] },
  { title: 'ZRANGESTORE', setup: [['ZADD', k('z', C), 1, 'a', 2, 'b', 3, 'c']], command: ['ZRANGESTORE', k('d', A), k('z', C), 1, -1] },
  {
    title: 'GEOSEARCHSTORE … STOREDIST',
    setup: [['GEOADD', k('g', B), 13.361389, 38.115556, 'Palermo', 15.087269, 37.502669, 'Catania']],
    command: ['GEOSEARCHSTORE', k('d', A), k('g', B), 'FROMLONLAT', 15, 37, 'BYRADIUS', 200, 'km', 'ASC', 'STOREDIST'],
  },
  {
    title: 'GEORADIUS … STORE',
    setup: [['GEOADD', k('g', B), 13.361389, 38.115556, 'Palermo', 15.087269, 37.502669, 'Catania']],
    command: ['GEORADIUS', k('g', B), 15, 37, 200, 'km', 'STORE', k('d', C)],
  },
  {
    title: 'GEORADIUSBYMEMBER … STOREDIST',
    setup: [['GEOADD', k('g', C), 13.361389, 38.115556, 'Palermo', 15.087269, 37.502669, 'Catania']],
    command: ['GEORADIUSBYMEMBER', k('g', C), 'Palermo', 200, 'km', 'STOREDIST', k('d', A)],
  },
  { title: 'BITOP AND', setup: [['SET', k('a', B), 'abc'], ['SET', k('b', C), 'a c']], command: ['BITOP', 'AND', k('d', A), k('a', B), k('b', C)] },
  { title: 'BITOP OR with a missing source', setup: [['SET', k('a', B), 'abc']], command: ['BITOP', 'OR', k('d', A), k('a', B), k('none', C)] },
  { title: 'BITOP NOT', setup: [['SET', k('a', B), Buffer.from([0x0f, 0xf0])]], command: ['BITOP', 'NOT', k('d', A), k('a', B)] },
  {
    title: 'PFMERGE into an existing HyperLogLog with a TTL',
    setup: [['PFADD', k('d', A), 'x'], ['PEXPIRE', k('d', A), 60_000], ['PFADD', k('h1', B), 'a', 'b'], ['PFADD', k('h2', C), 'b', 'c']],
    command: ['PFMERGE', k('d', A), k('h1', B), k('h2', C)],
  },
  { title: 'SORT … ALPHA LIMIT … STORE', setup: [['RPUSH', k('l', B), 'c', 'a', 'b', 'd']], command: ['SORT', k('l', B), 'ALPHA', 'LIMIT', 0, 3, 'DESC', 'STORE', k('d', A)] },
  { title: 'SORT BY nosort GET # STORE', setup: [['SADD', k('s', C), 3, 1, 2]], command: ['SORT', k('s', C), 'BY', 'nosort', 'GET', '#', 'STORE', k('d', B)] },
  {
    title: 'LMPOP from the first non-empty list',
    setup: [['RPUSH', k('l1', B), 'a', 'b', 'c'], ['RPUSH', k('l2', C), 'x']],
    command: ['LMPOP', 3, k('none', A), k('l1', B), k('l2', C), 'RIGHT', 'COUNT', 2],
  },
  { title: 'BLMPOP', setup: [['RPUSH', k('l2', C), 'x', 'y']], command: ['BLMPOP', 0, 2, k('l1', B), k('l2', C), 'LEFT'] },
  { title: 'ZMPOP', setup: [['ZADD', k('z1', A), 1, 'a', 2, 'b', 3, 'c'], ['ZADD', k('z2', B), 1, 'x']], command: ['ZMPOP', 2, k('z1', A), k('z2', B), 'MIN', 'COUNT', 2] },
  { title: 'BZMPOP', setup: [['ZADD', k('z2', B), 1, 'x', 2, 'y']], command: ['BZMPOP', 0, 2, k('z1', A), k('z2', B), 'MAX'] },
  { title: 'BLPOP', setup: [['RPUSH', k('l2', C), 'x', 'y']], command: ['BLPOP', k('l1', A), k('l2', C), 0] },
  { title: 'BRPOP', setup: [['RPUSH', k('l1', A), 'x', 'y'], ['RPUSH', k('l2', C), 'z']], command: ['BRPOP', k('l1', A), k('l2', C), 0] },
  { title: 'BZPOPMIN', setup: [['ZADD', k('z2', C), 1, 'x', 2, 'y']], command: ['BZPOPMIN', k('z1', B), k('z2', C), 0] },
  { title: 'BZPOPMAX', setup: [['ZADD', k('z1', B), 1, 'x', 2, 'y']], command: ['BZPOPMAX', k('z1', B), k('z2', C), 0] },
];

const bytes = (a: Arg): Buffer => (Buffer.isBuffer(a) ? a : Buffer.from(String(a)));

let offset = 1000;

/** The operation the replication stream would carry for `command`, routed. */
function opFor(command: Arg[]): CommandOp {
  const name = String(command[0]).toUpperCase();
  const args = command.slice(1).map(bytes);
  const op: CommandOp = { kind: 'command', db: 0, name, args, keys: keysOf(name, args), shard: 'standalone', offset: offset++, tx: 0 };
  new SlotRouter().route([op]);
  return op;
}

/** A per-slot checkpoint, as the sink keeps one: the offset of the last operation applied in the slot. */
function checkpointLog(op: CommandOp, exec: ClusterExecutor): StepLog {
  const key = (slot: number): string => `redis-sync:test-ckpt:{${hashTagForSlot(slot)}}`;
  return {
    record: (slot) => [['SET', key(slot), op.offset]],
    recorded: async (slot) => Number(await exec.call(slot, ['GET', key(slot)])) >= op.offset,
  };
}

/** An executor that dies right after its `after`-th write (a MULTI other than DUMP/PTTL): a crash between steps. */
function crashingAfter(exec: ClusterExecutor, after: number): ClusterExecutor & { writes: number } {
  const wrapper = {
    writes: 0,
    call: (slot: number, args: Arg[]) => exec.call(slot, args),
    async multi(slot: number, commands: Arg[][]): Promise<unknown[]> {
      const replies = await exec.multi(slot, commands);
      if (commands[0][0] !== 'DUMP' && ++wrapper.writes === after) throw new Error('crash');
      return replies;
    },
  };
  return wrapper;
}

describe('applyCrossSlot: cross-slot commands on a cluster give what a standalone server gives', function () {
  this.timeout(300_000);
  let standalone: RedisServer;
  let ref: Redis;
  let cluster: RedisCluster;
  let client: Cluster;
  let exec: IoredisClusterExecutor;

  before(async () => {
    [standalone, cluster] = await Promise.all([startRedis(), startCluster({ masters: 3, replicas: 0 })]);
    ref = standalone.client();
    client = cluster.client();
    exec = new IoredisClusterExecutor(client);
    // the layout the key choice relies on
    const ports = await Promise.all([A, A2, B, C].map(async (s) => (await cluster.masterForSlot(s))?.port));
    assert.equal(ports[0], ports[1]);
    assert.equal(new Set(ports).size, 3);
  });
  after(async () => {
    await cluster.stop();
    await standalone.stop();
  });

  async function prepare(setup: Arg[][]): Promise<void> {
    await ref.flushall();
    await Promise.all((await cluster.masters()).map((m) => m.command('FLUSHALL')));
    for (const [name, ...args] of setup) {
      await ref.callBuffer(String(name), ...args);
      await client.callBuffer(String(name), ...args);
    }
  }

  async function assertSame(title: string): Promise<void> {
    try {
      assertSameKeyspace(await keyspaceOf(cluster), await keyspaceOf(standalone), 100);
    } catch (err) {
      (err as Error).message = `${title}: ${(err as Error).message}`;
      throw err;
    }
  }

  for (const c of cases) {
    it(c.title, async () => {
      await prepare(c.setup);
      const op = opFor(c.command);
      assert.equal(op.slot, SLOT_CROSS, 'the keys span slots');
      await ref.callBuffer(String(c.command[0]), ...c.command.slice(1));
      await applyCrossSlot(op, exec);
      await assertSame(c.title);
    });
  }

  it('completes every command exactly after a crash between any two of its writes, with a per-slot checkpoint log', async () => {
    let crashes = 0;
    for (const c of cases) {
      const op = opFor(c.command);
      // how many writes the command makes
      await prepare(c.setup);
      const counter = crashingAfter(exec, Infinity);
      await applyCrossSlot(op, counter, checkpointLog(op, exec));
      for (let after = 1; after <= counter.writes; after++) {
        await prepare(c.setup);
        await ref.callBuffer(String(c.command[0]), ...c.command.slice(1));
        await assert.rejects(applyCrossSlot(op, crashingAfter(exec, after), checkpointLog(op, exec)), /crash/);
        await applyCrossSlot(op, exec, checkpointLog(op, exec));
        await assertSame(`${c.title}, crash after write ${after} of ${counter.writes}`);
        crashes++;
      }
    }
    // two writes each for RENAME, SMOVE and LMOVE and their kin, one for the rest
    assert.ok(crashes > cases.length + 10, `${crashes} crash points`);
  });

  it('without a log, a re-run after a crash is still exact for RENAME, SMOVE and the co-located commands', async () => {
    for (const c of cases.filter((x) => /^(RENAME|SMOVE|COPY|SUNIONSTORE|ZUNIONSTORE|PFMERGE|SORT)/.test(String(x.command[0])))) {
      const op = opFor(c.command);
      for (let after = 1; after <= 2; after++) {
        await prepare(c.setup);
        await ref.callBuffer(String(c.command[0]), ...c.command.slice(1));
        const crashing = crashingAfter(exec, after);
        await applyCrossSlot(op, crashing).then(
          () => assert.ok(crashing.writes < after, 'finished before the crash point'),
          (err: Error) => assert.match(err.message, /crash/),
        );
        await applyCrossSlot(op, exec);
        await assertSame(`${c.title}, re-run after write ${after}`);
      }
    }
  });

  it('runs a command whose keys share a slot as it is, with the log record', async () => {
    await prepare([['SET', k('a', B), '1']]);
    const op = opFor(['RENAME', k('a', B), k('b', B)]);
    await ref.rename(k('a', B), k('b', B));
    await applyCrossSlot(op, exec, checkpointLog(op, exec));
    await assertSame('RENAME in one slot');
    assert.equal(Number(await client.get(`redis-sync:test-ckpt:{${hashTagForSlot(B)}}`)), op.offset);
  });

  describe('commands that cannot be carried out fail with a CrossSlotError naming them, before any write', () => {
    const refused: Array<[string, Arg[], 'script' | 'unsupported', RegExp]> = [
      ['EVAL', ['EVAL', "redis.call('set', KEYS[1], 1) return redis.call('set', KEYS[2], 2)", 2, k('a', A), k('b', B)], 'script', /^EVAL at offset \d+ of standalone \(keys a\{\w+\}, b\{\w+\}\): its keys are in different hash slots of the destination cluster, and a script/],
      ['EVALSHA', ['EVALSHA', 'a'.repeat(40), 2, k('a', A), k('b', B)], 'script', /EVALSHA/],
      ['FCALL', ['FCALL', 'myfunc', 2, k('a', A), k('b', B)], 'script', /FCALL/],
      ['SORT with a BY pattern', ['SORT', k('l', B), 'BY', 'w_*', 'STORE', k('d', A)], 'unsupported', /SORT .*BY\/GET patterns/],
      ['SORT with several GET options', ['SORT', k('l', B), 'GET', '#', 'GET', '#', 'STORE', k('d', A)], 'unsupported', /SORT .*refuses its GET options/],
      ['COPY … DB', ['COPY', k('src', A), k('dst', B), 'DB', 0], 'unsupported', /COPY … DB/],
    ];
    for (const [title, command, reason, message] of refused) {
      it(title, async () => {
        await prepare([['SET', k('a', A), 'x'], ['RPUSH', k('l', B), 1, 2], ['SET', k('src', A), 'y']]);
        const before = await keyspaceOf(cluster);
        const op = opFor(command);
        const err = await applyCrossSlot(op, exec).then(
          () => assert.fail('no error'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof CrossSlotError);
        assert.equal(err.reason, reason);
        assert.equal(err.command, op.name);
        assert.equal(err.offset, op.offset);
        assert.deepEqual(err.keys, op.keys.map((i) => op.args[i]));
        assert.match(err.message, message);
        assertSameKeyspace(await keyspaceOf(cluster), before, 100);
      });
    }
  });

  it('the temporary keys land in the slot of the result key', () => {
    const op = opFor(['SUNIONSTORE', k('d', A), k('s', B)]);
    // the name is part of the contract with the sink (keys `{tag}redis-sync:tmp:…` are ours)
    assert.equal(slotOf(Buffer.from(`{${hashTagForSlot(A)}}redis-sync:tmp:${op.shard}:${op.offset}:0`)), A);
  });
});
