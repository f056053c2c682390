import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';

/** Major, minor: what a server of that version can hold and run. */
export type Version = [major: number, minor: number];

const atLeast = (v: Version, major: number, minor = 0): boolean => v[0] > major || (v[0] === major && v[1] >= minor);

export interface Capabilities {
  streams: boolean;
  functions: boolean;
  hashFieldTtls: boolean;
  /** LMOVE, GETDEL, SET … GET (6.2). */
  moves: boolean;
}

export function capabilities(v: Version, valkey: boolean): Capabilities {
  return {
    streams: atLeast(v, 5),
    functions: atLeast(v, 7),
    // Valkey 8.0 has no field TTLs (it speaks Redis 7.2)
    hashFieldTtls: !valkey && atLeast(v, 7, 4),
    moves: atLeast(v, 6, 2),
  };
}

const FUNCTION_LIBRARY = "#!lua name=synclib\nredis.register_function('sync_echo', function(keys, args) return args[1] end)";

/**
 * Every type and encoding a version has, in dbs 0, 2 and 9, with TTLs: small (ziplist or
 * listpack, intset) and large (hashtable, skiplist, quicklist) forms, keys above the source's
 * big key threshold (64 KiB in the suite), streams with groups, consumers and pending entries
 * (one of them deleted while pending), function libraries and hash field TTLs.
 */
export async function fillEveryType(c: Redis, caps: Capabilities): Promise<void> {
  const far = Date.now() + 3_600_000;
  for (const db of [0, 2, 9]) {
    await c.select(db);
    const k = (s: string): string => `db${db}:${s}`;
    await c.set(k('int'), '12345');
    await c.set(k('embstr'), 'short value');
    await c.set(k('raw'), 'r'.repeat(200));
    await c.set(k('bin'), Buffer.from([0, 255, 13, 10, 7]));
    await c.set(k('ttl'), 'expires');
    await c.pexpireat(k('ttl'), far + db);
    await c.rpush(k('list:small'), 'a', 'b', '3');
    await c.rpush(k('list:large'), ...Array.from({ length: 300 }, (_, i) => `item-${i}-${'x'.repeat(20)}`));
    await c.sadd(k('set:int'), 1, 2, 3, 100000);
    await c.sadd(k('set:small'), 'a', 'b', 'c');
    await c.sadd(k('set:large'), ...Array.from({ length: 600 }, (_, i) => `m${i}`));
    await c.zadd(k('zset:small'), 1, 'a', 2.5, 'b', -3, 'c');
    await c.zadd(k('zset:large'), ...Array.from({ length: 300 }, (_, i) => [i / 7, `z${i}`]).flat());
    await c.hmset(k('hash:small'), { f1: 'v1', f2: '2' });
    await c.hmset(k('hash:large'), Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`f${i}`, `v${i}`])));
    await c.pexpireat(k('hash:small'), far + 1000 + db);
  }
  await c.select(0);
  // above the big key threshold: sent in parts
  await c.rpush('big:list', ...Array.from({ length: 3000 }, (_, i) => `element-${i}-${'y'.repeat(40)}`));
  await c.hmset('big:hash', Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`field-${i}`, 'z'.repeat(40)])));
  await c.sadd('big:set', ...Array.from({ length: 3000 }, (_, i) => `member-${i}-${'s'.repeat(30)}`));
  await c.zadd('big:zset', ...Array.from({ length: 2000 }, (_, i) => [i, `zm-${i}-${'q'.repeat(30)}`]).flat());
  await c.set('big:string', 'B'.repeat(100_000));
  if (caps.streams) await fillStreams(c);
  if (caps.functions) await c.call('FUNCTION', 'LOAD', FUNCTION_LIBRARY);
  if (caps.hashFieldTtls) {
    await c.hset('hfe:hash', 'keep', '1', 'expiring', '2', 'later', '3');
    await c.call('HPEXPIREAT', 'hfe:hash', far, 'FIELDS', 1, 'expiring');
    await c.call('HPEXPIREAT', 'hfe:hash', far + 5000, 'FIELDS', 1, 'later');
  }
}

async function fillStreams(c: Redis): Promise<void> {
  for (let i = 0; i < 10; i++) await c.xadd('stream:groups', `${i + 1}-0`, 'n', String(i), 'payload', 'p'.repeat(i));
  await c.xgroup('CREATE', 'stream:groups', 'g1', '0');
  await c.xgroup('CREATE', 'stream:groups', 'g2', '$');
  await c.xreadgroup('GROUP', 'g1', 'alice', 'COUNT', 5, 'STREAMS', 'stream:groups', '>');
  await c.xreadgroup('GROUP', 'g1', 'bob', 'COUNT', 2, 'STREAMS', 'stream:groups', '>');
  await c.xack('stream:groups', 'g1', '2-0');
  // a pending entry whose message is gone: the PEL keeps it
  await c.xdel('stream:groups', '3-0');
  await c.xclaim('stream:groups', 'g1', 'bob', 0, '4-0');
  await c.xadd('stream:trimmed', '*', 'a', '1');
  await c.xadd('stream:trimmed', '*', 'a', '2');
  await c.xtrim('stream:trimmed', 'MAXLEN', 1);
  // a big stream, in parts
  for (let i = 0; i < 1500; i += 100) {
    const m = c.multi();
    for (let j = i; j < i + 100; j++) m.xadd('big:stream', '*', 'i', String(j), 'v', 'w'.repeat(40));
    await m.exec();
  }
}

/**
 * Writes that go wrong when applied twice or skipped, with what the version has, until
 * `stop()` says so; resolves with the rounds made.
 */
export function liveWrites(c: Redis | Cluster, caps: Capabilities): { stop: () => Promise<number> } {
  let stopping = false;
  const standalone = !('nodes' in c);
  const done = (async () => {
    let r = 0;
    for (; !stopping; r++) {
      // a hash tag per round keeps LMOVE in one slot of a cluster source
      const i = `{${r % 10}}`;
      if (standalone) await c.select(r % 3 === 0 ? 2 : 0);
      await c.incr(`live:counter:${i}`);
      await c.rpush(`live:list:${i}`, `r${r}`);
      await c.append(`live:text:${i}`, `${r},`);
      await c.hincrby(`live:hash:${i}`, 'n', 2);
      await c.zincrby(`live:zset:${i}`, 1, 'member');
      await c.sadd(`live:set:${i}`, `a${r % 3}`, `b${r}`);
      await c.spop(`live:set:${i}`);
      await c.setex(`live:ttl:${i}`, 3600, `v${r}`);
      await c.setrange(`live:range:${i}`, r % 7, String(r % 10));
      if (r % 5 === 0) await c.del(`live:text:{${(r + 5) % 10}}`);
      if (caps.streams) await c.xadd(`live:stream:${i}`, '*', 'r', String(r));
      if (caps.moves) await c.lmove(`live:list:${i}`, `live:moved:${i}`, 'LEFT', 'RIGHT');
      if (caps.hashFieldTtls) {
        await c.hset(`live:hfe:${i}`, 'f', String(r), 'g', 'x');
        await c.call('HPEXPIRE', `live:hfe:${i}`, 3_600_000, 'FIELDS', 1, 'f');
      }
      await new Promise((res) => setTimeout(res, 2));
    }
    if (standalone) await c.select(0);
    return r;
  })();
  return {
    stop: async () => {
      stopping = true;
      return done;
    },
  };
}
