/**
 * Keys that hold no element: Redis cannot hold one, and skips it when it loads an RDB that
 * has one (older versions could write them, redis#8453). The parser leaves them out the same
 * way, wherever it is used, and counts them.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildDumpPayload, parseDumpPayload } from '../lib/rdb/dump';
import { RdbError } from '../lib/rdb/errors';
import type { RdbEvent } from '../lib/rdb/events';
import { RdbJsonBuilder } from '../lib/rdb/json';
import { RdbParser, type RdbParserOptions } from '../lib/rdb/parser';
import { RdbType } from '../lib/rdb/types';
import { Crc64 } from '../lib/rdb/crc64';
import { ReplicationDecoder } from '../lib/replication/decoder';
import type { SnapshotEndOp } from '../lib/ops/operation';
import { startRedis, type RedisServer } from './harness';

/** Redis's own tests/assets/corrupt_empty_keys.rdb (see test/fixtures/redis-assets/README.md). */
const EMPTY_KEYS_RDB = resolve(__dirname, 'fixtures', 'redis-assets', 'corrupt_empty_keys.rdb');

/** The whole input in pieces of `chunk` bytes: every read of the parser can run out and resume. */
function parse(data: Buffer, opts: RdbParserOptions, chunk = data.length): { events: RdbEvent[]; parser: RdbParser } {
  const parser = new RdbParser(opts);
  const events: RdbEvent[] = [];
  for (let at = 0; at < data.length; at += chunk) events.push(...parser.push(data.subarray(at, at + chunk)));
  events.push(...parser.finish());
  return { events, parser };
}

const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([b.length]), b]);

/** A ziplist of short strings (src/ziplist.c): header, entries with 1-byte prevlen and 6-bit length, end. */
function ziplist(items: string[]): Buffer {
  const entries: Buffer[] = [];
  let prev = 0;
  let tail = 10;
  for (const s of items) {
    const e = Buffer.concat([Buffer.from([prev, s.length]), Buffer.from(s, 'latin1')]);
    tail += entries.length === 0 ? 0 : prev;
    entries.push(e);
    prev = e.length;
  }
  const body = Buffer.concat(entries);
  const head = Buffer.alloc(10);
  head.writeUInt32LE(10 + body.length + 1, 0);
  head.writeUInt32LE(tail, 4);
  head.writeUInt16LE(items.length, 8);
  return Buffer.concat([head, body, Buffer.from([0xff])]);
}

/** A listpack of one 1-byte string (src/listpack.c): 10 bytes, short enough to be taken for empty. */
function listpackOfOne(s: string): Buffer {
  return Buffer.from([10, 0, 0, 0, 1, 0, 0x81, s.charCodeAt(0), 2, 0xff]);
}

/** An RDB (version 11) of db 0 holding the given keys: [type byte, name, serialized value]. */
function rdbOf(keys: Array<[number, string, Buffer]>): Buffer {
  const body = keys.map(([type, name, value]) => Buffer.concat([Buffer.from([type]), str(Buffer.from(name)), value]));
  const withEof = Buffer.concat([Buffer.from('REDIS0011'), Buffer.from([0xfe, 0]), ...body, Buffer.from([0xff])]);
  return Buffer.concat([withEof, new Crc64().update(withEof).digest()]);
}

describe('lib/rdb: keys that hold no element are skipped, as Redis skips them', function () {
  this.timeout(60_000);
  const file = readFileSync(EMPTY_KEYS_RDB);

  for (const decodeValues of [true, false]) {
    it(`leaves out all 9 keys of Redis's corrupt_empty_keys.rdb and counts them (decodeValues ${decodeValues}), whole or byte by byte`, () => {
      for (const chunk of [file.length, 1]) {
        const { events, parser } = parse(file, { decodeValues }, chunk);
        assert.deepEqual(events.filter((e) => e.kind === 'key'), [], `chunk ${chunk}`);
        const end = events.find((e) => e.kind === 'end');
        assert.equal(end?.emptyKeysSkipped, 9);
        assert.equal(parser.emptyKeysSkipped, 9);
      }
    });
  }

  it('rdb2json prints none of them', () => {
    const json = new RdbJsonBuilder();
    for (const ev of parse(file, { decodeValues: false }).events) json.add(ev);
    assert.deepEqual(json.result().databases, {});
  });

  it("the replica source's snapshot holds none of them, and its end says how many were skipped", () => {
    for (const decodeValues of [true, false]) {
      const d = new ReplicationDecoder({ shard: 's', decodeValues });
      const ops = [
        ...d.push({ kind: 'fullresync', replid: 'r'.repeat(40), offset: 100 }),
        ...d.push({ kind: 'rdb', data: file }),
        ...d.push({ kind: 'rdb-end', size: file.length }),
      ];
      assert.deepEqual(ops.map((o) => o.kind), ['snapshot-begin', 'snapshot-end']);
      const end = ops[1] as SnapshotEndOp;
      assert.equal(end.keys, 0);
      assert.equal(end.emptyKeysSkipped, 9);
    }
  });

  it('keeps a quicklist whose other nodes are empty and a blob as short as an empty one, and skips a quicklist of empty nodes', () => {
    const quicklist = (nodes: Buffer[]): Buffer => Buffer.concat([Buffer.from([nodes.length]), ...nodes.map(str)]);
    const rdb = rdbOf([
      [RdbType.LIST_QUICKLIST, 'mixed', quicklist([ziplist([]), ziplist(['a', 'b']), ziplist([])])],
      [RdbType.LIST_QUICKLIST, 'hollow', quicklist([ziplist([]), ziplist([])])],
      [RdbType.LIST_ZIPLIST, 'list', str(ziplist(['x']))],
      [RdbType.SET_LISTPACK, 'tiny', str(listpackOfOne('m'))],
    ]);
    for (const decodeValues of [true, false]) {
      for (const chunk of [rdb.length, 1]) {
        const { events, parser } = parse(rdb, { decodeValues }, chunk);
        const keys = events.filter((e) => e.kind === 'key');
        assert.deepEqual(keys.map((k) => [String(k.key), k.value === null]), ['mixed', 'list', 'tiny'].map((k) => [k, !decodeValues]));
        const json = new RdbJsonBuilder();
        for (const ev of events) json.add(ev);
        assert.deepEqual(json.result().databases, {
          0: { mixed: { type: 'list', expire_ms: null, value: ['a', 'b'] }, list: { type: 'list', expire_ms: null, value: ['x'] }, tiny: { type: 'set', expire_ms: null, value: ['m'] } },
        });
        assert.equal(parser.emptyKeysSkipped, 1);
      }
    }
  });

  it('refuses an empty intset as corrupt, as Redis does', () => {
    const intset = Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]);
    const rdb = rdbOf([[RdbType.SET_INTSET, 'ints', str(intset)]]);
    for (const decodeValues of [true, false]) {
      assert.throws(() => parse(rdb, { decodeValues }), (e: unknown) => e instanceof RdbError && e.code === 'BAD_ENCODING' && /intset holds no member/.test(e.message));
    }
  });

  describe('against a live redis-server 7.0', () => {
    let server: RedisServer;
    before(async () => {
      server = await startRedis({ config: { 'enable-debug-command': 'yes', save: '', dbfilename: 'corrupt_empty_keys.rdb' } });
    });
    after(async () => {
      await server.stop();
    });

    it('Redis, loading the same file, skips the same 9 keys, sanitizing payloads or not', async () => {
      copyFileSync(EMPTY_KEYS_RDB, join(server.dir, 'corrupt_empty_keys.rdb'));
      for (const sanitize of ['yes', 'no']) {
        await server.command('CONFIG', 'SET', 'sanitize-dump-payload', sanitize);
        await server.command('DEBUG', 'RELOAD', 'NOSAVE');
        assert.equal(await server.command('DBSIZE'), 0);
      }
      assert.equal(server.readLog().match(/empty keys skipped: 9/g)?.length, 2);
    });

    it('RESTORE refuses the payload of an empty value, and so does parseDumpPayload', async () => {
      const payload = buildDumpPayload(RdbType.LIST_ZIPLIST, str(ziplist([])), 9);
      await assert.rejects(server.command('RESTORE', 'k', 0, payload), /Bad data format/);
      assert.throws(() => parseDumpPayload(payload), (e: unknown) => e instanceof RdbError && /holds no element/.test(e.message));
    });
  });
});
