import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';

type Client = Redis | Cluster;

/** Keys of every type, with and without TTLs, in the given db (standalone) or db 0. */
export async function fillAllTypes(c: Client, prefix: string, n = 20): Promise<void> {
  const far = Date.now() + 3_600_000;
  for (let i = 0; i < n; i++) {
    const k = (s: string): string => `${prefix}{t${i}}${s}`;
    await c.set(k('str'), `value-${i}`);
    await c.set(k('int'), String(i * 1000));
    await c.set(k('bin'), Buffer.from([0, 255, i, 13, 10]));
    await c.rpush(k('list'), ...Array.from({ length: 5 + i }, (_, j) => `item-${j}`));
    await c.sadd(k('set'), ...Array.from({ length: 3 + i }, (_, j) => `m${j}`));
    await c.sadd(k('intset'), ...Array.from({ length: 3 + i }, (_, j) => j));
    await c.zadd(k('zset'), ...Array.from({ length: 4 + i }, (_, j) => [j / 3, `z${j}`]).flat());
    await c.hset(k('hash'), ...Array.from({ length: 4 + i }, (_, j) => [`f${j}`, `v${j}`]).flat());
    await c.xadd(k('stream'), '*', 'a', String(i), 'b', 'x');
    await c.xadd(k('stream'), '*', 'a', String(i + 1));
    if (i % 3 === 0) {
      await c.xgroup('CREATE', k('stream'), 'g1', '0');
      await c.xreadgroup('GROUP', 'g1', 'alice', 'COUNT', 1, 'STREAMS', k('stream'), '>');
    }
    if (i % 2 === 0) await c.pexpireat(k('str'), far + i);
    if (i % 4 === 0) await c.pexpireat(k('hash'), far + i);
  }
  // a big list and hash: more than one RESTORE's worth with a small threshold
  await c.rpush(`${prefix}{big}list`, ...Array.from({ length: 3000 }, (_, j) => `element-${j}-${'x'.repeat(50)}`));
  await c.hset(`${prefix}{big}hash`, ...Array.from({ length: 2000 }, (_, j) => [`field-${j}`, 'y'.repeat(40)]).flat());
}

/**
 * Writes that go wrong when applied twice or skipped: counters, pushes, appends, float
 * increments, SPOP then SADD, auto-id XADD, SETRANGE. Returns how many rounds ran.
 */
export async function nonIdempotentWrites(c: Client, prefix: string, rounds: number, keys = 10): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    const i = r % keys;
    const k = (s: string): string => `${prefix}{w${i}}${s}`;
    await c.incr(k('counter'));
    await c.incrbyfloat(k('float'), 0.5);
    await c.rpush(k('rlist'), `r${r}`);
    await c.lpush(k('llist'), `l${r}`);
    await c.append(k('text'), `${r},`);
    await c.hincrby(k('h'), 'n', 2);
    await c.zincrby(k('z'), 1, 'member');
    await c.sadd(k('s'), `a${r % 3}`, `b${r}`);
    await c.spop(k('s'));
    await c.xadd(k('x'), '*', 'r', String(r));
    await c.setrange(k('range'), r % 7, String(r % 10));
  }
}
