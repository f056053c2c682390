/**
 * The low-level RDB encodings (CRC64, LZF, ziplist, listpack, intset, zipmap): hand-built
 * blobs at every width and boundary, corrupt blobs with the exact error offset, and real
 * blobs taken from a live redis-server (DUMP) and from the fixture RDB files.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Redis from 'ioredis';
import { crc64, Crc64 } from '../lib/rdb/crc64';
import { RdbError, type RdbErrorCode } from '../lib/rdb/errors';
import { decodeIntset } from '../lib/rdb/intset';
import { decodeListpack, ListpackReader } from '../lib/rdb/listpack';
import { lzfCompress, lzfDecompress } from '../lib/rdb/lzf';
import { decodeZiplist } from '../lib/rdb/ziplist';
import { decodeZipmap } from '../lib/rdb/zipmap';
import { startRedis, type RedisServer } from './harness';
import { FIXTURES_DIR } from './support/fixtures';
import { prng } from './support/random';

const BASE = 1000; // a non-zero stream offset, so that errors must add it
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const FIXTURES = FIXTURES_DIR;

// ---------------------------------------------------------------------------------------
// helpers

/** Deterministic bytes (the low byte of each prng number), so that a failure reproduces. */
function pseudoRandom(n: number, seed: number): Buffer {
  const random = prng(seed);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (random() * 4294967296) & 0xff;
  return out;
}

function throwsRdb(fn: () => unknown, code: RdbErrorCode, offset: number, detail?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof RdbError, `expected RdbError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.offset, offset, err.message);
    if (detail) assert.match(err.message, detail);
    return true;
  });
}

const texts = (bufs: Buffer[]): string[] => bufs.map((b) => b.toString('latin1'));

/** Bit-at-a-time CRC-64/Jones straight from the definition, to check the table version. */
function crc64Reference(buf: Uint8Array): bigint {
  const poly = 0x95ac9329ac4bc9b5n;
  let crc = 0n;
  for (const byte of buf) {
    crc ^= BigInt(byte);
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
  }
  return crc;
}

// --- ziplist builder: encodings chosen as Redis chooses them (zipTryEncoding) ---

function zlString(s: Buffer): Buffer {
  const n = s.length;
  let head: Buffer;
  if (n <= 0x3f) head = Buffer.from([n]);
  else if (n <= 0x3fff) head = Buffer.from([0x40 | (n >> 8), n & 0xff]);
  else {
    head = Buffer.alloc(5);
    head[0] = 0x80;
    head.writeUInt32BE(n, 1);
  }
  return Buffer.concat([head, s]);
}

function zlInt(v: bigint): Buffer {
  if (v >= 0n && v <= 12n) return Buffer.from([0xf1 + Number(v)]);
  const b = Buffer.alloc(9);
  if (v >= -128n && v <= 127n) {
    b[0] = 0xfe;
    b.writeInt8(Number(v), 1);
    return b.subarray(0, 2);
  }
  if (v >= -32768n && v <= 32767n) {
    b[0] = 0xc0;
    b.writeInt16LE(Number(v), 1);
    return b.subarray(0, 3);
  }
  if (v >= -8388608n && v <= 8388607n) {
    b[0] = 0xf0;
    b.writeIntLE(Number(v), 1, 3);
    return b.subarray(0, 4);
  }
  if (v >= -2147483648n && v <= 2147483647n) {
    b[0] = 0xd0;
    b.writeInt32LE(Number(v), 1);
    return b.subarray(0, 5);
  }
  b[0] = 0xe0;
  b.writeBigInt64LE(v, 1);
  return b;
}

interface ZiplistOpts {
  count?: number;
  tail?: number;
  /** Write every prevlen in the 5-byte form, as Redis may after a cascade update. */
  bigPrevlen?: boolean;
}

function ziplist(bodies: Buffer[], opts: ZiplistOpts = {}): Buffer {
  const entries: Buffer[] = [];
  let prev = 0;
  let offset = 10;
  let lastAt = 10;
  for (const body of bodies) {
    let prevlen: Buffer;
    if (prev < 254 && !opts.bigPrevlen) prevlen = Buffer.from([prev]);
    else {
      prevlen = Buffer.alloc(5);
      prevlen[0] = 0xfe;
      prevlen.writeUInt32LE(prev, 1);
    }
    const entry = Buffer.concat([prevlen, body]);
    entries.push(entry);
    lastAt = offset;
    offset += entry.length;
    prev = entry.length;
  }
  const header = Buffer.alloc(10);
  const total = offset + 1;
  header.writeUInt32LE(total, 0);
  header.writeUInt32LE(opts.tail ?? lastAt, 4);
  header.writeUInt16LE(opts.count ?? Math.min(bodies.length, 0xffff), 8);
  return Buffer.concat([header, ...entries, Buffer.from([0xff])]);
}

// --- listpack builder: encodings as lpEncodeGetType chooses them ---

function lpString(s: Buffer): Buffer {
  const n = s.length;
  let head: Buffer;
  if (n < 64) head = Buffer.from([0x80 | n]);
  else if (n < 4096) head = Buffer.from([0xe0 | (n >> 8), n & 0xff]);
  else {
    head = Buffer.alloc(5);
    head[0] = 0xf0;
    head.writeUInt32LE(n, 1);
  }
  return Buffer.concat([head, s]);
}

function lpInt(v: bigint): Buffer {
  const b = Buffer.alloc(9);
  if (v >= 0n && v <= 127n) return Buffer.from([Number(v)]);
  if (v >= -4096n && v <= 4095n) {
    const u = Number(v < 0n ? v + 8192n : v);
    return Buffer.from([0xc0 | (u >> 8), u & 0xff]);
  }
  if (v >= -32768n && v <= 32767n) {
    b[0] = 0xf1;
    b.writeInt16LE(Number(v), 1);
    return b.subarray(0, 3);
  }
  if (v >= -8388608n && v <= 8388607n) {
    b[0] = 0xf2;
    b.writeIntLE(Number(v), 1, 3);
    return b.subarray(0, 4);
  }
  if (v >= -2147483648n && v <= 2147483647n) {
    b[0] = 0xf3;
    b.writeInt32LE(Number(v), 1);
    return b.subarray(0, 5);
  }
  b[0] = 0xf4;
  b.writeBigInt64LE(v, 1);
  return b;
}

/** lpEncodeBacklen, including its `<` limits (16383 takes 3 bytes). */
function lpBacklen(l: number): Buffer {
  if (l <= 127) return Buffer.from([l]);
  if (l < 16383) return Buffer.from([l >> 7, (l & 127) | 128]);
  if (l < 2097151) return Buffer.from([l >> 14, ((l >> 7) & 127) | 128, (l & 127) | 128]);
  return Buffer.from([l >> 21, ((l >> 14) & 127) | 128, ((l >> 7) & 127) | 128, (l & 127) | 128]);
}

function listpack(bodies: Buffer[], count?: number): Buffer {
  const parts = bodies.map((b) => Buffer.concat([b, lpBacklen(b.length)]));
  const header = Buffer.alloc(6);
  const total = 6 + parts.reduce((n, p) => n + p.length, 0) + 1;
  header.writeUInt32LE(total, 0);
  header.writeUInt16LE(count ?? Math.min(bodies.length, 0xffff), 4);
  return Buffer.concat([header, ...parts, Buffer.from([0xff])]);
}

// --- minimal RDB pieces (the real parser is lib/rdb/parser.ts) ---

function rdbLen(n: number): Buffer {
  if (n < 64) return Buffer.from([n]);
  if (n < 16384) return Buffer.from([0x40 | (n >> 8), n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0x80;
  b.writeUInt32BE(n, 1);
  return b;
}

interface Len {
  value: number;
  /** The 11xxxxxx special encodings: value is the encoding type. */
  special: boolean;
  next: number;
}

function readRdbLen(b: Buffer, p: number): Len {
  const kind = b[p] >> 6;
  if (kind === 0) return { value: b[p] & 0x3f, special: false, next: p + 1 };
  if (kind === 1) return { value: ((b[p] & 0x3f) << 8) | b[p + 1], special: false, next: p + 2 };
  if (kind === 3) return { value: b[p] & 0x3f, special: true, next: p + 1 };
  if (b[p] === 0x80) return { value: b.readUInt32BE(p + 1), special: false, next: p + 5 };
  return { value: Number(b.readBigUInt64BE(p + 1)), special: false, next: p + 9 };
}

/** An RDB string that holds a blob: plain or LZF (int-encoded strings do not hold blobs). */
function readRdbBlob(b: Buffer, p: number): { value: Buffer; next: number } {
  const len = readRdbLen(b, p);
  if (!len.special) return { value: b.subarray(len.next, len.next + len.value), next: len.next + len.value };
  assert.equal(len.value, 3, `unexpected string encoding ${len.value} at ${p}`);
  const clen = readRdbLen(b, len.next);
  const ulen = readRdbLen(b, clen.next);
  const at = ulen.next;
  return { value: lzfDecompress(b.subarray(at, at + clen.value), ulen.value, at), next: at + clen.value };
}

/** DUMP payload footer: 2-byte LE RDB version, then CRC64 of everything before it. */
function checkDumpFooter(payload: Buffer): void {
  const crcAt = payload.length - 8;
  assert.equal(payload.readUInt16LE(crcAt - 2), 10, 'RDB version of a 7.0 DUMP');
  assert.ok(new Crc64().update(payload, 0, crcAt).equals(payload, crcAt), 'CRC64 of DUMP payload');
}

function lzfStringPayload(value: Buffer): Buffer {
  const compressed = lzfCompress(value);
  assert.ok(compressed, 'test value must be compressible');
  const body = Buffer.concat([
    Buffer.from([0x00, 0xc3]), // string type; LZF string encoding
    rdbLen(compressed.length),
    rdbLen(value.length),
    compressed,
    Buffer.from([10, 0]),
  ]);
  return Buffer.concat([body, new Crc64().update(body).digest()]);
}

// ---------------------------------------------------------------------------------------

describe('rdb encodings', () => {
  describe('crc64', () => {
    it('gives the check value of CRC-64/Jones', () => {
      assert.equal(crc64(Buffer.from('123456789')), 0xe9c6d914c4b8d9can);
      assert.equal(crc64(Buffer.alloc(0)), 0n);
    });

    it('matches the bit-by-bit definition at every length around the 16-byte step', () => {
      const data = pseudoRandom(300, 1);
      for (let n = 0; n <= 300; n += n < 70 ? 1 : 23) {
        assert.equal(crc64(data.subarray(0, n)), crc64Reference(data.subarray(0, n)), `length ${n}`);
      }
      // an unaligned view into a bigger buffer
      assert.equal(crc64(data.subarray(3, 250)), crc64Reference(data.subarray(3, 250)));
    });

    it('is the same fed in chunks, with ranges, or resumed from a value', () => {
      const data = pseudoRandom(5000, 2);
      const whole = crc64(data);
      for (const cut of [0, 1, 7, 15, 16, 17, 1000, 4999, 5000]) {
        const c = new Crc64().update(data, 0, cut).update(data, cut);
        assert.equal(c.value(), whole, `cut at ${cut}`);
        assert.equal(new Crc64(crc64(data.subarray(0, cut))).update(data.subarray(cut)).value(), whole);
      }
      assert.throws(() => new Crc64().update(data, 10, 5001), RangeError);
    });

    it('digests to 8 little-endian bytes and compares against them', () => {
      const c = new Crc64().update(Buffer.from('123456789'));
      assert.deepEqual(c.digest(), Buffer.from('cad9b8c414d9c6e9', 'hex'));
      const framed = Buffer.concat([Buffer.from([1, 2]), c.digest()]);
      assert.ok(c.equals(framed, 2));
      assert.ok(!c.equals(framed, 1));
      assert.ok(!c.equals(framed, 3), 'too few bytes left is not equal');
    });
  });

  describe('lzf', () => {
    const dec = (bytes: number[], outLen: number): string => lzfDecompress(Buffer.from(bytes), outLen).toString('latin1');
    const A = 0x61;

    it('decodes literal runs of 1 and 32 bytes', () => {
      assert.equal(dec([0x00, A], 1), 'a');
      const lit = pseudoRandom(32, 3);
      assert.deepEqual(lzfDecompress(Buffer.concat([Buffer.from([31]), lit]), 32), lit);
    });

    it('decodes back-references of every length form, overlapping ones included', () => {
      assert.equal(dec([0x00, A, 0x20, 0x00], 4), 'aaaa'); // L=1: 3 bytes at distance 1
      assert.equal(dec([0x00, A, 0xc0, 0x00], 9), 'a'.repeat(9)); // L=6: 8 bytes
      assert.equal(dec([0x00, A, 0xe0, 0x00, 0x00], 10), 'a'.repeat(10)); // 7+0: 9 bytes
      assert.equal(dec([0x00, A, 0xe0, 0xff, 0x00], 265), 'a'.repeat(265)); // 7+255: 264 bytes
      // a long copy that does not overlap, then a reference at the maximum distance 8192
      const head = pseudoRandom(8192, 4);
      const lits: Buffer[] = [];
      for (let i = 0; i < 8192; i += 32) lits.push(Buffer.from([31]), head.subarray(i, i + 32));
      const stream = Buffer.concat([...lits, Buffer.from([0xe0 | 0x1f, 0xff - 7, 0xff])]);
      const out = lzfDecompress(stream, 8192 + 257);
      assert.deepEqual(out.subarray(8192), head.subarray(0, 257));
    });

    it('reports corrupt input as BAD_LZF at the offending input byte', () => {
      const bad = (bytes: number[], outLen: number, offset: number, detail: RegExp): void =>
        throwsRdb(() => lzfDecompress(Buffer.from(bytes), outLen, BASE), 'BAD_LZF', BASE + offset, detail);
      bad([0x20, 0x00], 3, 0, /behind output position 0/);
      bad([0x00, A, 0x20, 0x01], 4, 2, /2 bytes behind output position 1/);
      bad([0x00, A, 0x05, A], 7, 2, /passes the end of the input/);
      bad([0x02, A, A, A], 2, 0, /exceeds the declared 2/);
      bad([0x00, A, 0x20, 0x00], 3, 2, /exceeds the declared 3/);
      bad([0x00, A, 0x20], 4, 2, /offset byte missing/);
      bad([0x00, A, 0xe0], 4, 2, /length byte missing/);
      bad([0x00, A], 2, 2, /decompressed to 1 bytes, expected 2/);
      bad([], 1, 0, /empty/);
      bad([0x00, A], 0, 0, /zero/);
      bad([0x00, A], 2 ** 31, 0, /cannot expand/); // rejected before allocating 2 GB
    });

    it('round-trips compressible data of every small length and large sizes', () => {
      const patterns: Array<(n: number) => Buffer> = [
        (n) => Buffer.alloc(n, 'x'),
        (n) => Buffer.from('abcdefgh'.repeat(Math.ceil(n / 8)).slice(0, n)),
        (n) => Buffer.from(Array.from({ length: n }, (_, i) => 'ab'.charCodeAt((i * 7) % 3 === 0 ? 1 : 0))),
      ];
      for (const make of patterns) {
        for (let n = 0; n <= 600; n++) {
          const input = make(n);
          const c = lzfCompress(input);
          if (c === null) continue;
          assert.ok(c.length < n, `shrinks at ${n}`);
          assert.deepEqual(lzfDecompress(c, n), input, `length ${n}`);
        }
      }
      const text = Buffer.from(Array.from({ length: 40000 }, (_, i) => `user:${i % 977} name=${i % 13};`).join(''));
      const c = lzfCompress(text);
      assert.ok(c && c.length < text.length / 2);
      assert.deepEqual(lzfDecompress(c, text.length), text);
      const run = Buffer.alloc(100000, 0);
      const cr = lzfCompress(run);
      assert.ok(cr && cr.length < 1200, 'runs use the longest back-references');
      assert.deepEqual(lzfDecompress(cr, run.length), run);
    });

    it('references at most 8192 bytes back', () => {
      const block = pseudoRandom(8192, 5);
      const near = Buffer.concat([block, block]); // repeat at exactly the maximum distance
      const c = lzfCompress(near);
      assert.ok(c && c.length < near.length * 0.6);
      assert.deepEqual(lzfDecompress(c, near.length), near);
      const far = Buffer.concat([block, Buffer.from('z'), block]); // one byte too far
      const cf = lzfCompress(far);
      if (cf) assert.deepEqual(lzfDecompress(cf, far.length), far);
    });

    it('returns null when compression would not shrink the data', () => {
      assert.equal(lzfCompress(Buffer.alloc(0)), null);
      assert.equal(lzfCompress(Buffer.from('aaa')), null);
      assert.equal(lzfCompress(pseudoRandom(64, 6)), null);
      assert.equal(lzfCompress(pseudoRandom(100000, 7)), null);
    });
  });

  describe('ziplist', () => {
    const edges = [
      0n, 1n, 12n, // 4-bit immediate
      13n, -1n, 127n, -128n, // int8
      128n, -129n, 32767n, -32768n, // int16
      32768n, -32769n, 8388607n, -8388608n, // int24
      8388608n, -8388609n, 2147483647n, -2147483648n, // int32
      2147483648n, -2147483649n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n), -(2n ** 53n) - 1n,
      INT64_MAX, INT64_MIN, // int64
    ];

    it('decodes integers at every encoding width edge to Redis decimal text', () => {
      const blob = ziplist(edges.map(zlInt));
      const encodings = new Set(edges.map((v) => zlInt(v)[0]).map((e) => (e >= 0xf1 && e <= 0xfd ? 0xf1 : e)));
      assert.equal(encodings.size, 6, 'test covers C0, D0, E0, F0, FE and F1-FD');
      assert.deepEqual(texts(decodeZiplist(blob, BASE)), edges.map(String));
    });

    it('decodes strings at every length-encoding boundary, zero-copy', () => {
      const lens = [0, 1, 63, 64, 16383, 16384, 70000];
      const strs = lens.map((n, i) => pseudoRandom(n, 10 + i));
      const blob = ziplist(strs.map(zlString));
      const out = decodeZiplist(blob, BASE);
      assert.deepEqual(out, strs);
      assert.equal(out[3].buffer, blob.buffer, 'a view of the blob, not a copy');
    });

    it('handles 5-byte prevlens, unknown count, and empty ziplists', () => {
      const long = pseudoRandom(300, 20);
      const bodies = [zlString(long), zlInt(5n), zlString(Buffer.from('x'))];
      assert.deepEqual(decodeZiplist(ziplist(bodies)), [long, Buffer.from('5'), Buffer.from('x')]);
      assert.deepEqual(decodeZiplist(ziplist(bodies, { bigPrevlen: true })).length, 3);
      assert.equal(decodeZiplist(ziplist(bodies, { count: 0xffff })).length, 3);
      assert.deepEqual(decodeZiplist(ziplist([])), []);
    });

    it('rejects corrupt ziplists with BAD_ENCODING at the offending byte', () => {
      const good = ziplist([zlString(Buffer.from('ab')), zlInt(300n)]); // entries at 10 and 14
      const bad = (blob: Buffer, offset: number, detail: RegExp): void =>
        throwsRdb(() => decodeZiplist(blob, BASE), 'BAD_ENCODING', BASE + offset, detail);
      const patch = (at: number, byte: number): Buffer => {
        const b = Buffer.from(good);
        b[at] = byte;
        return b;
      };
      bad(good.subarray(0, 10), 0, /shorter/);
      bad(Buffer.concat([good, Buffer.from([0xff])]), 0, /header says 19 bytes, blob has 20/);
      bad(patch(good.length - 1, 0x00), good.length - 1, /end marker/);
      bad(patch(4, 200), 4, /tail offset 200 is past/);
      bad(patch(4, 10), 4, /tail offset 10, but the last entry is at 14/);
      bad(patch(8, 3), 8, /header counts 3 entries, found 2/);
      bad(patch(11, 0xc1), 11, /unknown encoding 0xC1/);
      bad(patch(11, 0x09), 12, /string of 9 bytes passes the end/);
      bad(patch(14, 3), 14, /prevlen 3 but the previous entry has 4 bytes/);
      bad(patch(14, 0xff), 14, /end marker before the end/);
      bad(patch(15, 0xe0), 15, /8-byte integer passes the end/);
      const bigTail = ziplist([zlString(Buffer.from('ab'))]);
      bigTail[10] = 0xfe; // a 5-byte prevlen that does not fit
      bad(bigTail, 10, /5-byte prevlen passes the end/);
    });
  });

  describe('listpack', () => {
    const edges = [
      0n, 127n, // 7-bit uint
      128n, 4095n, -1n, -4096n, // 13-bit
      4096n, -4097n, 32767n, -32768n, // 16-bit
      32768n, -32769n, 8388607n, -8388608n, // 24-bit
      8388608n, -8388609n, 2147483647n, -2147483648n, // 32-bit
      2147483648n, 2n ** 53n - 1n, -(2n ** 53n) + 1n, 2n ** 53n, INT64_MAX, INT64_MIN, // 64-bit
    ];

    it('decodes integers at every encoding width edge', () => {
      const blob = listpack(edges.map(lpInt));
      assert.equal(new Set(edges.map((v) => lpInt(v)[0] & 0xe0)).size, 4);
      assert.deepEqual(texts(decodeListpack(blob, BASE)), edges.map(String));
      const r = new ListpackReader(blob, BASE);
      assert.equal(r.count, edges.length);
      for (const v of edges) assert.equal(r.nextBigInt(), v);
      assert.ok(!r.hasNext());
    });

    it('decodes strings at 63/64 and 4095/4096 bytes and every backlen size', () => {
      // element sizes 127/128 switch the backlen from 1 to 2 bytes, 16382/16383 from 2 to 3
      const lens = [0, 63, 64, 125, 126, 4095, 4096, 16377, 16378, 300000];
      const strs = lens.map((n, i) => pseudoRandom(n, 30 + i));
      const blob = listpack(strs.map(lpString));
      const out = decodeListpack(blob, BASE);
      assert.deepEqual(out, strs);
      assert.equal(out[1].buffer, blob.buffer, 'a view of the blob, not a copy');
    });

    it('accepts an unknown count (65535) and an empty listpack', () => {
      assert.equal(decodeListpack(listpack([lpInt(1n), lpInt(2n)], 0xffff)).length, 2);
      assert.deepEqual(decodeListpack(listpack([])), []);
    });

    it('reads numbers, bytes and canonical decimal strings through ListpackReader', () => {
      const blob = listpack([
        lpInt(42n),
        lpInt(-4096n),
        lpString(Buffer.from('-123')),
        lpString(Buffer.from('9223372036854775807')),
        lpInt(INT64_MIN),
        lpString(Buffer.from('x')),
        lpString(Buffer.from('field')),
        lpInt(7n),
      ]);
      const r = new ListpackReader(blob, BASE);
      assert.equal(r.offset, BASE + 6);
      assert.equal(r.nextInt(), 42);
      assert.equal(r.nextInt(), -4096);
      assert.equal(r.nextInt(), -123);
      assert.equal(r.nextBigInt(), INT64_MAX);
      const at = r.offset;
      throwsRdb(() => r.nextInt(), 'BAD_ENCODING', at, /does not fit a JS number/);
      throwsRdb(() => r.nextInt(), 'BAD_ENCODING', r.offset, /not a decimal integer/);
      r.skip();
      assert.deepEqual(r.nextBuffer(), Buffer.from('7'));
      assert.ok(!r.hasNext());
      assert.equal(r.offset, BASE + blob.length - 1);
      throwsRdb(() => r.nextBuffer(), 'BAD_ENCODING', BASE + blob.length - 1, /past the last of 8/);

      const strict = (s: string): void => {
        const rr = new ListpackReader(listpack([lpString(Buffer.from(s))]), BASE);
        throwsRdb(() => rr.nextBigInt(), 'BAD_ENCODING', BASE + 6);
      };
      for (const s of ['', '-', '+1', '01', '-0', ' 1', '1 ', '1.0', '9223372036854775808', '-9223372036854775809']) {
        strict(s);
      }
      const zero = new ListpackReader(listpack([lpString(Buffer.from('0'))]));
      assert.equal(zero.nextInt(), 0);
    });

    it('rejects corrupt listpacks with BAD_ENCODING at the offending byte', () => {
      // elements: "ab" at 6 (3 bytes + 1 backlen), 300 at 10 (13-bit: 2 + 1 backlen), EOF at 13
      const good = listpack([lpString(Buffer.from('ab')), lpInt(300n)]);
      const bad = (blob: Buffer, offset: number, detail: RegExp): void =>
        throwsRdb(() => new ListpackReader(blob, BASE), 'BAD_ENCODING', BASE + offset, detail);
      const patch = (at: number, byte: number): Buffer => {
        const b = Buffer.from(good);
        b[at] = byte;
        return b;
      };
      bad(good.subarray(0, 6), 0, /shorter/);
      bad(Buffer.concat([good, Buffer.from([0xff])]), 0, /header says 14 bytes, blob has 15/);
      bad(patch(13, 0x00), 13, /end marker/);
      bad(patch(4, 3), 4, /header counts 3 elements, found 2/);
      bad(patch(6, 0xf5), 6, /unknown encoding 0xF5/);
      bad(patch(6, 0xff), 6, /end marker before the end/);
      bad(patch(6, 0x89), 6, /element of 10 bytes passes the end/);
      bad(patch(9, 4), 9, /backlen does not encode the element size 3/);
      bad(patch(12, 0x82), 12, /backlen does not encode the element size 2/);
      bad(patch(10, 0xf4), 10, /element of 9 bytes passes the end/);
      const cut = listpack([lpString(Buffer.alloc(5000))]);
      cut.writeUInt32LE(0xfffffff0, 7); // a 32-bit string length far beyond the blob
      bad(cut, 6, /passes the end/);
    });
  });

  describe('intset', () => {
    const intset = (width: number, values: bigint[], length = values.length): Buffer => {
      const b = Buffer.alloc(8 + values.length * width);
      b.writeUInt32LE(width, 0);
      b.writeUInt32LE(length, 4);
      values.forEach((v, i) => {
        if (width === 8) b.writeBigInt64LE(v, 8 + i * 8);
        else b.writeIntLE(Number(v), 8 + i * width, width);
      });
      return b;
    };

    it('decodes 16-, 32- and 64-bit members to decimal text', () => {
      const sets: Array<[number, bigint[]]> = [
        [2, [-32768n, -1n, 0n, 32767n]],
        [4, [-2147483648n, -32769n, 32768n, 2147483647n]],
        [8, [INT64_MIN, -(2n ** 53n) - 1n, -(2n ** 32n), -1n, 0n, 4294967295n, 2n ** 32n, 2n ** 53n, INT64_MAX]],
      ];
      for (const [width, values] of sets) {
        assert.deepEqual(texts(decodeIntset(intset(width, values), BASE)), values.map(String));
      }
      assert.deepEqual(decodeIntset(intset(2, [])), []);
    });

    it('rejects corrupt intsets with BAD_ENCODING', () => {
      const bad = (blob: Buffer, offset: number, detail: RegExp): void =>
        throwsRdb(() => decodeIntset(blob, BASE), 'BAD_ENCODING', BASE + offset, detail);
      bad(Buffer.alloc(7), 0, /shorter/);
      bad(intset(2, [1n]).fill(3, 0, 1), 0, /unknown encoding 3/);
      bad(intset(2, [1n, 2n], 3), 4, /3 members of 2 bytes need 14 bytes, blob has 12/);
      bad(intset(4, [1n, 2n], 0x7fffffff), 4, /need/); // a huge length is checked, never allocated
      bad(intset(2, [1n, 1n]), 10, /not strictly ascending/);
      bad(intset(4, [5n, -5n]), 12, /not strictly ascending/);
      bad(intset(8, [2n ** 40n, 1n]), 16, /not strictly ascending/);
      bad(intset(8, [-1n, INT64_MIN]), 16, /not strictly ascending/);
    });
  });

  describe('zipmap', () => {
    const zmLen = (n: number): Buffer => {
      if (n < 254) return Buffer.from([n]);
      const b = Buffer.alloc(5);
      b[0] = 254;
      b.writeUInt32LE(n, 1);
      return b;
    };
    const zipmap = (pairs: Array<[Buffer, Buffer, number?]>, zmlen = pairs.length): Buffer =>
      Buffer.concat([
        Buffer.from([zmlen]),
        ...pairs.flatMap(([f, v, free = 0]) => [zmLen(f.length), f, zmLen(v.length), Buffer.from([free]), v, Buffer.alloc(free, 0xee)]),
        Buffer.from([0xff]),
      ]);

    it('decodes fields and values, skipping free space, with 253 plain and 254 escaped lengths', () => {
      const pairs: Array<[Buffer, Buffer, number?]> = [
        [Buffer.from('foo'), Buffer.from('bar')],
        [Buffer.alloc(253, 'k'), Buffer.from('v253'), 3],
        [Buffer.from('big'), pseudoRandom(70000, 40)],
        [Buffer.alloc(0), Buffer.alloc(0), 4],
      ];
      const blob = zipmap(pairs);
      assert.equal(blob[1 + 4 + 1 + 3 + 1], 253, 'a 253 length is a single byte');
      const out = decodeZipmap(blob, BASE);
      assert.deepEqual(out, pairs.flatMap(([f, v]) => [f, v]));
      assert.equal(out[5].buffer, blob.buffer, 'a view of the blob, not a copy');
      assert.equal(decodeZipmap(zipmap(pairs, 254)).length, 8, '254+ means count unknown');
      assert.deepEqual(decodeZipmap(Buffer.from([0, 0xff])), []);
    });

    it('rejects corrupt zipmaps with BAD_ENCODING', () => {
      const good = zipmap([[Buffer.from('ab'), Buffer.from('cd')]]); // 01 02 a b 02 00 c d ff
      const bad = (blob: Buffer, offset: number, detail: RegExp): void =>
        throwsRdb(() => decodeZipmap(blob, BASE), 'BAD_ENCODING', BASE + offset, detail);
      const patch = (at: number, byte: number): Buffer => {
        const b = Buffer.from(good);
        b[at] = byte;
        return b;
      };
      bad(Buffer.from([0xff]), 0, /shorter/);
      bad(patch(8, 0), 8, /end marker/);
      bad(patch(0, 2), 0, /header counts 2 pairs, found 1/);
      bad(patch(1, 9), 2, /field of 9 bytes passes the end/);
      bad(patch(4, 0xff), 4, /end marker where a value length belongs/);
      bad(patch(5, 1), 6, /value of 2 bytes \(\+1 free\) passes the end/);
      bad(Buffer.from([1, 254, 1, 0xff]), 1, /5-byte field length passes the end/);
      bad(Buffer.from([1, 1, 0x61, 0xff]), 3, /value missing at the end/);
      bad(Buffer.from([1, 1, 0x61, 0x00, 0xff]), 4, /free-space byte missing/);
      bad(Buffer.from([1, 1, 0x61, 0xff, 0xff]), 3, /end marker where a value length belongs/);
    });
  });

  describe('fixture RDB files', function () {
    before(function () {
      assert.ok(existsSync(FIXTURES), `the RDB fixtures are missing at ${FIXTURES}`);
    });

    it('end with the CRC64 of everything before (every version, every file)', () => {
      let checked = 0;
      for (const dir of readdirSync(FIXTURES)) {
        const full = path.join(FIXTURES, dir);
        if (!dir.startsWith('redis-')) continue;
        for (const file of readdirSync(full).filter((f) => f.endsWith('.rdb'))) {
          const rdb = readFileSync(path.join(full, file));
          const at = rdb.length - 8;
          if (rdb.subarray(at).every((b) => b === 0)) continue; // written with rdbchecksum no
          assert.ok(new Crc64().update(rdb, 0, at).equals(rdb, at), `${dir}/${file}`);
          checked++;
        }
      }
      assert.ok(checked >= 9, `checked ${checked} files`);
    });

    /** The value blob of `key` of RDB type `type` (found by its type byte + key bytes). */
    const valueAt = (rdb: Buffer, type: number, key: string): number => {
      const needle = Buffer.concat([Buffer.from([type]), rdbLen(key.length), Buffer.from(key)]);
      const at = rdb.indexOf(needle);
      assert.ok(at >= 0, `key ${key} of type ${type} not found`);
      return at + needle.length;
    };
    const expected = (version: string, key: string): unknown =>
      JSON.parse(readFileSync(path.join(FIXTURES, version, 'all-types.json'), 'utf8')).databases['0'][key].value;

    it('decode 2.8 ziplists (list, hash, zset) and intsets to the recorded values', () => {
      const rdb = readFileSync(path.join(FIXTURES, 'redis-2.8.24', 'all-types.rdb'));
      const blob = (type: number, key: string): Buffer => readRdbBlob(rdb, valueAt(rdb, type, key)).value;
      assert.deepEqual(texts(decodeZiplist(blob(10, 'list:ints'))), expected('redis-2.8.24', 'list:ints'));

      const hash = texts(decodeZiplist(blob(13, 'hash:int-values')));
      const pairs: Record<string, string> = {};
      for (let i = 0; i < hash.length; i += 2) pairs[hash[i]] = hash[i + 1];
      assert.deepEqual(pairs, expected('redis-2.8.24', 'hash:int-values'));

      const zset = texts(decodeZiplist(blob(12, 'zset:int-members')));
      const want = expected('redis-2.8.24', 'zset:int-members') as Array<[string, string]>;
      assert.deepEqual(zset, want.flat());

      for (const key of ['set:intset-16', 'set:intset-32', 'set:intset-64', 'set:intset-500']) {
        const members = texts(decodeIntset(blob(11, key)));
        assert.deepEqual([...members].sort(), [...(expected('redis-2.8.24', key) as string[])].sort(), key);
        const asc = members.map(BigInt);
        assert.ok(asc.every((v, i) => i === 0 || asc[i - 1] < v), `${key} ascending`);
      }
    });

    it('decode 6.2 quicklist nodes (ziplists, LZF-compressed ones included)', () => {
      const rdb = readFileSync(path.join(FIXTURES, 'redis-6.2.16', 'all-types.rdb'));
      for (const key of ['list:ints', 'list:nodes-of-4-compressed-depth2', 'list:mixed-sizes']) {
        const nodes = readRdbLen(rdb, valueAt(rdb, 14, key));
        let p = nodes.next;
        const items: string[] = [];
        for (let n = 0; n < nodes.value; n++) {
          const node = readRdbBlob(rdb, p);
          items.push(...texts(decodeZiplist(node.value)));
          p = node.next;
        }
        assert.deepEqual(items, expected('redis-6.2.16', key), key);
      }
    });
  });

  describe('against a live redis-server 7.0', function () {
    let server: RedisServer;
    let redis: Redis;

    before(async function () {
      server = await startRedis();
      redis = server.client();
      const version = ((await redis.info('server')).match(/redis_version:(\S+)/) ?? [])[1] ?? '';
      // the payload layouts below are 7.0's, the version CI installs
      assert.ok(version.startsWith('7.0.'), `these payload checks expect redis-server 7.0, found ${version}`);
    });

    after(() => server?.stop());

    const dump = async (key: string): Promise<Buffer> => {
      const payload = await redis.dumpBuffer(key);
      checkDumpFooter(payload);
      return payload;
    };

    it('hash listpack (type 16) with every integer width and string length boundary', async () => {
      await redis.config('SET', 'hash-max-listpack-value', '8192');
      const values: Buffer[] = [
        ...[0n, 127n, 128n, -4096n, 4095n, -32768n, 32767n, -8388608n, 8388607n, -2147483648n, 2147483647n, INT64_MIN, INT64_MAX]
          .map((v) => Buffer.from(String(v))),
        pseudoRandom(63, 50), pseudoRandom(64, 51), pseudoRandom(4095, 52), pseudoRandom(4096, 53),
        Buffer.alloc(0), Buffer.from('007'), Buffer.from('9223372036854775808'),
      ];
      const flat = values.flatMap((v, i) => [Buffer.from(`f${i}`), v]);
      await redis.hset('h', ...flat);
      assert.equal(await redis.object('ENCODING', 'h'), 'listpack');
      const payload = await dump('h');
      assert.equal(payload[0], 16);
      const { value: blob } = readRdbBlob(payload, 1);
      assert.deepEqual(decodeListpack(blob), await redis.callBuffer('HGETALL', 'h'));
      assert.deepEqual(decodeListpack(blob), flat);
    });

    it('zset listpack (type 17): members and scores', async () => {
      const scores = ['1', '-1', '1.5', '1e+100', '-1e-100', 'inf', '-inf', '9007199254740993', '0', '3.141592653589793'];
      const args = scores.flatMap((s, i) => [s, `m${i}`]);
      await redis.zadd('z', ...args);
      const payload = await dump('z');
      assert.equal(payload[0], 17);
      const items = texts(decodeListpack(readRdbBlob(payload, 1).value));
      // ioredis speaks RESP3, where WITHSCORES replies are [member, score] pairs
      const reply = (await redis.callBuffer('ZRANGE', 'z', '0', '-1', 'WITHSCORES')) as Buffer[] | Buffer[][];
      const fromServer = texts(reply.flat());
      const score = (s: string): number => (s === 'inf' ? Infinity : s === '-inf' ? -Infinity : Number(s));
      assert.deepEqual(
        items.map((s, i) => (i % 2 ? score(s) : s)),
        fromServer.map((s, i) => (i % 2 ? score(s) : s)),
      );
    });

    it('intsets (type 11) of 16-bit and of 64-bit members', async () => {
      const small = ['-32768', '-1', '0', '5', '32767'];
      const wide = [String(INT64_MIN), '-2147483649', '0', '2147483648', String(INT64_MAX)];
      await redis.sadd('s16', ...small);
      await redis.sadd('s64', ...wide);
      for (const [key, members] of [['s16', small], ['s64', wide]] as const) {
        const payload = await dump(key);
        assert.equal(payload[0], 11);
        const { value: blob } = readRdbBlob(payload, 1);
        assert.equal(blob.readUInt32LE(0), key === 's16' ? 2 : 8);
        assert.deepEqual(texts(decodeIntset(blob)), members);
      }
    });

    it('quicklist-2 list (type 18) with several listpack nodes, LZF-compressed ones included', async () => {
      await redis.config('SET', 'list-max-listpack-size', '8');
      await redis.config('SET', 'list-compress-depth', '1');
      const elements = Array.from({ length: 60 }, (_, i) => (i % 7 === 0 ? String(i * 1000 - 7) : `element-${i}-`.repeat(6)));
      await redis.rpush('l', ...elements);
      const payload = await dump('l');
      assert.equal(payload[0], 18);
      const nodes = readRdbLen(payload, 1);
      assert.ok(nodes.value >= 8, `${nodes.value} nodes`);
      let p = nodes.next;
      let lzfNodes = 0;
      const items: string[] = [];
      for (let n = 0; n < nodes.value; n++) {
        const container = readRdbLen(payload, p);
        assert.equal(container.value, 2, 'PACKED node');
        if (payload[container.next] === 0xc3) lzfNodes++;
        const node = readRdbBlob(payload, container.next);
        items.push(...texts(decodeListpack(node.value, container.next)));
        p = node.next;
      }
      assert.ok(lzfNodes > 0, 'some nodes were LZF-compressed by Redis');
      assert.deepEqual(items, elements);
      assert.deepEqual(items, await redis.lrange('l', 0, -1));
    });

    it('an LZF string that Redis compressed decodes to its value', async () => {
      const value = Buffer.from('compressible '.repeat(800));
      await redis.set('str', value);
      const payload = await dump('str');
      assert.equal(payload[0], 0);
      assert.equal(payload[1], 0xc3, 'Redis stored it LZF-compressed');
      assert.deepEqual(readRdbBlob(payload, 1).value, value);
    });

    it('RESTOREs hand-built payloads whose strings our LZF compressed', async () => {
      const values = [
        Buffer.from('compressible '.repeat(800)),
        Buffer.alloc(50000, 0),
        Buffer.concat([pseudoRandom(8192, 60), pseudoRandom(8192, 60)]),
        Buffer.from(Array.from({ length: 3000 }, (_, i) => `k${i % 50}:v${i % 7}|`).join('')),
      ];
      for (const [i, value] of values.entries()) {
        await redis.restore(`restored:${i}`, 0, lzfStringPayload(value));
        assert.deepEqual(await redis.getBuffer(`restored:${i}`), value, `value ${i}`);
      }
      // Redis checks the CRC64: a payload with a wrong one is refused, so the ones above
      // were accepted because our CRC64 matches Redis's.
      const corrupt = lzfStringPayload(values[0]);
      corrupt[corrupt.length - 1] ^= 1;
      await assert.rejects(redis.restore('restored:bad', 0, corrupt), /checksum/);
    });
  });
});
