import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Crc64 } from '../lib/rdb/crc64';
import { RdbError, type RdbErrorCode } from '../lib/rdb/errors';
import { RdbParser } from '../lib/rdb/parser';
import { listRdbFixtures } from './support/fixtures';

function parseAll(data: Buffer, chunk = data.length): void {
  const p = new RdbParser();
  for (let at = 0; at < data.length; at += chunk) p.push(data.subarray(at, at + chunk));
  p.finish();
}

function expectRdbError(data: Buffer, code: RdbErrorCode, offset?: number, chunk?: number): RdbError {
  try {
    parseAll(data, chunk);
  } catch (e) {
    assert.ok(e instanceof RdbError, `expected an RdbError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (offset !== undefined) assert.equal(e.offset, offset, e.message);
    assert.match(e.message, new RegExp(`at byte ${e.offset}`));
    return e;
  }
  assert.fail(`expected ${code}, but the input parsed`);
}

/** An RDB of the given version around `body` (opcodes and keys), with a valid checksum. */
function rdb(version: number, body: number[] | Buffer): Buffer {
  const head = Buffer.from(`REDIS${String(version).padStart(4, '0')}`, 'latin1');
  const withEof = Buffer.concat([head, Buffer.from(body), Buffer.from([0xff])]);
  return Buffer.concat([withEof, new Crc64().update(withEof).digest()]);
}

const str = (s: string): number[] => [s.length, ...Buffer.from(s, 'latin1')];

describe('RDB parser on bad input', () => {
  it('rejects a wrong magic', () => {
    expectRdbError(Buffer.from('REDIX0009\xff', 'latin1'), 'BAD_MAGIC', 0);
    expectRdbError(Buffer.from('hello world, this is not an rdb', 'latin1'), 'BAD_MAGIC', 0);
  });

  it('rejects versions outside 1 to 12', () => {
    for (const v of ['0000', '0013', '0100', '00a1']) {
      const e = expectRdbError(Buffer.from(`REDIS${v}\xff`, 'latin1'), 'BAD_VERSION', 5);
      assert.match(e.message, new RegExp(v));
    }
  });

  it('rejects an unknown type or opcode, naming it and its offset', () => {
    const e = expectRdbError(rdb(12, [26, ...str('k'), 0]), 'UNKNOWN_TYPE', 9);
    assert.match(e.message, /26/);
    expectRdbError(rdb(12, [8, ...str('k')]), 'UNKNOWN_TYPE', 9);
    expectRdbError(rdb(9, [6, ...str('k'), 1]), 'UNKNOWN_TYPE', 9);
  });

  it('detects a checksum mismatch at the checksum', () => {
    const good = rdb(9, [0, ...str('k'), ...str('v')]);
    parseAll(good);
    const bad = Buffer.from(good);
    bad[bad.length - 1] ^= 1;
    expectRdbError(bad, 'BAD_CHECKSUM', bad.length - 8);
    const flipped = Buffer.from(good);
    flipped[13] ^= 0x20; // the value byte: a checksum mismatch however it is chunked
    expectRdbError(flipped, 'BAD_CHECKSUM', bad.length - 8, 3);
  });

  it('accepts a zero checksum as "disabled"', () => {
    const good = rdb(9, [0, ...str('k'), ...str('v')]);
    good.fill(0, good.length - 8);
    parseAll(good);
  });

  it('rejects bad LZF data with the offset of the compressed bytes', () => {
    // 0xC3 = LZF string: compressed length 3, uncompressed 10, then a back-reference
    // to before the start of the output.
    const body = [0, ...str('k'), 0xc3, 3, 10, 0xe0, 0x05, 0x00];
    expectRdbError(rdb(9, body), 'BAD_LZF');
    // an uncompressed length no LZF stream can reach from 3 bytes
    expectRdbError(rdb(9, [0, ...str('k'), 0xc3, 3, 0x80, 0x10, 0, 0, 0, 1, 2, 3]), 'BAD_LZF', 12);
  });

  it('rejects absurd lengths without allocating them', () => {
    const before = process.memoryUsage().arrayBuffers;
    // a 4 GB string: over the 512 MB string limit
    expectRdbError(rdb(9, [0, ...str('k'), 0x80, 0xff, 0xff, 0xff, 0xff, 1, 2]), 'BAD_LENGTH', 12);
    // a 2^62 length
    expectRdbError(rdb(9, [1, ...str('k'), 0x81, 0x40, 0, 0, 0, 0, 0, 0, 0]), 'BAD_LENGTH', 12);
    // a list claiming 4 billion elements, of which the file holds one
    const head = Buffer.from('REDIS0009', 'latin1');
    expectRdbError(Buffer.concat([head, Buffer.from([1, ...str('k'), 0x80, 0xff, 0xff, 0xff, 0xff, ...str('a')])]), 'TRUNCATED', 19);
    // a 400 MB string (under the limit) in a tiny file: truncated, never allocated
    expectRdbError(rdb(9, [0, ...str('k'), 0x80, 0x18, 0, 0, 0, 1, 2]), 'TRUNCATED');
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'no large allocation');
  });

  it('rejects a bad length encoding byte', () => {
    expectRdbError(rdb(9, [1, ...str('k'), 0x82]), 'BAD_LENGTH', 12);
    expectRdbError(rdb(9, [0, ...str('k'), 0xc7]), 'BAD_ENCODING', 12);
  });

  it('rejects bytes after the end of the snapshot unless asked to keep them', () => {
    const good = rdb(9, [0, ...str('k'), ...str('v')]);
    const extra = Buffer.concat([good, Buffer.from('*1\r\n$4\r\nPING\r\n')]);
    expectRdbError(extra, 'TRAILING_DATA', good.length);
    const p = new RdbParser({ allowTrailingData: true });
    p.push(extra);
    p.finish();
    assert.equal(p.trailing.toString(), '*1\r\n$4\r\nPING\r\n');
  });

  it('names the key whose value was cut short', () => {
    const full = rdb(9, [1, ...str('mylist'), 3, ...str('a'), ...str('b'), ...str('c')]);
    const e = expectRdbError(full.subarray(0, 22), 'TRUNCATED', 22);
    assert.match(e.message, /key "mylist"/);
  });

  describe('truncation at every byte', () => {
    const small = listRdbFixtures().filter((f) => !f.name.startsWith('all-types'));
    it(`of ${small.length} small fixtures ends in TRUNCATED at the cut, never a crash`, () => {
      let cases = 0;
      for (const fx of small) {
        const data = readFileSync(fx.rdbPath);
        parseAll(data);
        for (let cut = 0; cut < data.length; cut++) {
          const e = expectRdbError(data.subarray(0, cut), 'TRUNCATED', cut);
          assert.ok(e.message.length > 0);
          cases++;
        }
      }
      assert.ok(cases > 5000, `${cases} cases`);
    });

    it('of a large fixture, at a stride, fed in small chunks', () => {
      const fx = listRdbFixtures().find((f) => f.release === 'redis-7.4.1' && f.name === 'all-types');
      assert.ok(fx);
      const data = readFileSync(fx.rdbPath);
      for (let cut = 0; cut < data.length; cut += 997) expectRdbError(data.subarray(0, cut), 'TRUNCATED', cut, 1500);
    });
  });
});
