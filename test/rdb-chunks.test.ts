import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis, type RedisServer } from './harness';
import { RdbParser } from '../lib/rdb/parser';
import type { RdbEvent } from '../lib/rdb/events';

/** The bound a decoded chunk keeps to, plus what one quicklist node or listpack adds at once. */
const MAX_ITEMS = 16384 + 8192;

describe('lib/rdb: big keys of tiny elements come in chunks bounded by items, not only bytes', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let rdb: Buffer;

  before(async () => {
    server = await startRedis();
    const c = server.client();
    for (let i = 0; i < 200_000; i += 10_000) {
      await c.rpush('tiny-list', ...Array.from({ length: 10_000 }, (_, j) => String((i + j) % 10)));
      await c.hset('tiny-hash', Object.fromEntries(Array.from({ length: 5_000 }, (_, j) => [`f${i / 2 + j}`, 'v'])));
      await c.zadd('tiny-zset', ...Array.from({ length: 5_000 }, (_, j) => [j, `m${i / 2 + j}`]).flat());
    }
    await c.call('SAVE');
    c.disconnect();
    rdb = readFileSync(join(server.dir, 'dump.rdb'));
  });
  after(async () => {
    await server.stop();
  });

  it('every chunk holds at most about 16k items, and the chunks make up the whole key', async () => {
    const parser = new RdbParser({ decodeValues: true });
    const events: RdbEvent[] = [];
    for (let at = 0; at < rdb.length; at += 256 * 1024) events.push(...parser.push(rdb.subarray(at, at + 256 * 1024)));
    events.push(...parser.finish());
    const keys = new Map<string, { chunks: number; items: number; biggest: number }>();
    for (const ev of events) {
      if (ev.kind !== 'key') continue;
      const k = ev as RdbEvent & { key: Buffer; value: unknown; chunk: { index: number; last: boolean } | null };
      const v = k.value as unknown[];
      const seen = keys.get(k.key.toString()) ?? { chunks: 0, items: 0, biggest: 0 };
      seen.chunks++;
      seen.items += v.length;
      seen.biggest = Math.max(seen.biggest, v.length);
      keys.set(k.key.toString(), seen);
    }
    assert.deepEqual([...keys.keys()].sort(), ['tiny-hash', 'tiny-list', 'tiny-zset']);
    assert.equal(keys.get('tiny-list')?.items, 200_000);
    assert.equal(keys.get('tiny-hash')?.items, 100_000);
    assert.equal(keys.get('tiny-zset')?.items, 100_000);
    for (const [name, k] of keys) {
      assert.ok(k.chunks > 1, `${name} came whole`);
      assert.ok(k.biggest <= MAX_ITEMS, `${name}: a chunk of ${k.biggest} items`);
    }
    // the list is far below the 1 MiB byte threshold per 16k items: without the item bound it would come in few, huge chunks
    assert.ok((keys.get('tiny-list')?.chunks ?? 0) >= 200_000 / MAX_ITEMS, `tiny-list in ${keys.get('tiny-list')?.chunks} chunks`);
  });
});
