import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from 'ioredis';
import type Redis from 'ioredis';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from './harness';
import { assertSameKeyspace, keyspaceOf, type Keyspace } from './support/compare';
import { until } from './support/wait';
import type { EndpointConfig } from '../lib/endpoint';
import type { KeyOp, Operation } from '../lib/ops/operation';
import { ReplicaSource } from '../lib/replication/source';
import { DestinationWriter, type ConflictPolicy } from '../lib/sink/writer';

/** Above it a key comes in parts; small enough that a few thousand elements make several. */
const BIG_KEY_BYTES = 16 * 1024;
const TYPES = ['string', 'list', 'set', 'zset', 'hash', 'stream'] as const;
type KeyType = (typeof TYPES)[number];

/** A value of `type` under `key`: `n` elements (a string of about n * 24 bytes), tagged with `mark`. */
async function write(c: Redis | Cluster, key: string, type: KeyType, n: number, mark: string): Promise<void> {
  // random text: the RDB compresses repeated text (LZF), and a key that stays under the threshold there comes whole
  const items = Array.from({ length: n }, (_, i) => `${mark}-${i}-${randomBytes(12).toString('hex')}`);
  switch (type) {
    case 'string':
      // random bytes, as LZF would compress repeated text below the threshold; a big string comes
      // in parts of 1 MiB (STRING_PIECE_BYTES in lib/rdb/parser.ts), so a big one has 3 MiB
      await c.set(key, randomBytes(n > 100 ? 3 << 20 : n * 24));
      break;
    case 'list':
      await c.rpush(key, ...items);
      break;
    case 'set':
      await c.sadd(key, ...items);
      break;
    case 'zset':
      await c.zadd(key, ...items.flatMap((m, i) => [i, m]));
      break;
    case 'hash':
      await c.hset(key, ...items.flatMap((m, i) => [`f${i}`, m]));
      break;
    case 'stream':
      for (let i = 0; i < n; i += 500) {
        const p = c.pipeline();
        for (const m of items.slice(i, i + 500)) p.xadd(key, '*', 'v', m);
        await p.exec();
      }
      await c.xgroup('CREATE', key, 'g', '0');
      await c.xreadgroup('GROUP', 'g', 'alice', 'COUNT', 2, 'STREAMS', key, '>');
      break;
  }
}

/** The operations of a full sync of `source`, big keys in parts. */
async function snapshotOf(source: RedisServer): Promise<Operation[]> {
  const dir = mkdtempSync(join(tmpdir(), 'skip-existing-'));
  const ops: Operation[] = [];
  const replica = new ReplicaSource({
    endpoint: { mode: 'standalone', host: source.host, port: source.port },
    dir,
    bigKeyBytes: BIG_KEY_BYTES,
    batchLatencyMs: 5,
    onBatch: async (b) => void ops.push(...b),
  });
  await replica.start();
  try {
    await until(() => ops.some((o) => o.kind === 'snapshot-end'), 'the snapshot', 60_000);
  } finally {
    await replica.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return ops;
}

async function apply(ops: Operation[], endpoint: EndpointConfig, conflict: ConflictPolicy, restoreMaxBytes?: number): Promise<DestinationWriter> {
  const writer = new DestinationWriter({ endpoint, conflict, restoreMaxBytes });
  await writer.connect();
  try {
    await writer.apply(ops, { source: 'skip-existing-test' });
  } finally {
    writer.close();
  }
  return writer;
}

describe('lib/sink DestinationWriter: "skip existing" means the same for every key, whatever its size and type', function () {
  this.timeout(180_000);
  let source: RedisServer;
  let ops: Operation[];
  let sourceKeys: Keyspace;

  before(async () => {
    source = await startRedis();
    const c = source.client();
    for (const type of TYPES) {
      // on the destination too (written there by each test, other values): the sync must leave them
      await write(c, `exists:small:${type}`, type, 3, 'source');
      await write(c, `exists:big:${type}`, type, 3000, 'source');
      // only on the source: the sync creates them, every part of the big ones
      await write(c, `new:small:${type}`, type, 3, 'source');
      await write(c, `new:big:${type}`, type, 3000, 'source');
    }
    // a TTL arrives with the last part of a key the sync creates
    await c.pexpireat('new:big:list', Date.now() + 3_600_000);
    // on the destination a key of another type: kept too, not a WRONGTYPE for the parts
    await write(c, 'exists:big:other-type', 'list', 3000, 'source');
    ops = await snapshotOf(source);
    sourceKeys = await keyspaceOf(source);
    const parts = (name: string): number => ops.filter((o): o is KeyOp => o.kind === 'key' && o.key.toString() === name).length;
    for (const type of TYPES) {
      assert.equal(parts(`exists:small:${type}`), 1, `exists:small:${type} comes whole`);
      assert.ok(parts(`exists:big:${type}`) > 1, `exists:big:${type} comes in ${parts(`exists:big:${type}`)} parts`);
      assert.ok(parts(`new:big:${type}`) > 1, `new:big:${type} comes in parts`);
    }
  });
  after(async () => {
    await source.stop();
  });

  /** The destination's own keys, as the sync must leave them: a 3-element value of each type under each `exists:` name. */
  async function seed(c: Redis | Cluster): Promise<void> {
    for (const type of TYPES) {
      await write(c, `exists:small:${type}`, type, 3, 'destination');
      await write(c, `exists:big:${type}`, type, 3, 'destination');
    }
    await c.set('exists:big:other-type', 'a string on the destination');
  }

  const existing = 2 * TYPES.length + 1;

  interface Destination {
    endpoint: EndpointConfig;
    client: () => Redis | Cluster;
    target: RedisServer | RedisCluster;
    masters: () => Promise<RedisServer[]>;
    stop: () => Promise<void>;
  }
  const destinations: Array<{ name: string; start: () => Promise<Destination> }> = [
    {
      name: 'a standalone destination',
      start: async () => {
        const s = await startRedis();
        return { endpoint: { mode: 'standalone', host: s.host, port: s.port }, client: () => s.client(), target: s, masters: async () => [s], stop: () => s.stop() };
      },
    },
    {
      name: 'a cluster destination',
      start: async () => {
        const cl = await startCluster({ masters: 3, replicas: 0 });
        return { endpoint: { mode: 'cluster', seeds: cl.seeds }, client: () => cl.client(), target: cl, masters: () => cl.masters(), stop: () => cl.stop() };
      },
    },
  ];

  for (const d of destinations) {
    describe(d.name, () => {
      let dst: Destination;
      before(async () => {
        dst = await d.start();
      });
      after(async () => {
        await dst.stop();
      });
      beforeEach(async () => {
        for (const m of await dst.masters()) await m.command('FLUSHALL');
        const c = dst.client();
        try {
          await seed(c);
        } finally {
          c.disconnect();
        }
      });

      /** Keys left under the staging prefix of typed writes (lib/sink/typed.ts, stagingKey). */
      async function stagingKeys(): Promise<string[]> {
        const keys: string[] = [];
        for (const m of await dst.masters()) keys.push(...((await m.command('KEYS', 'redis-sync:part:*')) as string[]));
        return keys;
      }

      const cases: Array<{ how: string; restoreMaxBytes?: number }> = [
        { how: 'small keys by RESTORE, big ones in parts' },
        { how: 'every key with typed commands', restoreMaxBytes: 1 },
      ];
      for (const { how, restoreMaxBytes } of cases) {
        it(`keeps every key it finds, writes the others whole (${how})`, async () => {
          const before = await keyspaceOf(dst.target);
          const writer = await apply(ops, dst.endpoint, 'skip-existing', restoreMaxBytes);
          assert.equal(writer.stats.skippedExisting, existing, 'skipped existing keys');
          const expected: Keyspace = { 0: { ...sourceKeys[0], ...before[0] } };
          assertSameKeyspace(await keyspaceOf(dst.target), expected);
          assert.deepEqual(await stagingKeys(), [], 'keys were left where they were built');
        });
      }

      it('a key in parts whose TTL passes while it arrives is left out, and the one found is kept', async () => {
        const part = (key: string, index: number): KeyOp => ({
          kind: 'key', db: 0, key: Buffer.from(key), type: 'list', value: [Buffer.from(`part-${index}`)], rdbType: 18, expireMs: Date.now() - 1000,
          idleSeconds: null, lfuFreq: null, raw: null, chunk: { index, last: index === 1 }, offset: 0, shard: 'standalone', rdbVersion: 10,
        });
        const before = await keyspaceOf(dst.target);
        const writer = await apply([part('exists:big:list', 0), part('exists:big:list', 1), part('expired:list', 0), part('expired:list', 1)], dst.endpoint, 'skip-existing');
        assert.equal(writer.stats.skippedExisting, 0, 'nothing arrived to be skipped');
        assertSameKeyspace(await keyspaceOf(dst.target), before);
        assert.deepEqual(await stagingKeys(), []);
      });

      it('under "ignore" the same keys are replaced, the big ones too', async () => {
        const writer = await apply(ops, dst.endpoint, 'ignore');
        assert.equal(writer.stats.skippedExisting, 0);
        assertSameKeyspace(await keyspaceOf(dst.target), sourceKeys);
      });
    });
  }
});
