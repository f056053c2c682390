import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type Redis from 'ioredis';
import { buildDumpPayload, parseDumpPayload } from '../lib/rdb/dump';
import { RdbError } from '../lib/rdb/errors';
import type { RdbKey } from '../lib/rdb/events';
import { jsonBytes } from '../lib/rdb/json';
import { RdbParser } from '../lib/rdb/parser';
import type { KeyValue } from '../lib/rdb/types';
import { startRedis, type RedisServer } from './harness';
import { listRdbFixtures } from './support/fixtures';
import { comparable, readKey, readKeyspace, type LiveKey } from './support/keyspace';

function keysOf(path: string): RdbKey[] {
  const p = new RdbParser();
  const out = [...p.push(readFileSync(path)), ...p.finish()];
  return out.filter((e): e is RdbKey => e.kind === 'key');
}

describe('DUMP payloads against a live redis-server 7.0', function () {
  this.timeout(120_000);
  let server: RedisServer;
  let c: Redis;

  before(async () => {
    server = await startRedis({ config: { 'enable-debug-command': 'yes' } });
    c = server.client();
  });
  after(() => server.stop());

  const restorable = listRdbFixtures().filter((f) => f.name === 'all-types' && f.expected.rdb_version <= 10);
  for (const fx of restorable) {
    it(`RESTOREs every key of ${fx.release}/all-types.rdb from its raw bytes, and the server then holds exactly the fixture`, async () => {
      await c.flushall();
      for (const k of keysOf(fx.rdbPath)) {
        assert.ok(k.raw, 'a fixture key is never chunked at the default size');
        const payload = buildDumpPayload(k.rdbType, k.raw, fx.expected.rdb_version);
        await c.select(k.db);
        const args: Array<string | number | Buffer> = [k.key, k.expireMs ?? 0, payload, 'REPLACE'];
        if (k.expireMs !== null) args.push('ABSTTL');
        await c.callBuffer('RESTORE', ...args);
      }
      for (const [db, keys] of Object.entries(fx.expected.databases)) {
        const live = await readKeyspace(c, Number(db));
        assert.deepEqual(Object.keys(live).sort(), Object.keys(keys).sort(), `db ${db} keys`);
        for (const [name, exp] of Object.entries(keys)) assert.deepEqual(comparable(live[name]), comparable(exp), `db ${db} key ${name.slice(0, 60)}`);
      }
      await c.select(0);
    });
  }

  it('is refused by 7.0 for a value encoded for a newer RDB version (so the sink must know)', async () => {
    const fx = listRdbFixtures().find((f) => f.release === 'redis-7.4.1' && f.name === 'all-types');
    assert.ok(fx);
    const k = keysOf(fx.rdbPath).find((e) => e.type === 'set' && e.rdbType === 20);
    assert.ok(k?.raw);
    await assert.rejects(c.callBuffer('RESTORE', 'newer', 0, buildDumpPayload(k.rdbType, k.raw, 12)), /DUMP payload version or checksum are wrong/);
  });

  it('parses DUMP output of every type and encoding back to what was written', async () => {
    await c.flushall();
    const big = (n: number, f: (i: number) => string): string[] => Array.from({ length: n }, (_, i) => f(i));
    const written: Record<string, () => Promise<unknown>> = {
      's:int': () => c.set('s:int', '-12345'),
      's:embstr': () => c.set('s:embstr', 'hello'),
      's:raw': () => c.set('s:raw', 'x'.repeat(5000)),
      's:bin': () => c.set('s:bin', Buffer.from([0, 255, 13, 10, 0])),
      'l:small': () => c.rpush('l:small', 'a', '1', '-7', '999999999999'),
      'l:big': () => c.rpush('l:big', ...big(2000, (i) => `item-${i}`)),
      'l:plain': async () => {
        await c.call('DEBUG', 'QUICKLIST-PACKED-THRESHOLD', '100');
        await c.rpush('l:plain', 'small', 'p'.repeat(300), 'tail');
        await c.call('DEBUG', 'QUICKLIST-PACKED-THRESHOLD', '1073741824');
      },
      'st:int': () => c.sadd('st:int', 1, 2, -3, 70000, 5000000000),
      'st:str': () => c.sadd('st:str', 'a', 'b', ''),
      'st:big': () => c.sadd('st:big', ...big(600, (i) => `m${i}`)),
      'z:small': () => c.zadd('z:small', 1.5, 'a', '-inf', 'b', 'inf', 'c', 0, 'd'),
      'z:big': () => c.zadd('z:big', ...big(300, (i) => String(i / 3)).flatMap((s, i) => [s, `m${i}`])),
      'h:small': () => c.hset('h:small', 'f', 'v', 'n', '42'),
      'h:big': () => c.hset('h:big', ...big(600, (i) => `f${i}`).flatMap((f) => [f, `v-${f}`])),
      'x:stream': async () => {
        await c.xadd('x:stream', '1-1', 'a', '1');
        await c.xadd('x:stream', '2-0', 'a', '2', 'b', '3');
        await c.xgroup('CREATE', 'x:stream', 'g', '0');
        await c.xreadgroup('GROUP', 'g', 'alice', 'COUNT', 1, 'STREAMS', 'x:stream', '>');
      },
    };
    for (const write of Object.values(written)) await write();
    for (const name of Object.keys(written)) {
      const payload = (await c.callBuffer('DUMP', name)) as Buffer;
      const parsed = parseDumpPayload(payload);
      assert.equal(parsed.rdbVersion, 10);
      const live = await readKey(c, Buffer.from(name));
      assert.ok(live);
      const fromDump = dumpAsLive(parsed);
      assert.deepEqual(comparable(fromDump), comparable(live), name);
      // and the payload rebuilt from the parsed raw bytes is byte-identical
      assert.ok(parsed.raw);
      assert.deepEqual(buildDumpPayload(parsed.rdbType, parsed.raw, parsed.rdbVersion), payload, `${name} rebuilt`);
    }
  });

  it('rejects a DUMP payload with a bad checksum, a bad version, or trailing bytes', async () => {
    await c.set('k', 'value');
    const payload = (await c.callBuffer('DUMP', 'k')) as Buffer;
    const badCrc = Buffer.from(payload);
    badCrc[badCrc.length - 1] ^= 1;
    assert.throws(() => parseDumpPayload(badCrc), (e: unknown) => e instanceof RdbError && e.code === 'BAD_CHECKSUM');
    const body = payload.subarray(0, payload.length - 10);
    assert.throws(() => parseDumpPayload(buildDumpPayload(body[0], body.subarray(1), 99)), (e: unknown) => e instanceof RdbError && e.code === 'BAD_VERSION');
    const longer = buildDumpPayload(body[0], Buffer.concat([body.subarray(1), Buffer.from('xx')]), 10);
    assert.throws(() => parseDumpPayload(longer), (e: unknown) => e instanceof RdbError && e.code === 'TRAILING_DATA');
  });
});

/** A parsed DUMP value in the shape readKey gives, for comparison. */
function dumpAsLive(k: RdbKey & KeyValue): LiveKey {
  const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  switch (k.type) {
    case 'string':
      return { type: 'string', expire_ms: null, value: jsonBytes(k.value) };
    case 'list':
      return { type: 'list', expire_ms: null, value: k.value.map(jsonBytes) };
    case 'set':
      return { type: 'set', expire_ms: null, value: [...k.value].sort(Buffer.compare).map(jsonBytes) };
    case 'zset':
      return { type: 'zset', expire_ms: null, value: [...k.value].sort((a, b) => a[1] - b[1] || Buffer.compare(a[0], b[0])).map(([m, s]) => [jsonBytes(m), String(s)]) };
    case 'hash':
      return { type: 'hash', expire_ms: null, value: Object.fromEntries(k.value.map(([f, v]) => [jsonBytes(f), jsonBytes(v)])) };
    case 'stream': {
      const s = k.value;
      return {
        type: 'stream',
        expire_ms: null,
        value: {
          length: s.length,
          entries: s.entries.map((e) => [e.id, e.fields.map(jsonBytes)]),
          last_id: s.lastId,
          groups: s.groups
            .map((g) => {
              const owner = new Map<string, string>();
              for (const cn of g.consumers) for (const id of cn.pending) owner.set(id, jsonBytes(cn.name));
              return {
                name: jsonBytes(g.name),
                last_delivered_id: g.lastDeliveredId,
                pending: g.pending.map((p) => [p.id, owner.get(p.id) ?? null, p.deliveryCount]),
                consumers: g.consumers.map((cn) => ({ name: jsonBytes(cn.name), pending: cn.pending })).sort(byName),
              };
            })
            .sort(byName),
        },
      };
    }
    default:
      throw new Error(`no live form for ${k.type}`);
  }
}
