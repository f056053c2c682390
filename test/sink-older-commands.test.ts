/**
 * The command forms a newer master replicates that an older destination refuses as they
 * came (see lib/sink/destination-forms.ts), through the engine (replica source -> destination
 * writer) from real 6.2, 7.0 and 7.4 sources into real 5.0 and 6.2 destinations: every key,
 * value and TTL arrives as the source has it, the TTLs to the millisecond.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import type { EndpointConfig } from '../lib/endpoint';
import type { CommandOp, Operation } from '../lib/ops/operation';
import { ReplicaSource } from '../lib/replication/source';
import { DestinationWriter } from '../lib/sink/writer';
import type { RedisCluster, RedisServer } from './harness';
import { converge, keyspaceOf } from './support/compare';
import { TestServers } from './support/servers';
import { redisBuild, requireBuilds, type VersionName } from './support/versions';
import { until } from './support/wait';

/** Replica source -> destination writer, until the snapshot is applied; a failure of the writer is kept, not thrown. */
async function sync(src: RedisServer, dst: RedisServer | RedisCluster): Promise<{ writer: DestinationWriter; failure: () => Error | null; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'older-commands-'));
  const endpoint: EndpointConfig = 'seeds' in dst ? { mode: 'cluster', seeds: dst.seeds } : { mode: 'standalone', host: dst.host, port: dst.port };
  const writer = new DestinationWriter({ endpoint });
  await writer.connect();
  let failure: Error | null = null;
  let snapshot = false;
  const source = new ReplicaSource({
    endpoint: { mode: 'standalone', host: src.host, port: src.port },
    dir,
    onBatch: async (ops: Operation[]) => {
      try {
        await writer.apply(ops, { source: 'older-commands' });
      } catch (err) {
        failure ??= err as Error;
        throw err;
      }
      if (ops.some((o) => o.kind === 'snapshot-end')) snapshot = true;
    },
  });
  await source.start();
  await until(() => snapshot || failure !== null, 'the snapshot applied');
  return {
    writer,
    failure: () => failure,
    stop: async () => {
      await source.stop();
      writer.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A key's expiry time exact to the millisecond on any version: PTTL read between two TIMEs of
 * the same millisecond (null without a TTL).
 */
async function expiryOf(server: RedisServer, key: string): Promise<number | null> {
  const c = server.client();
  try {
    for (;;) {
      const [[, before], [, ttl], [, after]] = (await c.multi().time().pttl(key).time().exec()) as [[null, string[]], [null, number], [null, string[]]];
      const ms = (t: string[]): number => Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000);
      if (ms(before) === ms(after)) return ttl < 0 ? null : ms(before) + ttl;
    }
  } finally {
    c.disconnect();
  }
}

const HOUR = 3_600_000;

/**
 * On the source, every form its version replicates that a 5.0 or 6.2 destination refuses as
 * it came (what each becomes on the wire is in the file comment of destination-forms.ts).
 */
async function everyForm(c: Redis, [major]: [number, number]): Promise<void> {
  const at = Date.now() + HOUR;
  const v7 = major >= 7;
  // the flushes' and SCRIPT FLUSH's modes (6.2), in a db of their own
  await c.select(3);
  await c.set('flush:me', '1');
  await c.call('FLUSHDB', 'SYNC');
  await c.set('flush:after', '1');
  await c.select(0);
  await c.call('SCRIPT', 'FLUSH', 'ASYNC');
  // SET: SETEX, PSETEX, EX (PXAT from 7.0, PX in 6.2), EXAT (PXAT), PXAT with NX and GET (as it came from 7.2)
  await c.setex('set:setex', 3600, 'a');
  await c.psetex('set:psetex', HOUR, 'b');
  await c.set('set:ex', 'c', 'EX', 3600);
  await c.call('SET', 'set:exat', 'd', 'EXAT', Math.floor(at / 1000));
  await c.call('SET', 'set:pxat', 'e', v7 ? 'NX' : 'XX', 'PXAT', at, 'GET');
  await c.call('SET', 'set:pxat', 'e2', 'XX', 'PXAT', at + 1, 'GET');
  await c.set('set:get', 'f');
  await c.call('SET', 'set:get', 'f2', 'GET');
  // KEEPTTL (6.0), and INCRBYFLOAT, which goes out as SET … KEEPTTL
  await c.set('set:keep', 'g', 'PX', HOUR + 7);
  await c.call('SET', 'set:keep', 'g2', 'KEEPTTL');
  await c.call('SET', 'set:keep', 'g3', 'XX', 'KEEPTTL');
  await c.call('SET', 'set:keep-none', 'h', 'KEEPTTL');
  await c.call('SET', 'set:keep-new', 'i', 'NX', 'KEEPTTL');
  await c.set('set:float', '1.5', 'PX', HOUR + 11);
  await c.incrbyfloat('set:float', 2.25);
  if (v7) {
    // EXPIRE's conditions (7.0), propagated as PEXPIREAT with them
    await c.set('exp:nx', '1');
    await c.call('EXPIRE', 'exp:nx', 3600, 'NX');
    await c.set('exp:gt', '1', 'EX', 100);
    await c.call('EXPIRE', 'exp:gt', 3600, 'GT');
    await c.set('exp:lt', '1', 'EX', 7200);
    await c.call('PEXPIRE', 'exp:lt', HOUR, 'LT');
    await c.set('exp:xx', '1', 'EX', 100);
    await c.call('EXPIREAT', 'exp:xx', Math.floor(at / 1000), 'XX');
  }
  // pops with a count (6.2), LMPOP and BLMPOP (7.0) go out as them
  await c.rpush('list:pop', ...'abcdefghijkl');
  await c.call('LPOP', 'list:pop', 3);
  await c.call('RPOP', 'list:pop', 2);
  await c.rpush('list:all', 'x', 'y');
  await c.call('RPOP', 'list:all', 10);
  if (v7) {
    await c.call('LMPOP', 2, 'list:none', 'list:pop', 'LEFT', 'COUNT', 2);
    await c.call('BLMPOP', 0, 1, 'list:pop', 'RIGHT', 'COUNT', 1);
  }
  // LMOVE in every direction, BLMOVE (goes out as LMOVE), a rotation
  await c.rpush('list:src', ...'123456789');
  for (const [from, to] of [['LEFT', 'RIGHT'], ['RIGHT', 'LEFT'], ['LEFT', 'LEFT'], ['RIGHT', 'RIGHT']]) await c.lmove('list:src', 'list:dst', from as 'LEFT', to as 'RIGHT');
  await c.blmove('list:src', 'list:dst', 'RIGHT', 'LEFT', 0);
  await c.lmove('list:src', 'list:src', 'LEFT', 'RIGHT');
  await c.rpush('list:last', 'only');
  await c.lmove('list:last', 'list:dst', 'LEFT', 'LEFT');
  // COPY: with the key's TTL, REPLACE (the TTL goes), to another db, a stream with its groups
  await c.set('copy:a', 'one', 'PX', HOUR + 13);
  await c.copy('copy:a', 'copy:a2');
  await c.set('copy:b', 'two');
  await c.set('copy:b2', 'old', 'PX', HOUR);
  await c.copy('copy:b', 'copy:b2', 'REPLACE');
  await c.hset('copy:h', 'f', '1', 'g', '2');
  await c.copy('copy:h', 'copy:h2');
  await c.copy('copy:h', 'copy:h3', 'DB', 3);
  await c.xadd('copy:x', '1-1', 'f', 'v');
  await c.xgroup('CREATE', 'copy:x', 'g', '0');
  await c.copy('copy:x', 'copy:x2');
  // ZRANGESTORE by rank, score and lex, reversed and limited, and one that empties its key
  await c.zadd('z:src', 1, 'a', 2, 'b', 3, 'c', 4.5, 'd', 5, 'e');
  await c.zadd('z:lex', 0, 'a', 0, 'b', 0, 'c', 0, 'd');
  await c.zrangestore('z:rank', 'z:src', 1, 3);
  await c.zrangestore('z:rev', 'z:src', '(5', 1, 'BYSCORE', 'REV', 'LIMIT', 0, 2);
  await c.zrangestore('z:bylex', 'z:lex', '[b', '+', 'BYLEX');
  await c.zrangestore('z:bylexrev', 'z:lex', '+', '(a', 'BYLEX', 'REV', 'LIMIT', 1, 2);
  await c.zrangestore('z:gone', 'z:src', 0, 0);
  await c.zrangestore('z:gone', 'z:src', 10, 20);
  // ZDIFFSTORE of sorted sets and sets (score 1)
  await c.sadd('z:set', 'b', 'x');
  await c.zadd('z:other', 9, 'd');
  await c.zdiffstore('z:diff', 3, 'z:src', 'z:set', 'z:other');
  await c.zdiffstore('z:fromset', 2, 'z:set', 'z:src');
  // ZADD GT and LT (6.2), with XX, CH and INCR
  await c.zadd('z:gt', 5, 'a', 5, 'b');
  await c.zadd('z:gt', 'GT', 6, 'a', 4, 'b', 1, 'c');
  await c.zadd('z:gt', 'LT', 3, 'a');
  await c.zadd('z:gt', 'XX', 'GT', 'CH', 10, 'b', 10, 'nope');
  await c.zadd('z:gt', 'GT', 'INCR', 2.5, 'a');
  // GEO stores: units in capitals (7.0), GEOSEARCHSTORE by radius (6.2), a missing source key (deletes the stored one from 6.2)
  await c.geoadd('geo:src', 13.361389, 38.115556, 'Palermo', 15.087269, 37.502669, 'Catania');
  await c.call('GEORADIUS', 'geo:src', 15, 37, 200, v7 ? 'KM' : 'km', 'STORE', 'geo:radius');
  await c.call('GEORADIUSBYMEMBER', 'geo:src', 'Palermo', 100, 'km', 'ASC', 'COUNT', 1, 'STORE', 'geo:member');
  await c.call('GEOSEARCHSTORE', 'geo:search', 'geo:src', 'FROMLONLAT', 15, 37, 'BYRADIUS', 200, 'km', 'ASC', 'COUNT', 1);
  await c.call('GEOSEARCHSTORE', 'geo:search2', 'geo:src', 'FROMMEMBER', 'Palermo', 'BYRADIUS', 300, v7 ? 'KM' : 'km');
  await c.zadd('geo:stale', 1, 'x');
  await c.call('GEORADIUS', 'geo:none', 15, 37, 200, 'km', 'STORE', 'geo:stale');
  await c.zadd('geo:stale2', 1, 'x');
  await c.call('GEORADIUSBYMEMBER', 'geo:none', 'Palermo', 200, v7 ? 'KM' : 'km', 'STORE', 'geo:stale2');
  // streams: LIMIT (kept with =), NOMKSTREAM, MINID, consumer groups and their counters
  for (let i = 1; i <= 250; i++) await c.xadd('x:s', `${i}-0`, 'n', String(i));
  await c.call('XADD', 'x:s', 'NOMKSTREAM', 'MAXLEN', '~', 100, 'LIMIT', 200, '251-0', 'n', '251');
  await c.call('XADD', 'x:s', 'MINID', '=', '200-0', '252-0', 'n', '252');
  await c.call('XTRIM', 'x:s', 'MINID', 230);
  await c.call('XTRIM', 'x:s', 'MAXLEN', 20);
  await c.call('XGROUP', 'CREATE', 'x:s', 'g', '0', ...(v7 ? ['ENTRIESREAD', 0] : []));
  await c.xreadgroup('GROUP', 'g', 'alice', 'COUNT', 2, 'STREAMS', 'x:s', '>');
  await c.xreadgroup('GROUP', 'g', 'bob', 'COUNT', 2, 'NOACK', 'STREAMS', 'x:s', '>');
  await c.call('XGROUP', 'CREATECONSUMER', 'x:s', 'g', 'carol');
  await c.call('XAUTOCLAIM', 'x:s', 'g', 'dave', 0, '0');
  await c.call('XGROUP', 'SETID', 'x:s', 'g', '240-0', ...(v7 ? ['ENTRIESREAD', 8] : []));
  if (v7) await c.call('XSETID', 'x:s', '300-0', 'ENTRIESADDED', 400, 'MAXDELETEDID', '200-0');
  if (v7) await c.call('SPUBLISH', 'shard-channel', 'hello');
  // RESTORE of the source's own payloads (its RDB version): a hash (typed into older ones), a stream (re-encoded)
  await c.hset('r:h', 'f', '1', 'g', '2');
  await c.call('RESTORE', 'r:h2', HOUR, await c.dumpBuffer('r:h'));
  await c.call('RESTORE', 'r:x', 0, await c.dumpBuffer('copy:x'), 'REPLACE');
  await c.set('everything', 'written');
}

/** Keys whose expiry time a 7.0+ source replicates as a time (not a TTL), compared to the millisecond. */
const EXACT_TTLS = ['set:keep', 'set:float', 'copy:a2', 'set:pxat', 'r:h2'];

describe('engine: what a newer master replicates, into a destination that refuses it as it came', function () {
  before(function () {
    requireBuilds(this, ['7.4.1', '6.2.16', '5.0.14']);
  });
  this.timeout(120_000);
  const servers = new TestServers();
  afterEach(() => servers.stopAll());

  const pairs: Array<[VersionName, VersionName]> = [
    ['7.4.1', '5.0.14'],
    ['7.0', '5.0.14'],
    ['7.4.1', '6.2.16'],
    ['6.2.16', '5.0.14'],
  ];
  for (const [from, to] of pairs) {
    it(`${from} -> ${to}: every key, value and TTL as the source has it`, async () => {
      const src = await servers.version(from);
      const dst = await servers.version(to);
      const run = await sync(src, dst);
      const c = src.client();
      try {
        await everyForm(c, (redisBuild(from) as { version: [number, number] }).version);
        await until(async () => run.failure() !== null || (await dst.command('GET', 'everything')) === 'written', 'the writes applied');
        assert.equal(run.failure(), null);
        await converge(() => keyspaceOf(src, [0, 3]), () => keyspaceOf(dst, [0, 3]), { ms: 10_000, failure: () => run.failure()?.message ?? null });
        if (from !== '6.2.16') for (const key of EXACT_TTLS) assert.equal(await expiryOf(dst, key), await expiryOf(src, key), `the expiry time of ${key}`);
      } finally {
        c.disconnect();
        await run.stop();
      }
    });
  }
});

describe('engine: into a 5.0 cluster, commands across slots run on co-located keys in the form the destination has', function () {
  before(function () {
    requireBuilds(this, ['7.4.1', '5.0.14']);
  });
  this.timeout(180_000);
  const servers = new TestServers();
  afterEach(() => servers.stopAll());

  it('7.4.1 -> 5.0.14 cluster: COPY, ZRANGESTORE, ZDIFFSTORE, GEOSEARCHSTORE and LMOVE across slots, and in one slot', async () => {
    const build = redisBuild('5.0.14');
    if (typeof build === 'string') throw new Error(build);
    const src = await servers.version('7.4.1');
    const dst = await servers.cluster({ binary: build.server, cliBinary: build.cli, replicas: 0 });
    const run = await sync(src, dst);
    const c = src.client();
    const d = dst.client();
    try {
      // {a}, {b}, {c} and {d} hash to slots 15495, 3300, 7365 and 11298
      await c.set('{a}copy', 'v', 'PX', HOUR);
      await c.copy('{a}copy', '{b}copy');
      await c.copy('{a}copy', '{a}copy2');
      await c.zadd('{b}z', 1, 'a', 2, 'b', 3, 'c');
      await c.zrangestore('{a}range', '{b}z', 0, 1);
      await c.zadd('{a}z', 1, 'a');
      await c.zdiffstore('{c}diff', 2, '{b}z', '{a}z');
      await c.geoadd('{d}geo', 13.361389, 38.115556, 'Palermo', 15.087269, 37.502669, 'Catania');
      await c.call('GEOSEARCHSTORE', '{c}near', '{d}geo', 'FROMLONLAT', 15, 37, 'BYRADIUS', 200, 'KM');
      await c.rpush('{a}list', 'x', 'y', 'z');
      await c.lmove('{a}list', '{b}list', 'LEFT', 'RIGHT');
      await c.lmove('{a}list', '{a}list2', 'RIGHT', 'RIGHT');
      await c.set('everything', 'written');
      await until(async () => run.failure() !== null || (await d.get('everything')) === 'written', 'the writes applied');
      assert.equal(run.failure(), null);
      await converge(() => keyspaceOf(src), () => keyspaceOf(dst), { ms: 10_000, failure: () => run.failure()?.message ?? null });
    } finally {
      c.disconnect();
      d.disconnect();
      await run.stop();
    }
  });
});

describe('writer: what has no form on an older destination stops the sink, saying what it lacks', function () {
  before(function () {
    requireBuilds(this, ['5.0.14']);
  });
  this.timeout(60_000);
  const servers = new TestServers();
  afterEach(() => servers.stopAll());

  let offset = 1;
  const command = (name: string, ...args: Array<string | number>): CommandOp => ({ kind: 'command', db: 0, name, args: args.map((a) => Buffer.from(String(a))), keys: [0], shard: 'standalone', offset: offset++, tx: 0 });
  const cases: Array<[string, CommandOp, RegExp]> = [
    ['GEOSEARCHSTORE … BYBOX', command('GEOSEARCHSTORE', 'geo:box', 'geo:src', 'FROMLONLAT', 15, 37, 'BYBOX', 400, 400, 'km'), /GEOSEARCHSTORE on key "geo:box" \(db 0, source offset \d+\) cannot be applied: the destination, Redis 5\.0, has no GEOSEARCHSTORE \(6\.2\).*BYBOX/],
    ['GEORADIUS … COUNT n ANY … STORE', command('GEORADIUS', 'geo:src', 15, 37, 200, 'km', 'COUNT', 1, 'ANY', 'STORE', 'geo:any'), /GEORADIUS on key "geo:any" .*Redis 5\.0, has no COUNT … ANY \(6\.2\)/],
  ];
  for (const [what, op, message] of cases) {
    it(`${what} into 5.0.14`, async () => {
      const dst = await servers.version('5.0.14');
      await dst.command('GEOADD', 'geo:src', 13.361389, 38.115556, 'Palermo');
      const writer = new DestinationWriter({ endpoint: { mode: 'standalone', host: dst.host, port: dst.port } });
      await writer.connect();
      try {
        await assert.rejects(writer.apply([op], { source: 'no-form' }), message);
      } finally {
        writer.close();
      }
    });
  }
});
