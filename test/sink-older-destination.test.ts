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
import type { Operation } from '../lib/ops/operation';
import { ReplicaSource } from '../lib/replication/source';
import { DestinationWriter, type WriterOptions } from '../lib/sink/writer';
import type { RedisServer } from './harness';
import { TestServers } from './support/servers';
import { redisBuild, type VersionName } from './support/versions';
import { until } from './support/wait';

/** A server of a version of the suite, whose diskless full sync starts at once. */
async function serverOf(servers: TestServers, name: VersionName): Promise<RedisServer> {
  const build = redisBuild(name);
  if (typeof build === 'string') throw new Error(build);
  return servers.server({ binary: build.server, cliBinary: build.cli, config: { 'repl-diskless-sync-delay': '0' } });
}

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
        const src = await serverOf(servers, from);
        const dst = await serverOf(servers, to);
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
      const src = await serverOf(servers, '7.0');
      const dst = await serverOf(servers, '7.0');
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
      const src = await serverOf(servers, '7.0');
      const dst = await serverOf(servers, '7.0');
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
