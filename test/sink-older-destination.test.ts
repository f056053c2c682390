/**
 * A source newer than the destination, through the engine (replica source -> destination
 * writer), against real servers of both versions: what the older destination can hold
 * arrives exactly, and what it cannot is left out and counted.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandOp, Operation } from '../lib/ops/operation';
import { ReplicaSource } from '../lib/replication/source';
import { DestinationWriter, type WriterOptions } from '../lib/sink/writer';
import type { RedisServer } from './harness';
import { converge, keyspaceOf } from './support/compare';
import { TestServers } from './support/servers';
import { requireBuilds, type VersionName } from './support/versions';
import { until } from './support/wait';

/** Replica source -> destination writer, until the snapshot is applied; writes after it follow. */
async function sync(src: RedisServer, dst: RedisServer, writerOpts: Partial<WriterOptions> = {}, bigKeyBytes?: number): Promise<{ writer: DestinationWriter; applied: Operation[]; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'older-dst-'));
  const writer = new DestinationWriter({ endpoint: { mode: 'standalone', host: dst.host, port: dst.port }, ...writerOpts });
  await writer.connect();
  const applied: Operation[] = [];
  const source = new ReplicaSource({
    endpoint: { mode: 'standalone', host: src.host, port: src.port },
    dir,
    bigKeyBytes,
    onBatch: async (ops) => {
      await writer.apply(ops, { source: 'older-destination' });
      applied.push(...ops);
    },
  });
  await source.start();
  await until(() => applied.some((o) => o.kind === 'snapshot-end'), 'the snapshot applied');
  return {
    writer,
    applied,
    stop: async () => {
      await source.stop();
      writer.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Stream `s`: group g with consumer alice holding 5 pending entries (one delivered 3 times,
 * one whose entry was deleted) and carol holding 2 (the last one deleted), and group g2 with
 * an idle consumer bob.
 */
async function streamWithPending(c: RedisServer): Promise<void> {
  const ids: string[] = [];
  for (let i = 0; i < 9; i++) ids.push(String(await c.command('XADD', 's', '*', 'f', `v${i}`)));
  await c.command('XGROUP', 'CREATE', 's', 'g', '0');
  await c.command('XREADGROUP', 'GROUP', 'g', 'alice', 'COUNT', 5, 'STREAMS', 's', '>');
  await c.command('XCLAIM', 's', 'g', 'alice', 0, ids[1], 'RETRYCOUNT', 3);
  await c.command('XREADGROUP', 'GROUP', 'g', 'carol', 'COUNT', 2, 'STREAMS', 's', '>');
  await c.command('XDEL', 's', ids[2], ids[6]);
  await c.command('XGROUP', 'CREATE', 's', 'g2', '$');
  await c.command('XREADGROUP', 'GROUP', 'g2', 'bob', 'COUNT', 1, 'STREAMS', 's', '>');
  await c.command('XACK', 's', 'g2', ids[8]);
}

/** [id, consumer, delivery count] of every pending entry of a group: XPENDING without its idle time. */
async function pendingOf(server: RedisServer, group: string): Promise<Array<[string, string, number]>> {
  const rows = (await server.command('XPENDING', 's', group, '-', '+', 100)) as Array<[string, string, number, number]>;
  return rows.map(([id, consumer, , count]): [string, string, number] => [id, consumer, count]);
}

/** XINFO STREAM FULL without the fields named (each a name followed by its value, at any depth). */
async function fullInfo(server: RedisServer, without: string[]): Promise<unknown> {
  const strip = (v: unknown): unknown => {
    if (!Array.isArray(v)) return v;
    const out: unknown[] = [];
    for (let i = 0; i < v.length; i++) {
      if (typeof v[i] === 'string' && without.includes(v[i] as string)) i++;
      else out.push(strip(v[i]));
    }
    return out;
  };
  return strip(await server.command('XINFO', 'STREAM', 's', 'FULL'));
}

describe('engine: a newer source into an older destination', function () {
  before(function () {
    requireBuilds(this, ['7.2.6', '7.4.1', 'valkey-8.0.1', '6.2.16', '5.0.14']);
  });
  this.timeout(120_000);
  const servers = new TestServers();
  afterEach(() => servers.stopAll());

  describe('streams keep every pending entry: re-encoded as the older stream type and RESTOREd', () => {
    const pairs: Array<[VersionName, VersionName, string[]]> = [
      // [source, destination, the XINFO fields the destination has no place for]
      ['7.2.6', '7.0', ['active-time']],
      ['7.4.1', '7.0', ['active-time']],
      ['valkey-8.0.1', '7.0', ['active-time']],
      ['7.2.6', '6.2.16', ['active-time', 'max-deleted-entry-id', 'entries-added', 'recorded-first-entry-id', 'entries-read', 'lag']],
      ['7.0', '6.2.16', ['max-deleted-entry-id', 'entries-added', 'recorded-first-entry-id', 'entries-read', 'lag']],
      ['7.2.6', '5.0.14', []],
    ];
    for (const [from, to, dropped] of pairs) {
      it(`${from} -> ${to}: the same entries, PEL (ids, owners, delivery times and counts) and consumers`, async () => {
        const src = await servers.version(from);
        const dst = await servers.version(to);
        await streamWithPending(src);
        const run = await sync(src, dst);
        try {
          assert.equal(run.writer.stats.typedKeys, 0, 'RESTORE, not typed commands');
          for (const g of ['g', 'g2']) assert.deepEqual(await pendingOf(dst, g), await pendingOf(src, g), `XPENDING of ${g}`);
          assert.equal((await pendingOf(dst, 'g')).length, 7);
          assert.deepEqual(await dst.command('XRANGE', 's', '-', '+'), await src.command('XRANGE', 's', '-', '+'));
          if (to === '5.0.14') {
            // no XINFO STREAM FULL before 6.0: the consumers with their pending counts
            const consumers = async (s: RedisServer): Promise<unknown> => ((await s.command('XINFO', 'CONSUMERS', 's', 'g')) as string[][]).map((c) => [c[1], c[3]]);
            assert.deepEqual(await consumers(dst), await consumers(src));
          } else {
            assert.deepEqual(await fullInfo(dst, []), await fullInfo(src, dropped));
          }
        } finally {
          await run.stop();
        }
      });
    }
  });

  describe('streams written with typed commands (too big for one RESTORE) make the pending entries of deleted entries again', () => {
    it('a stream that comes whole: every pending entry, with its owner, delivery time and count', async () => {
      const src = await servers.version('7.0');
      const dst = await servers.version('7.0');
      await streamWithPending(src);
      const run = await sync(src, dst, { restoreMaxBytes: 1 });
      try {
        assert.equal(run.writer.stats.typedKeys, 1);
        assert.equal(run.writer.stats.lostPendingEntries, 0);
        for (const g of ['g', 'g2']) assert.deepEqual(await pendingOf(dst, g), await pendingOf(src, g), `XPENDING of ${g}`);
        // typed commands cannot set a consumer's seen time, and lay the entries out in nodes of their own
        const unlike = ['seen-time', 'radix-tree-keys', 'radix-tree-nodes'];
        assert.deepEqual(await fullInfo(dst, unlike), await fullInfo(src, unlike));
      } finally {
        await run.stop();
      }
    });

    it('a stream that comes in parts: those in its last part, and the others are counted as lost', async () => {
      const src = await servers.version('7.0');
      const dst = await servers.version('7.0');
      const c = src.client();
      const ids: string[] = [];
      for (let i = 0; i < 2000; i++) ids.push(String(await c.xadd('s', '*', 'f', randomBytes(50).toString('hex'))));
      await c.xgroup('CREATE', 's', 'g', '0');
      await c.xclaim('s', 'g', 'alice', 0, ids[10], ids[1990], ids[1995], 'FORCE', 'JUSTID');
      await c.xdel('s', ids[10], ids[1990]);
      const run = await sync(src, dst, {}, 16 * 1024);
      try {
        assert.ok(run.applied.some((o) => o.kind === 'key' && o.chunk !== null), 'the stream came in parts');
        assert.deepEqual(await pendingOf(dst, 'g'), (await pendingOf(src, 'g')).filter(([id]) => id !== ids[10]));
        assert.equal(run.writer.stats.lostPendingEntries, 1);
        assert.deepEqual(await dst.command('XRANGE', 's', '-', '+'), await src.command('XRANGE', 's', '-', '+'));
      } finally {
        await run.stop();
      }
    });
  });
});

/** A hash as field -> value: HGETALL's order depends on the encoding and its history. */
async function hashOf(server: RedisServer, key: string): Promise<Record<string, string>> {
  const flat = (await server.command('HGETALL', key)) as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}

describe('engine: hash field TTL commands into a destination that lacks them', function () {
  before(function () {
    requireBuilds(this, ['7.4.1']);
  });
  this.timeout(120_000);
  const servers = new TestServers();
  afterEach(() => servers.stopAll());

  it('7.4.1 -> 7.0: live HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT and HPERSIST keep the values and drop the TTLs, counted as the snapshot counts its own', async () => {
    const src = await servers.version('7.4.1');
    const dst = await servers.version('7.0');
    const c = src.client();
    const hour = Date.now() + 3_600_000;
    await c.hset('snap', 'a', '1', 'b', '2', 'c', '3');
    await c.call('HPEXPIREAT', 'snap', hour, 'FIELDS', 2, 'a', 'b');
    const run = await sync(src, dst);
    try {
      assert.equal(run.writer.stats.droppedFieldTtls, 2, 'the snapshot');
      await c.hset('h', 'a', '1', 'b', '2', 'c', '3', 'd', '4');
      await c.call('HEXPIRE', 'h', 3600, 'FIELDS', 2, 'a', 'b');
      await c.call('HPEXPIRE', 'h', 3_600_000, 'FIELDS', 1, 'c');
      await c.call('HEXPIREAT', 'h', Math.floor(hour / 1000), 'FIELDS', 1, 'd');
      await c.call('HPEXPIREAT', 'h', hour, 'FIELDS', 1, 'd');
      await c.call('HPERSIST', 'h', 'FIELDS', 1, 'a');
      await c.multi().hset('tx', 'f', 'v').call('HEXPIRE', 'tx', 3600, 'FIELDS', 1, 'f').exec();
      // a field that expires on the source: the source replicates that as HDEL
      await c.hset('short', 'gone', 'x', 'kept', 'y');
      await c.call('HPEXPIRE', 'short', 200, 'FIELDS', 1, 'gone');
      await c.set('after', 'all of it');
      await until(async () => (await dst.command('GET', 'after')) === 'all of it' && (await src.command('HEXISTS', 'short', 'gone')) === 0 && (await dst.command('HEXISTS', 'short', 'gone')) === 0, 'the writes after the TTLs, and the expired field gone');
      for (const key of ['snap', 'h', 'tx', 'short']) assert.deepEqual(await hashOf(dst, key), await hashOf(src, key), key);
      // 2 of the snapshot, then 2 + 1 + 1 + 1 + 1 (tx) + 1 (short) fields whose TTL was set
      assert.equal(run.writer.stats.droppedFieldTtls, 9);
    } finally {
      await run.stop();
    }
  });

  describe("8.0's HSETEX, HGETEX and HGETDEL, applied by the writer", () => {
    const hour = Date.now() + 3_600_000;
    const later = hour + 60_000;
    let offset = 1;
    const command = (name: string, ...args: Array<string | number>): CommandOp => ({ kind: 'command', db: 0, name, args: args.map((a) => Buffer.from(String(a))), keys: [0], shard: 'standalone', offset: offset++, tx: 0 });
    const ops = (): CommandOp[] => [
      command('HSET', 'h', 'k', '0'),
      command('HPEXPIREAT', 'h', hour, 'FIELDS', 1, 'k'),
      command('HSETEX', 'h', 'PXAT', hour, 'FIELDS', 2, 'a', '1', 'b', '2'),
      command('HSETEX', 'h', 'KEEPTTL', 'FIELDS', 2, 'a', '10', 'c', '3'),
      command('HSETEX', 'h', 'FNX', 'EX', 7200, 'FIELDS', 1, 'd', '4'),
      command('HGETEX', 'h', 'PERSIST', 'FIELDS', 1, 'b'),
      command('HGETEX', 'h', 'PXAT', later, 'FIELDS', 1, 'c'),
      command('HGETDEL', 'h', 'FIELDS', 1, 'k'),
    ];

    async function apply(dst: RedisServer): Promise<DestinationWriter> {
      const writer = new DestinationWriter({ endpoint: { mode: 'standalone', host: dst.host, port: dst.port } });
      await writer.connect();
      for (const op of ops()) await writer.apply([op], { source: 'field-ttl' });
      writer.close();
      return writer;
    }

    it('into 7.0, without field TTLs: the values (HSETEX as HSET, HGETDEL as HDEL), every TTL dropped and counted', async () => {
      const dst = await servers.version('7.0');
      const writer = await apply(dst);
      assert.deepEqual(await hashOf(dst, 'h'), { a: '10', b: '2', c: '3', d: '4' });
      assert.equal(writer.stats.droppedFieldTtls, 1 + 2 + 1 + 1);
    });

    it('into 7.4.1, with field TTLs but not these commands: the values and every TTL as 8.0 sets them, KEEPTTL kept', async () => {
      const dst = await servers.version('7.4.1');
      const writer = await apply(dst);
      assert.deepEqual(await hashOf(dst, 'h'), { a: '10', b: '2', c: '3', d: '4' });
      const [a, b, c, d] = (await dst.command('HPEXPIRETIME', 'h', 'FIELDS', 4, 'a', 'b', 'c', 'd')) as number[];
      assert.deepEqual([a, b, c], [hour, -1, later]);
      assert.ok(Math.abs(d - (Date.now() + 7_200_000)) < 60_000, `d expires at ${d}`);
      assert.equal(writer.stats.droppedFieldTtls, 0);
    });
  });
});

describe('engine: function libraries into a destination before 7.0', function () {
  before(function () {
    requireBuilds(this, ['6.2.16']);
  });
  this.timeout(120_000);
  const servers = new TestServers();
  afterEach(() => servers.stopAll());

  const library = (name: string): string => `#!lua name=${name}\nredis.register_function('${name}_set', function(keys, args) return redis.call('SET', keys[1], args[1]) end)`;

  it('7.0 -> 6.2.16: the keys arrive; every FUNCTION command, of the snapshot and the stream, is dropped, counted and told; what FCALL writes arrives', async () => {
    const src = await servers.version('7.0');
    const dst = await servers.version('6.2.16');
    const c = src.client();
    await c.set('s', 'v');
    await c.hset('h', 'f', '1');
    await c.rpush('l', 'a', 'b');
    await c.call('FUNCTION', 'LOAD', library('snaplib'));
    const told: string[] = [];
    const run = await sync(src, dst, { onDroppedFunction: (what) => told.push(what) });
    try {
      assert.equal(run.writer.stats.droppedFunctions, 1, 'the snapshot\'s library');
      await c.call('FUNCTION', 'LOAD', library('livelib'));
      // a master replicates what the function wrote (SET), never the FCALL
      await c.call('FCALL', 'livelib_set', 1, 'by-fcall', 'x');
      await c.call('FUNCTION', 'DELETE', 'snaplib');
      const dump = (await c.callBuffer('FUNCTION', 'DUMP')) as Buffer;
      await c.call('FUNCTION', 'FLUSH');
      await c.call('FUNCTION', 'RESTORE', dump);
      await c.set('after', 'all of it');
      await until(async () => (await dst.command('GET', 'after')) === 'all of it', 'the writes after the functions');
      await converge(() => keyspaceOf(src), () => keyspaceOf(dst), { ms: 10_000 });
      assert.equal(await dst.command('GET', 'by-fcall'), 'x');
      assert.equal(run.writer.stats.droppedFunctions, 5);
      assert.deepEqual(told, ['FUNCTION LOAD of library "snaplib"', 'FUNCTION LOAD of library "livelib"', 'FUNCTION DELETE of library "snaplib"', 'FUNCTION FLUSH', 'FUNCTION RESTORE']);
    } finally {
      await run.stop();
    }
  });
});
