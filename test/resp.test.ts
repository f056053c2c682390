import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CommandWriter,
  encodeCommand,
  encodeCommands,
  RespAttributed,
  RespError,
  RespMap,
  RespParser,
  RespProtocolError,
  RespPush,
  RespSet,
  RespVerbatim,
  type CommandArg,
  type RespParserOptions,
  type RespProtocolErrorCode,
  type RespValue,
} from '../lib/resp';
import { freePort } from './support/net';
import { prng } from './support/random';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

interface Parsed {
  values: RespValue[];
  sizes: number[];
}

/** Pushes every chunk, draining after each one as a socket handler would. */
function parseChunks(chunks: Buffer[], options?: RespParserOptions): Parsed {
  const parser = new RespParser(options);
  const values: RespValue[] = [];
  const sizes: number[] = [];
  for (const chunk of chunks) {
    parser.push(chunk);
    let v: RespValue | undefined;
    while ((v = parser.next()) !== undefined) {
      values.push(v);
      sizes.push(parser.lastSize);
    }
  }
  assert.equal(parser.bufferedBytes, 0, 'all bytes consumed');
  return { values, sizes };
}

function parseOne(input: string | Buffer, options?: RespParserOptions): RespValue {
  const { values } = parseChunks([typeof input === 'string' ? b(input) : input], options);
  assert.equal(values.length, 1);
  return values[0];
}

function byteByByte(bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
  return chunks;
}

function randomChunks(bytes: Buffer, random: () => number, maxChunk: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let off = 0; off < bytes.length; ) {
    const n = 1 + Math.floor(random() * maxChunk);
    chunks.push(bytes.subarray(off, off + n));
    off += n;
  }
  return chunks;
}

function expectProtocolError(fn: () => unknown, code: RespProtocolErrorCode, offset: number, byte?: number): RespProtocolError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RespProtocolError, `expected RespProtocolError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.offset, offset, caught.message);
  if (byte !== undefined) assert.equal(caught.byte, byte, caught.message);
  return caught;
}

/** Feeds `chunks`, draining after each, and returns the error the parser throws. */
function failingParse(chunks: Buffer[], options?: RespParserOptions): () => void {
  return () => {
    const parser = new RespParser(options);
    for (const chunk of chunks) {
      parser.push(chunk);
      while (parser.next() !== undefined);
    }
    assert.fail('no error thrown');
  };
}

describe('lib/resp parser: types', () => {
  it('simple string, error, blob error', () => {
    assert.equal(parseOne('+OK\r\n'), 'OK');
    assert.equal(parseOne('+\r\n'), '');
    assert.equal(parseOne(Buffer.from('+héllo\r\n')), 'héllo');
    const err = parseOne('-WRONGTYPE Operation against a key\r\n');
    assert.ok(err instanceof RespError);
    assert.equal(err.message, 'WRONGTYPE Operation against a key');
    assert.equal(err.code, 'WRONGTYPE');
    const bare = parseOne('-ERR\r\n');
    assert.ok(bare instanceof RespError);
    assert.equal(bare.code, 'ERR');
    const blob = parseOne('!21\r\nSYNTAX invalid syntax\r\n');
    assert.ok(blob instanceof RespError);
    assert.equal(blob.message, 'SYNTAX invalid syntax');
    assert.equal(blob.code, 'SYNTAX');
  });

  it('integers: exact numbers, bigint beyond 2^53', () => {
    assert.equal(parseOne(':0\r\n'), 0);
    assert.ok(Object.is(parseOne(':-0\r\n'), 0));
    assert.equal(parseOne(':-42\r\n'), -42);
    assert.equal(parseOne(':+7\r\n'), 7);
    assert.equal(parseOne(':123456789012345\r\n'), 123456789012345);
    assert.equal(parseOne(':9007199254740991\r\n'), 9007199254740991);
    assert.equal(parseOne(':-9007199254740991\r\n'), -9007199254740991);
    assert.equal(parseOne(':0000000000000000042\r\n'), 42);
    assert.equal(parseOne(':9007199254740993\r\n'), 9007199254740993n);
    assert.equal(parseOne(':9223372036854775807\r\n'), 9223372036854775807n);
    assert.equal(parseOne(':-9223372036854775808\r\n'), -9223372036854775808n);
  });

  it('bulk strings, including empty and null', () => {
    assert.deepEqual(parseOne('$5\r\nhello\r\n'), b('hello'));
    assert.deepEqual(parseOne('$0\r\n\r\n'), Buffer.alloc(0));
    assert.equal(parseOne('$-1\r\n'), null);
  });

  it('binary bulk with CR, LF and every byte value inside', () => {
    const payload = Buffer.alloc(256 * 2);
    for (let i = 0; i < 256; i++) payload[i] = i;
    payload.write('\r\n$3\r\n*1\r\n', 256, 'latin1');
    const wire = Buffer.concat([b(`$${payload.length}\r\n`), payload, b('\r\n')]);
    for (const chunks of [[wire], byteByByte(wire)]) {
      const { values, sizes } = parseChunks(chunks);
      assert.deepEqual(values, [payload]);
      assert.deepEqual(sizes, [wire.length]);
    }
  });

  it('arrays, including empty, null and nested', () => {
    assert.deepEqual(parseOne('*0\r\n'), []);
    assert.equal(parseOne('*-1\r\n'), null);
    assert.deepEqual(parseOne('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$-1\r\n'), [b('SET'), b('k'), null]);
    assert.deepEqual(parseOne('*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n'), [[1, 2, 3], ['Hello', new RespError('World')]]);
    assert.deepEqual(parseOne('*3\r\n*0\r\n*-1\r\n*1\r\n*1\r\n*0\r\n'), [[], null, [[[]]]]);
  });

  it('RESP3 null, booleans, doubles, big numbers', () => {
    assert.equal(parseOne('_\r\n'), null);
    assert.equal(parseOne('#t\r\n'), true);
    assert.equal(parseOne('#f\r\n'), false);
    assert.equal(parseOne(',3.141\r\n'), 3.141);
    assert.equal(parseOne(',-0.5\r\n'), -0.5);
    assert.equal(parseOne(',10\r\n'), 10);
    assert.equal(parseOne(',1.5e+300\r\n'), 1.5e300);
    assert.equal(parseOne(',1E-3\r\n'), 0.001);
    assert.equal(parseOne(',.5\r\n'), 0.5);
    assert.equal(parseOne(',inf\r\n'), Infinity);
    assert.equal(parseOne(',+inf\r\n'), Infinity);
    assert.equal(parseOne(',-inf\r\n'), -Infinity);
    assert.ok(Number.isNaN(parseOne(',nan\r\n')));
    assert.ok(Number.isNaN(parseOne(',-nan\r\n')));
    assert.equal(parseOne('(3492890328409238509324850943850943825024385\r\n'), 3492890328409238509324850943850943825024385n);
    assert.equal(parseOne('(-12\r\n'), -12n);
  });

  it('verbatim strings keep their format', () => {
    const v = parseOne('=15\r\ntxt:Some string\r\n');
    assert.deepEqual(v, new RespVerbatim('txt', b('Some string')));
    assert.ok(v instanceof RespVerbatim);
    assert.equal(v.toString(), 'Some string');
    assert.deepEqual(parseOne('=4\r\nmkd:\r\n'), new RespVerbatim('mkd', Buffer.alloc(0)));
  });

  it('maps, sets, pushes', () => {
    const map = parseOne('%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n#f\r\n');
    assert.deepEqual(map, new RespMap(['first', 1, b('second'), false]));
    assert.ok(map instanceof RespMap);
    assert.equal(map.size, 2);
    assert.equal(map.get('first'), 1);
    assert.equal(map.get('second'), false);
    assert.equal(map.get(b('second')), false);
    assert.equal(map.get('third'), undefined);
    assert.deepEqual([...map], [
      ['first', 1],
      [b('second'), false],
    ]);
    assert.deepEqual(parseOne('~3\r\n+a\r\n:1\r\n$1\r\nb\r\n'), new RespSet(['a', 1, b('b')]));
    assert.deepEqual(parseOne('>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n'), new RespPush([b('message'), b('ch'), b('hi')]));
    assert.deepEqual(parseOne('%0\r\n'), new RespMap([]));
    assert.deepEqual(parseOne('~0\r\n'), new RespSet([]));
    assert.deepEqual(parseOne('>0\r\n'), new RespPush([]));
    assert.deepEqual(parseOne('%1\r\n*2\r\n:1\r\n:2\r\n~1\r\n%1\r\n_\r\n#t\r\n'), new RespMap([[1, 2], new RespSet([new RespMap([null, true])])]));
  });

  describe('attributes', () => {
    // The examples of the RESP3 specification.
    const top = '|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n';
    const nested = '*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n';
    const popularity = new RespMap(['key-popularity', new RespMap([b('a'), 0.1923, b('b'), 0.0012])]);

    it('are skipped by default, their bytes counted in the value they annotate', () => {
      const { values, sizes } = parseChunks([b(top + nested + '+after\r\n')]);
      assert.deepEqual(values, [[2039123, 9543892], [1, 2, 3], 'after']);
      assert.deepEqual(sizes, [top.length, nested.length, 8]);
    });

    it('are attached with keepAttributes, to scalars and aggregates, at any depth', () => {
      const keep = { keepAttributes: true };
      assert.deepEqual(parseOne(top, keep), new RespAttributed(popularity, [2039123, 9543892]));
      assert.deepEqual(parseOne(nested, keep), [1, 2, new RespAttributed(new RespMap(['ttl', 3600]), 3)]);
      assert.deepEqual(parseOne('|1\r\n+a\r\n:1\r\n|1\r\n+b\r\n:2\r\n+x\r\n', keep), new RespAttributed(new RespMap(['a', 1, 'b', 2]), 'x'));
      assert.deepEqual(parseOne('|0\r\n*1\r\n|1\r\n+k\r\n_\r\n%1\r\n+m\r\n+v\r\n', keep), new RespAttributed(new RespMap([]), [new RespAttributed(new RespMap(['k', null]), new RespMap(['m', 'v']))]));
      const { values, sizes } = parseChunks(byteByByte(b(top + nested)), keep);
      assert.deepEqual(values, [new RespAttributed(popularity, [2039123, 9543892]), [1, 2, new RespAttributed(new RespMap(['ttl', 3600]), 3)]]);
      assert.deepEqual(sizes, [top.length, nested.length]);
    });
  });
});

describe('lib/resp parser: chunking', () => {
  const pieces = [
    '+OK\r\n',
    '-ERR unknown command\r\n',
    ':-1234567890123\r\n',
    ':18446744073709551615\r\n',
    '$5\r\nhe\r\no\r\n',
    '$0\r\n\r\n',
    '$-1\r\n',
    '*-1\r\n',
    '*0\r\n',
    '*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$10\r\n0123456789\r\n',
    '*2\r\n*2\r\n+a\r\n:1\r\n*1\r\n%1\r\n+k\r\n~2\r\n,1.5\r\n,-inf\r\n',
    '_\r\n',
    '#t\r\n',
    '(-123456789012345678901234567890\r\n',
    '=9\r\ntxt:a\r\nb\r\r\n',
    '!11\r\nERR \r\nbroke\r\n',
    '>2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nfoo\r\n',
    '|1\r\n+ttl\r\n:1\r\n$3\r\nbar\r\n',
    '%1\r\n$6\r\nserver\r\n$5\r\nredis\r\n',
  ];
  const input = b(pieces.join(''));
  const expectedSizes = pieces.map((p) => p.length);
  const reference = parseChunks([input]);

  it('the reference parse has one value per piece, sized exactly', () => {
    assert.deepEqual(reference.sizes, expectedSizes);
    assert.deepEqual(reference.values.slice(0, 10), [
      'OK',
      new RespError('ERR unknown command'),
      -1234567890123,
      18446744073709551615n,
      b('he\r\no'),
      Buffer.alloc(0),
      null,
      null,
      [],
      [b('SET'), b('key:1'), b('0123456789')],
    ]);
    assert.deepEqual(reference.values.slice(10), [
      [['a', 1], [new RespMap(['k', new RespSet([1.5, -Infinity])])]],
      null,
      true,
      -123456789012345678901234567890n,
      new RespVerbatim('txt', b('a\r\nb\r')),
      new RespError('ERR \r\nbroke'),
      new RespPush([b('invalidate'), [b('foo')]]),
      b('bar'),
      new RespMap([b('server'), b('redis')]),
    ]);
  });

  it('split at every position gives the same values and sizes', () => {
    for (let i = 0; i <= input.length; i++) {
      const got = parseChunks([input.subarray(0, i), input.subarray(i)]);
      assert.deepEqual(got, reference, `split at ${i}`);
    }
  });

  it('split at every pair of positions gives the same values and sizes', () => {
    let end = 0;
    for (let k = 0; end < 100; k++) end += pieces[k].length;
    const part = input.subarray(0, end);
    const ref = parseChunks([part]);
    for (let i = 0; i <= part.length; i++) {
      for (let j = i; j <= part.length; j++) {
        assert.deepEqual(parseChunks([part.subarray(0, i), part.subarray(i, j), part.subarray(j)]), ref, `split at ${i}, ${j}`);
      }
    }
  });

  it('byte by byte gives the same values and sizes', () => {
    assert.deepEqual(parseChunks(byteByByte(input)), reference);
  });

  it('random chunkings give the same values and sizes', () => {
    const random = prng(42);
    for (let round = 0; round < 300; round++) {
      assert.deepEqual(parseChunks(randomChunks(input, random, 1 + (round % 40))), reference, `round ${round}`);
    }
  });

  it('mutated input parses or fails identically whole and chunked, and only with RespProtocolError', () => {
    const random = prng(2024);
    const outcome = (chunks: Buffer[]): Parsed | string => {
      try {
        return parseChunks(chunks, { keepAttributes: true });
      } catch (err) {
        if (err instanceof RespProtocolError) return `${err.code}@${err.offset}`;
        if (err instanceof assert.AssertionError && /all bytes consumed/.test(err.message)) return 'incomplete';
        throw err;
      }
    };
    const alphabet = b('$*%~>|+-:_,#(=!\r\n0123456789-1ax');
    for (let round = 0; round < 2000; round++) {
      const mutated = Buffer.from(input);
      for (let k = 1 + Math.floor(random() * 3); k > 0; k--) {
        mutated[Math.floor(random() * mutated.length)] = alphabet[Math.floor(random() * alphabet.length)];
      }
      assert.deepEqual(outcome(randomChunks(mutated, random, 1 + (round % 50))), outcome([mutated]), `round ${round}`);
    }
  });

  it('chunks pushed without draining are queued, not lost', () => {
    const parser = new RespParser();
    for (const chunk of randomChunks(input, prng(7), 9)) parser.push(chunk);
    assert.equal(parser.bufferedBytes, input.length);
    const values: RespValue[] = [];
    const sizes: number[] = [];
    let v: RespValue | undefined;
    while ((v = parser.next()) !== undefined) {
      values.push(v);
      sizes.push(parser.lastSize);
    }
    assert.deepEqual({ values, sizes }, reference);
    assert.equal(parser.offset, input.length);
    assert.equal(parser.bufferedBytes, 0);
  });

  it('keeps leftover bytes after a value, and counts offset across values', () => {
    const parser = new RespParser();
    parser.push(b('+OK\r\n:1'));
    assert.equal(parser.next(), 'OK');
    assert.equal(parser.lastSize, 5);
    assert.equal(parser.next(), undefined);
    assert.equal(parser.bufferedBytes, 2);
    parser.push(b('2\r'));
    assert.equal(parser.next(), undefined);
    parser.push(b('\n$3\r\nab'));
    assert.equal(parser.next(), 12);
    assert.equal(parser.lastSize, 5);
    assert.equal(parser.offset, 10);
    assert.equal(parser.next(), undefined);
    parser.push(b('c\r\n'));
    assert.deepEqual(parser.next(), b('abc'));
    assert.equal(parser.lastSize, 9);
    assert.equal(parser.offset, 19);
    assert.equal(parser.next(), undefined);
  });

  it('never writes into pushed chunks or returned values', () => {
    const chunks = randomChunks(Buffer.from(input), prng(3), 17);
    const copies = chunks.map((c) => Buffer.from(c));
    const first = parseChunks(chunks);
    assert.deepEqual(chunks, copies);
    const again = parseChunks(chunks);
    assert.deepEqual(first, again);
    assert.deepEqual(first, reference);
  });

  it('a 100 MB bulk in 64 KB chunks is joined once (linear time)', function () {
    this.timeout(20000);
    const size = 100 * 1024 * 1024;
    const header = b(`*2\r\n$3\r\nSET\r\n$${size}\r\n`);
    const wire = Buffer.alloc(header.length + size + 7);
    header.copy(wire);
    const payload = wire.subarray(header.length, header.length + size);
    for (let i = 0; i < size; i += 4093) payload[i] = 1 + (i % 251);
    wire.write('\r\n+OK\r\n', header.length + size, 'latin1');
    const parser = new RespParser();
    const started = process.hrtime.bigint();
    let value: RespValue | undefined;
    let off = 0;
    for (; off < wire.length && value === undefined; off += 64 * 1024) {
      parser.push(wire.subarray(off, off + 64 * 1024));
      value = parser.next();
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.ok(Array.isArray(value));
    assert.equal(value.length, 2);
    assert.deepEqual(value[0], b('SET'));
    assert.ok(Buffer.isBuffer(value[1]));
    assert.ok(value[1].equals(payload));
    assert.equal(parser.lastSize, header.length + size + 2);
    // Re-joining per chunk would copy ~80 GB here; once is ~100 MB.
    assert.ok(ms < 5000, `took ${ms} ms`);
    assert.equal(parser.next(), 'OK');
    assert.equal(parser.offset, wire.length);
  });

  it('a 200k-element array in small chunks resumes where it stalled (linear time)', () => {
    const n = 200_000;
    const wire = encodeCommand(Array.from({ length: n }, (_, i) => i));
    const started = process.hrtime.bigint();
    const { values, sizes } = parseChunks(randomChunks(wire, prng(11), 4096));
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(values.length, 1);
    const arr = values[0];
    assert.ok(Array.isArray(arr));
    assert.equal(arr.length, n);
    assert.deepEqual(arr[n - 1], b(String(n - 1)));
    assert.deepEqual(sizes, [wire.length]);
    assert.ok(ms < 3000, `took ${ms} ms`);
  });
});

describe('lib/resp parser: protocol errors', () => {
  const cases: Array<{ name: string; input: string; code: RespProtocolErrorCode; offset: number; byte?: number; options?: RespParserOptions }> = [
    { name: 'unknown type byte after a value', input: '+OK\r\n?x\r\n', code: 'UNKNOWN_TYPE', offset: 5, byte: 0x3f },
    { name: 'bare LF where a type byte should be', input: ':1\r\n\n', code: 'UNKNOWN_TYPE', offset: 4, byte: 0x0a },
    { name: 'unknown type inside an array', input: '*2\r\n:1\r\n@\r\n', code: 'UNKNOWN_TYPE', offset: 8, byte: 0x40 },
    { name: 'non-digit in a bulk length', input: '$1x\r\nab\r\n', code: 'BAD_LENGTH', offset: 2, byte: 0x78 },
    { name: 'non-digit in an array count', input: '*2 \r\n', code: 'BAD_LENGTH', offset: 2, byte: 0x20 },
    { name: 'empty length', input: '$\r\n', code: 'BAD_LENGTH', offset: 1 },
    { name: 'negative length other than -1', input: '*-2\r\n', code: 'BAD_LENGTH', offset: 1 },
    { name: 'null map', input: '%-1\r\n', code: 'BAD_LENGTH', offset: 1 },
    { name: 'null verbatim', input: '=-1\r\n', code: 'BAD_LENGTH', offset: 1 },
    { name: 'CR without LF after a length', input: '$3\rfoo\r\n', code: 'MISSING_CRLF', offset: 3, byte: 0x66 },
    { name: 'bulk payload longer than its length', input: '$3\r\nfoobar\r\n', code: 'MISSING_CRLF', offset: 7, byte: 0x62 },
    { name: 'bulk payload followed by CR without LF', input: '$3\r\nfoo\rX', code: 'MISSING_CRLF', offset: 8, byte: 0x58 },
    { name: 'bare LF in a simple string', input: '+OK\n+PONG\r\n', code: 'MISSING_CRLF', offset: 3, byte: 0x0a },
    { name: 'bare CR in an error line', input: '-ERR\rx\r\n', code: 'MISSING_CRLF', offset: 5, byte: 0x78 },
    { name: 'bulk length above the default 512 MB', input: '$536870913\r\n', code: 'LENGTH_LIMIT', offset: 1 },
    { name: 'absurd bulk length, before its CRLF arrives', input: '$99999999999999999999', code: 'LENGTH_LIMIT', offset: 1 },
    { name: 'bulk length above a configured max', input: '*1\r\n$11\r\n', code: 'LENGTH_LIMIT', offset: 5, options: { maxBulkLength: 10 } },
    { name: 'array count above a configured max', input: '*1001\r\n', code: 'LENGTH_LIMIT', offset: 1, options: { maxArrayLength: 1000 } },
    { name: 'map pair count above a configured max', input: '%11\r\n', code: 'LENGTH_LIMIT', offset: 1, options: { maxArrayLength: 10 } },
    { name: 'line without CRLF beyond the max line length', input: `+${'a'.repeat(40)}`, code: 'LINE_TOO_LONG', offset: 0, options: { maxLineLength: 16 } },
    { name: 'complete line beyond the max line length', input: `:1\r\n-${'a'.repeat(17)}\r\n`, code: 'LINE_TOO_LONG', offset: 4, options: { maxLineLength: 16 } },
    { name: 'nesting beyond the max depth', input: '*1\r\n*1\r\n*1\r\n:1\r\n', code: 'TOO_DEEP', offset: 8, options: { maxDepth: 2 } },
    { name: 'integer with a non-digit', input: ':12a\r\n', code: 'BAD_VALUE', offset: 3, byte: 0x61 },
    { name: 'integer without digits', input: ':-\r\n', code: 'BAD_VALUE', offset: 2 },
    { name: 'integer with 21 digits', input: ':123456789012345678901\r\n', code: 'BAD_VALUE', offset: 1 },
    { name: 'malformed double', input: ',0x10\r\n', code: 'BAD_VALUE', offset: 1 },
    { name: 'empty double', input: ',\r\n', code: 'BAD_VALUE', offset: 1 },
    { name: 'malformed boolean', input: '#x\r\n', code: 'BAD_VALUE', offset: 1 },
    { name: 'null with content', input: '_0\r\n', code: 'BAD_VALUE', offset: 1 },
    { name: 'malformed big number', input: '(12.5\r\n', code: 'BAD_VALUE', offset: 1 },
    { name: 'verbatim without format', input: '=3\r\ntxt\r\n', code: 'BAD_VALUE', offset: 4 },
    { name: 'verbatim with a bad separator', input: '=5\r\ntxt-a\r\n', code: 'BAD_VALUE', offset: 4 },
  ];

  for (const c of cases) {
    it(`${c.name}: ${c.code} at byte ${c.offset}, however the input is split`, () => {
      const input = b(c.input);
      expectProtocolError(failingParse([input], c.options), c.code, c.offset, c.byte);
      expectProtocolError(failingParse(byteByByte(input), c.options), c.code, c.offset, c.byte);
      for (let i = 0; i <= input.length; i++) {
        expectProtocolError(failingParse([input.subarray(0, i), input.subarray(i)], c.options), c.code, c.offset, c.byte);
      }
    });
  }

  it('offsets are absolute since the parser was created', () => {
    const parser = new RespParser();
    for (let i = 0; i < 100; i++) {
      parser.push(b(`:${i}\r\n`));
      assert.equal(parser.next(), i);
    }
    const before = parser.offset;
    assert.equal(before, 10 * 4 + 90 * 5);
    parser.push(b('*2\r\n$1\r\na\r\n'));
    parser.push(b('$1\r\nb\r\n~'));
    assert.deepEqual(parser.next(), [b('a'), b('b')]);
    parser.push(b('x'));
    // 11 + 7 bytes of array, then '~' at 508 and 'x' at 509.
    const err = expectProtocolError(() => parser.next(), 'BAD_LENGTH', before + 19, 0x78);
    assert.match(err.message, /^RESP BAD_LENGTH at byte 509: non-digit 'x' \(0x78\) in length$/);
  });

  it('the parser stays failed after an error', () => {
    const parser = new RespParser();
    parser.push(b('+OK\r\n\x00'));
    assert.equal(parser.next(), 'OK');
    const first = expectProtocolError(() => parser.next(), 'UNKNOWN_TYPE', 5, 0);
    assert.match(first.message, /unknown type byte 0x00/);
    parser.push(b('+OK\r\n'));
    assert.throws(() => parser.next(), (err) => err === first);
  });

  it('a huge claimed length or count allocates nothing up front', () => {
    const parser = new RespParser({ maxArrayLength: 2 ** 31 - 1 });
    const before = process.memoryUsage();
    parser.push(b('*2147483647\r\n$536870912\r\nabc'));
    assert.equal(parser.next(), undefined);
    const after = process.memoryUsage();
    assert.ok(after.arrayBuffers - before.arrayBuffers < 1024 * 1024, 'no large buffer');
    assert.ok(after.heapUsed - before.heapUsed < 16 * 1024 * 1024, 'no large array');
    assert.equal(parser.bufferedBytes, 28);
  });

  it('accepts a line of exactly the max line length, however it is split', () => {
    const line = b(`+${'a'.repeat(16)}\r\n`);
    for (let i = 0; i <= line.length; i++) {
      assert.deepEqual(parseChunks([line.subarray(0, i), line.subarray(i)], { maxLineLength: 16 }).values, ['a'.repeat(16)]);
    }
  });

  it('rejects invalid options', () => {
    assert.throws(() => new RespParser({ maxBulkLength: 0 }), RangeError);
    assert.throws(() => new RespParser({ maxDepth: 1.5 }), RangeError);
  });
});

describe('lib/resp parser: takeBuffered', () => {
  it('hands over the bytes after a value, e.g. the RDB after +FULLRESYNC', () => {
    const parser = new RespParser();
    parser.push(b('+FULLRESYNC 8de1787ba490483314a4d30f1c628bc5025eb761 0\r\n$5\r\nREDIS'));
    parser.push(b('0011'));
    assert.equal(parser.next(), 'FULLRESYNC 8de1787ba490483314a4d30f1c628bc5025eb761 0');
    assert.deepEqual(parser.takeBuffered(), b('$5\r\nREDIS0011'));
    assert.equal(parser.offset, 56 + 13);
    assert.equal(parser.bufferedBytes, 0);
    assert.equal(parser.next(), undefined);
    parser.push(b(':1\r\n'));
    assert.equal(parser.next(), 1);
    assert.equal(parser.offset, 56 + 13 + 4);
  });

  it('refuses to cut a value in two', () => {
    const parser = new RespParser();
    parser.push(b('*2\r\n:1\r\n'));
    assert.equal(parser.next(), undefined);
    assert.throws(() => parser.takeBuffered(), /middle of a value/);
  });
});

describe('lib/resp encoder', () => {
  it('encodes strings, buffers and numbers exactly', () => {
    assert.deepEqual(encodeCommand(['SET', 'k', 'v']), b('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n'));
    assert.deepEqual(encodeCommand(['SET', 'é', Buffer.from([0, 13, 10, 255])]), Buffer.concat([b('*3\r\n$3\r\nSET\r\n$2\r\n'), Buffer.from('é'), b('\r\n$4\r\n\x00\r\n\xff\r\n')]));
    const numbers: Array<[number | bigint, string]> = [
      [0, '0'],
      [-0, '-0'],
      [42, '42'],
      [-1, '-1'],
      [1.5, '1.5'],
      [0.1, '0.1'],
      [1e21, '1e+21'],
      [5e-324, '5e-324'],
      [Infinity, 'inf'],
      [-Infinity, '-inf'],
      [9007199254740993n, '9007199254740993'],
      [-(2n ** 63n), '-9223372036854775808'],
    ];
    for (const [n, text] of numbers) {
      assert.deepEqual(encodeCommand(['X', n]), b(`*2\r\n$1\r\nX\r\n$${text.length}\r\n${text}\r\n`), text);
    }
    const long = 'x'.repeat(12345);
    assert.deepEqual(encodeCommand([long]), b(`*1\r\n$12345\r\n${long}\r\n`));
  });

  it('writes a BulkWriter argument in place, and a named command like its array form', () => {
    const payload = { byteLength: 5, writeTo: (buf: Buffer, off: number) => buf.write('ab\r\ncd'.slice(0, 5), off, 'latin1') };
    assert.deepEqual(encodeCommand(['RESTORE', 'k', 0, payload]), b('*4\r\n$7\r\nRESTORE\r\n$1\r\nk\r\n$1\r\n0\r\n$5\r\nab\r\nc\r\n'));
    const named = new CommandWriter(16).writeNamed('HSET', ['h', 1.5, payload, Buffer.from('x')]).take();
    const plain = new CommandWriter(16).write(['HSET', 'h', 1.5, payload, Buffer.from('x')]).take();
    assert.deepEqual(named, plain);
  });

  it('rejects what Redis cannot receive', () => {
    assert.throws(() => encodeCommand([]), RangeError);
    assert.throws(() => encodeCommand(['ZADD', 'z', NaN, 'm']), RangeError);
    assert.throws(() => encodeCommand(['SET', 'k', null as unknown as string]), /argument 2 is null/);
    assert.throws(() => encodeCommand(['SET', 'k', {} as unknown as string]), /argument 2 is object/);
  });

  it('round-trips through the parser, with exact sizes', () => {
    const random = prng(99);
    const commands: CommandArg[][] = [];
    for (let i = 0; i < 500; i++) {
      const args: CommandArg[] = [`CMD${i}`];
      const n = Math.floor(random() * 6);
      for (let j = 0; j < n; j++) {
        const kind = Math.floor(random() * 4);
        if (kind === 0) args.push(Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256))));
        else if (kind === 1) args.push(`ключ:${j}\r\n`);
        else if (kind === 2) args.push(Math.floor(random() * 2e9) - 1e9);
        else args.push(random() * 1000);
      }
      commands.push(args);
    }
    const wire = encodeCommands(commands);
    assert.deepEqual(wire, Buffer.concat(commands.map(encodeCommand)));
    const { values, sizes } = parseChunks(randomChunks(wire, random, 300));
    assert.deepEqual(
      values,
      commands.map((args) => args.map((a) => (Buffer.isBuffer(a) ? a : Buffer.from(String(a))))),
    );
    assert.deepEqual(
      sizes,
      commands.map((args) => encodeCommand(args).length),
    );
  });

  it('CommandWriter never overwrites what it handed out', () => {
    const writer = new CommandWriter(64);
    writer.write(['PING']);
    assert.equal(writer.length, 14);
    const first = writer.take();
    assert.deepEqual(first, b('*1\r\n$4\r\nPING\r\n'));
    assert.equal(writer.length, 0);
    const batch: CommandArg[][] = [];
    for (let i = 0; i < 50; i++) {
      const args = ['SET', `key:${i}`, 'x'.repeat(i)];
      batch.push(args);
      writer.write(args);
    }
    writer.write(['GET', 'k']);
    const second = writer.take();
    assert.deepEqual(first, b('*1\r\n$4\r\nPING\r\n'));
    assert.deepEqual(second, encodeCommands([...batch, ['GET', 'k']]));
    assert.deepEqual(writer.take(), Buffer.alloc(0));
  });
});

describe('lib/resp against a real redis-server', function () {
  this.timeout(30000);
  let server: ChildProcess | undefined;
  let dir = '';
  let socket: net.Socket;
  let received = 0;
  const parser = new RespParser({ keepAttributes: true });
  const waiting: Array<(v: RespValue) => void> = [];
  const pushes: RespValue[] = [];

  async function connect(port: number): Promise<net.Socket> {
    const deadline = Date.now() + 10000;
    for (;;) {
      try {
        return await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        });
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Sends one command; resolves with its reply. Push values are collected apart. */
  function call(...args: CommandArg[]): Promise<RespValue> {
    return new Promise((resolve) => {
      waiting.push(resolve);
      socket.write(encodeCommand(args));
    });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'resp-test-'));
    const port = await freePort();
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--enable-debug-command', 'yes'],
      { stdio: 'ignore' },
    );
    const exited = new Promise<never>((_, reject) => {
      server?.once('error', reject);
      server?.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
    });
    socket = await Promise.race([connect(port), exited]);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      parser.push(chunk);
      let v: RespValue | undefined;
      while ((v = parser.next()) !== undefined) {
        if (v instanceof RespPush) pushes.push(v);
        else (waiting.shift() as (v: RespValue) => void)(v);
      }
    });
  });

  after(async () => {
    socket?.destroy();
    if (server !== undefined && server.exitCode === null) {
      const gone = new Promise((resolve) => server?.once('exit', resolve));
      server.kill('SIGKILL');
      await gone;
    }
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('speaks RESP2, then RESP3 after HELLO 3', async () => {
    assert.equal(await call('PING'), 'PONG');
    assert.equal(await call('HSET', 'h2', 'f', 'v'), 1);
    assert.deepEqual(await call('HGETALL', 'h2'), [b('f'), b('v')]);
    const hello = await call('HELLO', 3);
    assert.ok(hello instanceof RespMap);
    assert.deepEqual(hello.get('server'), b('redis'));
    assert.equal(hello.get('proto'), 3);
    assert.deepEqual(hello.get('role'), b('master'));
    assert.ok(Array.isArray(hello.get('modules')));
  });

  it('round-trips binary values and integers', async () => {
    const value = Buffer.alloc(1000);
    for (let i = 0; i < value.length; i++) value[i] = (i * 7) % 256;
    value.write('\r\n*1\r\n', 500, 'latin1');
    assert.equal(await call('SET', Buffer.from([0, 13, 10, 255]), value), 'OK');
    assert.deepEqual(await call('GET', Buffer.from([0, 13, 10, 255])), value);
    assert.equal(await call('GET', 'missing'), null);
    assert.equal(await call('INCRBY', 'n', 9007199254740993n), 9007199254740993n);
    assert.equal(await call('INCRBY', 'n2', -5), -5);
  });

  it('RESP3 maps, sets and doubles from real commands', async () => {
    assert.equal(await call('HSET', 'h', 'a', '1', 'b', Buffer.from('\r\n')), 2);
    const all = await call('HGETALL', 'h');
    assert.ok(all instanceof RespMap);
    assert.deepEqual(new Map([...all].map(([k, v]) => [String(k), v])), new Map([
      ['a', b('1')],
      ['b', b('\r\n')],
    ]));
    assert.equal(await call('SADD', 's', 'x', 'y', 'z'), 3);
    const members = await call('SMEMBERS', 's');
    assert.ok(members instanceof RespSet);
    assert.deepEqual(members.items.map(String).sort(), ['x', 'y', 'z']);
    assert.equal(await call('ZADD', 'z', 1.5, 'a', Infinity, 'b', -Infinity, 'c', 0.1, 'd'), 4);
    assert.equal(await call('ZSCORE', 'z', 'a'), 1.5);
    assert.equal(await call('ZSCORE', 'z', 'b'), Infinity);
    assert.equal(await call('ZSCORE', 'z', 'c'), -Infinity);
    assert.equal(await call('ZSCORE', 'z', 'd'), 0.1);
    assert.equal(await call('ZSCORE', 'z', 'nope'), null);
  });

  it('error replies are values with their code', async () => {
    const wrongType = await call('LPUSH', 'h', 'x');
    assert.ok(wrongType instanceof RespError);
    assert.equal(wrongType.code, 'WRONGTYPE');
    const unknown = await call('NOSUCHCOMMAND');
    assert.ok(unknown instanceof RespError);
    assert.equal(unknown.code, 'ERR');
    assert.match(unknown.message, /unknown command/);
  });

  it('every DEBUG PROTOCOL type', async () => {
    assert.equal(await call('DEBUG', 'PROTOCOL', 'bignum'), 1234567999999999999999999999999999999n);
    assert.equal(await call('DEBUG', 'PROTOCOL', 'true'), true);
    assert.equal(await call('DEBUG', 'PROTOCOL', 'false'), false);
    assert.equal(await call('DEBUG', 'PROTOCOL', 'double'), 3.141);
    assert.deepEqual(await call('DEBUG', 'PROTOCOL', 'map'), new RespMap([0, false, 1, true, 2, false]));
    assert.deepEqual(await call('DEBUG', 'PROTOCOL', 'set'), new RespSet([0, 1, 2]));
    assert.deepEqual(await call('DEBUG', 'PROTOCOL', 'attrib'), new RespAttributed(new RespMap([b('key-popularity'), [b('key:123'), 90]]), b('Some real reply following the attribute')));
    assert.deepEqual(await call('DEBUG', 'PROTOCOL', 'verbatim'), new RespVerbatim('txt', b('This is a verbatim\nstring')));
    assert.equal(await call('DEBUG', 'PROTOCOL', 'null'), null);
    assert.deepEqual(await call('DEBUG', 'PROTOCOL', 'push'), b('Some real reply following the push reply'));
    assert.deepEqual(pushes, [new RespPush([b('server-cpu-usage'), 42])]);
  });

  it('a pipelined burst arrives in TCP chunks and parses completely', async () => {
    const commands: CommandArg[][] = [];
    const value = Buffer.alloc(3000, 'q');
    for (let i = 0; i < 2000; i++) commands.push(['SET', `p:${i}`, value], ['GET', `p:${i}`]);
    const replies = commands.map(
      () =>
        new Promise<RespValue>((resolve) => {
          waiting.push(resolve);
        }),
    );
    socket.write(encodeCommands(commands));
    const got = await Promise.all(replies);
    for (let i = 0; i < got.length; i += 2) {
      assert.equal(got[i], 'OK');
      assert.deepEqual(got[i + 1], value);
    }
    assert.equal(parser.offset, received, 'sizes add up to the bytes received');
    assert.equal(parser.bufferedBytes, 0);
  });
});
