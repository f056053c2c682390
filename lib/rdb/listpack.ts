/**
 * Listpack (src/listpack.c), the compact encoding that replaced the ziplist in Redis 7.0:
 * hashes, sorted sets and sets (types 16, 17, 20, 25), quicklist-2 list nodes (type 18) and
 * stream nodes (types 15, 19, 21; streams used it from 5.0).
 *
 *   <total bytes u32le> <num elements u16le, 65535 = unknown> <element>... <0xFF>
 *   element = <encoding + data> <backlen: size of encoding + data, 1..5 bytes, read backwards>
 *
 *   0xxxxxxx                 7-bit uint              10LLLLLL + data   6-bit-length string
 *   110xxxxx xxxxxxxx        13-bit int (signed)     1110LLLL LLLLLLLL 12-bit-length string
 *   F1 / F2 / F3 / F4        16/24/32/64-bit int LE  F0 + u32le length  32-bit-length string
 *
 * Validation follows Redis's deep check (lpValidateIntegrity) and also requires the 0xFF to
 * be the last byte, so every element is checked before the first one is handed out.
 */
import { RdbError } from './errors';
import * as alloc from '../buffers/decoder-alloc';
// Module-local bindings: under a CommonJS transform (tsx, esbuild) every use of an import
// is a property read through a getter, measurable on these per-element paths.
const decimalBuffer = alloc.decimalBuffer;
const sub = alloc.sub;
const view = alloc.view;
const list = alloc.list;
const pair = alloc.pair;

const HEADER_SIZE = 6;
const EOF = 0xff;
const COUNT_UNKNOWN = 0xffff;
const TWO_32 = 0x100000000;

/**
 * Sequential reader over a validated listpack. Construction checks the whole blob, so the
 * next*() methods fail only when an element is not of the asked kind (or past the end);
 * such a failure still consumes the element. Stream nodes need this reader: their ids,
 * flags and counts are integers, their fields bytes.
 */
export class ListpackReader {
  /** Number of elements (counted, so also known when the header says 65535). */
  readonly count: number;
  private pos = HEADER_SIZE;
  private index = 0;
  // The element just decoded by load(): a string [strStart, strEnd), or an integer in num
  // (or in big, when it does not fit a double exactly).
  private isString = false;
  private strStart = 0;
  private strEnd = 0;
  private num = 0;
  private big: bigint | null = null;

  constructor(
    private readonly blob: Buffer,
    private readonly baseOffset = 0,
  ) {
    this.count = validate(blob, baseOffset);
  }

  hasNext(): boolean {
    return this.index < this.count;
  }

  /** Absolute stream offset of the next element (of the end marker when none is left). */
  get offset(): number {
    return this.baseOffset + this.pos;
  }

  /** The next element as bytes: strings zero-copy, integers as their decimal text. */
  nextBuffer(): Buffer {
    this.load();
    if (this.isString) return sub(this.blob, this.strStart, this.strEnd);
    return this.big === null ? decimalBuffer(this.num) : Buffer.from(this.big.toString(), 'latin1');
  }

  /**
   * The next element as an integer: integer-encoded, or a string holding a canonical
   * int64 in decimal (as Redis's lpGetInteger accepts). Throws if it is not one, or if it
   * does not fit a JS number exactly (use nextBigInt for those).
   */
  nextInt(): number {
    const at = this.pos;
    this.load();
    if (this.isString) {
      const v = this.parseString(at);
      if (v < -Number.MAX_SAFE_INTEGER || v > Number.MAX_SAFE_INTEGER) {
        throw this.fail(at, `integer ${v} does not fit a JS number exactly`);
      }
      return Number(v);
    }
    if (this.big !== null) throw this.fail(at, `integer ${this.big} does not fit a JS number exactly`);
    return this.num;
  }

  /** The next element as a signed 64-bit integer (see nextInt for what counts as one). */
  nextBigInt(): bigint {
    const at = this.pos;
    this.load();
    if (this.isString) return this.parseString(at);
    return this.big ?? BigInt(this.num);
  }

  /** Steps over the next element without converting it. */
  skip(): void {
    this.load();
  }

  /** Decodes the element at pos into the fields above and moves past it. */
  private load(): void {
    if (this.index >= this.count) {
      throw this.fail(this.pos, `read past the last of ${this.count} elements`);
    }
    const b = this.blob;
    const p = this.pos;
    const enc = b[p];
    let size: number;
    this.big = null;
    if (enc < 0x80) {
      this.isString = false;
      this.num = enc;
      size = 1;
    } else if (enc < 0xc0) {
      this.setString(p + 1, enc & 0x3f);
      size = 1 + (enc & 0x3f);
    } else if (enc < 0xe0) {
      const v = ((enc & 0x1f) << 8) | b[p + 1];
      this.isString = false;
      this.num = v >= 0x1000 ? v - 0x2000 : v;
      size = 2;
    } else if (enc < 0xf0) {
      const len = ((enc & 0x0f) << 8) | b[p + 1];
      this.setString(p + 2, len);
      size = 2 + len;
    } else {
      this.isString = false;
      switch (enc) {
        case 0xf0: {
          const len = b.readUInt32LE(p + 1);
          this.setString(p + 5, len);
          size = 5 + len;
          break;
        }
        case 0xf1:
          this.num = b.readInt16LE(p + 1);
          size = 3;
          break;
        case 0xf2:
          this.num = b.readIntLE(p + 1, 3);
          size = 4;
          break;
        case 0xf3:
          this.num = b.readInt32LE(p + 1);
          size = 5;
          break;
        default: {
          // validate() let through no other byte: this is 0xF4, the 64-bit integer.
          const hi = b.readInt32LE(p + 5);
          // Within +-2^53 the double arithmetic is exact; only beyond it is BigInt needed.
          if (hi >= -0x200000 && hi < 0x200000) this.num = hi * TWO_32 + b.readUInt32LE(p + 1);
          else this.big = b.readBigInt64LE(p + 1);
          size = 9;
        }
      }
    }
    this.pos = p + size + backlenSize(size);
    this.index++;
  }

  private setString(start: number, len: number): void {
    this.isString = true;
    this.strStart = start;
    this.strEnd = start + len;
  }

  /** Strict decimal int64 like lpStringToInt64: optional '-', no '+', no leading zeros. */
  private parseString(at: number): bigint {
    const b = this.blob;
    const s = this.strStart;
    const e = this.strEnd;
    let i = s;
    if (i < e && b[i] === 0x2d) i++;
    const digits = e - i;
    const canonical =
      digits > 0 &&
      digits <= 19 &&
      (b[i] !== 0x30 || (digits === 1 && i === s)) && // "0" alone, never "-0" or "07"
      b.subarray(i, e).every((c) => c >= 0x30 && c <= 0x39);
    if (!canonical) throw this.fail(at, 'string element is not a decimal integer');
    const v = BigInt(b.toString('latin1', s, e));
    if (v < -(2n ** 63n) || v >= 2n ** 63n) throw this.fail(at, 'decimal integer out of int64 range');
    return v;
  }

  private fail(at: number, detail: string): RdbError {
    return new RdbError('BAD_ENCODING', this.baseOffset + at, `listpack: ${detail}`);
  }
}

/** All elements of a listpack as bytes: strings zero-copy, integers as decimal text. */
export function decodeListpack(blob: Buffer, baseOffset = 0): Buffer[] {
  return walk(blob, 0, blob.length, baseOffset, Shape.Flat, null) as Buffer[];
}

/**
 * decodeListpack of the listpack in src[start, end) (no Buffer of the whole blob needed;
 * element Buffers are views of src's memory), appending to `into` if given (on an error,
 * some elements may have been appended: the caller's parse is over anyway).
 */
export function listpackItems(src: Uint8Array, start: number, end: number, baseOffset: number, into: Buffer[] | null): Buffer[] {
  return walk(src, start, end, baseOffset, Shape.Flat, into) as Buffer[];
}

/**
 * The elements of the listpack in src[start, end) as [field, value] pairs (a hash): the
 * checks and errors of decodeListpack then pairing them, in one walk.
 */
export function listpackPairs(src: Uint8Array, start: number, end: number, baseOffset: number): Array<[Buffer, Buffer]> {
  return walk(src, start, end, baseOffset, Shape.Pairs, null) as Array<[Buffer, Buffer]>;
}

/**
 * The elements of the listpack in src[start, end) as [member, score] pairs (a sorted set),
 * in one walk. Scores never become bytes: integer elements are taken as numbers, string ones
 * parsed from their bytes (parseScoreBytes). Errors are the same, in the same order, as
 * decoding all elements first, then checking the pair count, then each score in turn.
 */
export function listpackScores(src: Uint8Array, start: number, end: number, baseOffset: number): Array<[Buffer, number]> {
  return walk(src, start, end, baseOffset, Shape.Scores, null) as Array<[Buffer, number]>;
}

const enum Shape {
  Flat,
  Pairs,
  Scores,
}

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * A zset score from its text, as Number() reads it, except that "inf", "+inf" and "-inf"
 * are infinities and that anything else Number() does not read (or reads as NaN), or text
 * with surrounding white space, gives NaN: the caller's cue for an error.
 */
export function parseScoreBytes(b: Uint8Array, start: number, end: number): number {
  // Fast path: -?digits(.digits)? with at most 15 digits in all. The digits then form an
  // integer m < 2^53 and the value is m / 10^k with 10^k exact, a single correctly rounded
  // division: the same double Number() produces. (Small, to be inlined into walk.)
  let i = start;
  const neg = i < end && b[i] === 0x2d;
  if (neg) i++;
  const intStart = i;
  let m = 0;
  let c: number;
  while (i < end && (c = b[i] - 0x30) >= 0 && c <= 9) {
    m = m * 10 + c;
    i++;
  }
  const intDigits = i - intStart;
  let fracDigits = 0;
  if (i < end - 1 && b[i] === 0x2e) {
    const fracStart = ++i;
    while (i < end && (c = b[i] - 0x30) >= 0 && c <= 9) {
      m = m * 10 + c;
      i++;
    }
    fracDigits = i - fracStart;
  }
  if (i !== end || intDigits === 0 || fracDigits > 15 - intDigits) return parseScoreText(b, start, end);
  const v = fracDigits === 0 ? m : m / POW10[fracDigits];
  return neg ? -v : v;
}

/** parseScoreBytes for all that its fast path does not take, through the text. */
function parseScoreText(b: Uint8Array, start: number, end: number): number {
  const s = latin1(b, start, end);
  if (s === 'inf' || s === '+inf') return Infinity;
  if (s === '-inf') return -Infinity;
  return s.length > 0 && s.trim() === s ? Number(s) : NaN;
}

/**
 * Validates (as validate() does, in the same order, with the same errors) and decodes the
 * listpack in src[start, blobEnd) in one pass; positions below are absolute, error offsets
 * relative to start. A failure throws, so nothing is handed out before the whole blob passed.
 */
function walk(src: Uint8Array, start: number, blobEnd: number, baseOffset: number, shape: Shape, into: unknown[] | null): unknown[] {
  const size = blobEnd - start;
  const at0 = baseOffset - start; // error offset of absolute position p: at0 + p
  if (size < HEADER_SIZE + 1) throw fail(baseOffset, 0, `${size} bytes is shorter than header and end marker`);
  const total = (src[start] | (src[start + 1] << 8) | (src[start + 2] << 16) | (src[start + 3] << 24)) >>> 0;
  if (total !== size) throw fail(baseOffset, 0, `header says ${total} bytes, blob has ${size}`);
  const end = blobEnd - 1;
  if (src[end] !== EOF) {
    throw fail(at0, end, `last byte is 0x${src[end].toString(16).padStart(2, '0').toUpperCase()}, not the 0xFF end marker`);
  }
  const ab = src.buffer;
  const abOff = src.byteOffset;
  // Sized by the header's count when it has one (a wrong count fails below, after the walk).
  const numele = src[start + 4] | (src[start + 5] << 8);
  let out: unknown[];
  if (into !== null) out = into;
  else out = list(numele === COUNT_UNKNOWN ? 0 : shape === Shape.Flat ? numele : numele >>> 1);
  let o = into === null ? 0 : into.length;
  let first: Buffer | null = null; // the field or member waiting for its partner
  let badScore: string | null = null;
  let p = start + HEADER_SIZE;
  let count = 0;
  while (p < end) {
    const enc = src[p];
    let headerSize: number;
    if (enc < 0xc0 || (enc >= 0xf1 && enc <= 0xf4)) headerSize = 1;
    else if (enc < 0xf0) headerSize = 2;
    else if (enc === 0xf0) headerSize = 5;
    else if (enc === EOF) throw fail(at0, p, 'end marker before the end of the listpack');
    else throw fail(at0, p, `unknown encoding 0x${enc.toString(16).toUpperCase()}`);
    if (p + headerSize > end) throw fail(at0, p, 'element header passes the end');
    let dataSize: number;
    if (enc < 0x80) dataSize = 0; // 7-bit uint
    else if (enc < 0xc0) dataSize = enc & 0x3f;
    else if (enc < 0xe0) dataSize = 0; // 13-bit int
    else if (enc < 0xf0) dataSize = ((enc & 0x0f) << 8) | src[p + 1];
    else if (enc === 0xf0) dataSize = (src[p + 1] | (src[p + 2] << 8) | (src[p + 3] << 16) | (src[p + 4] << 24)) >>> 0;
    else dataSize = enc === 0xf4 ? 8 : enc - 0xef; // F1..F3: 2, 3, 4 bytes
    const entrySize = headerSize + dataSize;
    const backlen = entrySize <= 127 ? 1 : backlenSize(entrySize);
    if (entrySize + backlen > end - p) throw fail(at0, p, `element of ${entrySize} bytes passes the end`);
    const blEnd = p + entrySize + backlen - 1;
    if (backlen === 1) {
      if (src[blEnd] !== entrySize) throw fail(at0, p + entrySize, `backlen does not encode the element size ${entrySize}`);
    } else {
      // Read from its last byte backwards; every byte but the first (lowest address) has
      // the continuation bit 0x80 set.
      let value = 0;
      let q = blEnd;
      for (let shift = 1; ; shift *= 128, q--) {
        value += (src[q] & 0x7f) * shift;
        if ((src[q] & 0x80) === 0 || q === p + entrySize) break;
      }
      if (value !== entrySize || q !== p + entrySize || (src[q] & 0x80) !== 0) {
        throw fail(at0, p + entrySize, `backlen does not encode the element size ${entrySize}`);
      }
    }
    // The element: a string [p + headerSize, + dataSize), or an integer.
    const isString = (enc >= 0x80 && enc < 0xc0) || (enc >= 0xe0 && enc <= 0xf0);
    if (shape === Shape.Scores && (count & 1) === 1) {
      let score: number;
      if (isString) {
        score = parseScoreBytes(src, p + headerSize, p + entrySize);
        if (Number.isNaN(score) && badScore === null) badScore = latin1(src, p + headerSize, p + entrySize);
      } else {
        score = intAt(src, p, enc);
        if (Number.isNaN(score)) score = Number(bigAt(src, p + 1));
      }
      out[o++] = pair(first, score);
    } else {
      let item: Buffer;
      if (isString) item = view(ab, abOff + p + headerSize, dataSize);
      else {
        const v = intAt(src, p, enc);
        item = Number.isNaN(v) ? Buffer.from(bigAt(src, p + 1).toString(), 'latin1') : decimalBuffer(v);
      }
      if (shape === Shape.Flat) out[o++] = item;
      else if ((count & 1) === 0) first = item;
      else out[o++] = pair(first, item);
    }
    p = blEnd + 1;
    count++;
  }
  if (numele !== COUNT_UNKNOWN && numele !== count) throw fail(baseOffset, 4, `header counts ${numele} elements, found ${count}`);
  if (shape !== Shape.Flat) {
    if ((count & 1) !== 0) {
      const what = shape === Shape.Pairs ? 'hash holds an odd number (%) of fields and values' : 'zset holds an odd number (%) of members and scores';
      throw new RdbError('BAD_ENCODING', baseOffset, what.replace('%', String(count)));
    }
    if (badScore !== null) throw new RdbError('BAD_ENCODING', baseOffset, `zset score "${badScore}" is not a number`);
  }
  return out;
}

/**
 * The integer element with encoding byte enc at p; NaN for a 64-bit one beyond +-2^53, which
 * does not fit a double exactly (the caller reads it with bigAt).
 */
function intAt(b: Uint8Array, p: number, enc: number): number {
  if (enc < 0x80) return enc;
  if (enc < 0xe0) {
    const v = ((enc & 0x1f) << 8) | b[p + 1];
    return v >= 0x1000 ? v - 0x2000 : v;
  }
  switch (enc) {
    case 0xf1:
      return ((b[p + 1] | (b[p + 2] << 8)) << 16) >> 16;
    case 0xf2:
      return ((b[p + 1] | (b[p + 2] << 8) | (b[p + 3] << 16)) << 8) >> 8;
    case 0xf3:
      return b[p + 1] | (b[p + 2] << 8) | (b[p + 3] << 16) | (b[p + 4] << 24);
    default: {
      const lo = (b[p + 1] | (b[p + 2] << 8) | (b[p + 3] << 16) | (b[p + 4] << 24)) >>> 0;
      const hi = b[p + 5] | (b[p + 6] << 8) | (b[p + 7] << 16) | (b[p + 8] << 24);
      // Within +-2^53 the double arithmetic is exact; only beyond it is BigInt needed.
      return hi >= -0x200000 && hi < 0x200000 ? hi * TWO_32 + lo : NaN;
    }
  }
}

/** The signed 64-bit little-endian integer at p. */
function bigAt(b: Uint8Array, p: number): bigint {
  return Buffer.from(b.buffer, b.byteOffset + p, 8).readBigInt64LE(0);
}

function latin1(b: Uint8Array, start: number, end: number): string {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1');
}

function fail(baseOffset: number, at: number, detail: string): RdbError {
  return new RdbError('BAD_ENCODING', baseOffset + at, `listpack: ${detail}`);
}

/** Bytes of the backlen that follows an element of `size` bytes (lpEncodeBacklen's limits). */
function backlenSize(size: number): number {
  if (size <= 127) return 1;
  if (size < 16383) return 2;
  if (size < 2097151) return 3;
  if (size < 268435455) return 4;
  return 5;
}

/** Checks every byte of the listpack's structure; returns the element count. */
function validate(blob: Buffer, baseOffset: number): number {
  const size = blob.length;
  if (size < HEADER_SIZE + 1) throw fail(baseOffset, 0, `${size} bytes is shorter than header and end marker`);
  const total = blob.readUInt32LE(0);
  if (total !== size) throw fail(baseOffset, 0, `header says ${total} bytes, blob has ${size}`);
  const end = size - 1;
  if (blob[end] !== EOF) {
    throw fail(baseOffset, end, `last byte is 0x${blob[end].toString(16).padStart(2, '0').toUpperCase()}, not the 0xFF end marker`);
  }
  let p = HEADER_SIZE;
  let count = 0;
  while (p < end) {
    const enc = blob[p];
    // Encoding byte(s) before the data; the string lengths among them are read only once
    // they are known to lie inside the blob.
    let headerSize: number;
    if (enc < 0xc0 || (enc >= 0xf1 && enc <= 0xf4)) headerSize = 1;
    else if (enc < 0xf0) headerSize = 2;
    else if (enc === 0xf0) headerSize = 5;
    else if (enc === EOF) throw fail(baseOffset, p, 'end marker before the end of the listpack');
    else throw fail(baseOffset, p, `unknown encoding 0x${enc.toString(16).toUpperCase()}`);
    if (p + headerSize > end) throw fail(baseOffset, p, 'element header passes the end');
    let dataSize: number;
    if (enc < 0x80) dataSize = 0; // 7-bit uint
    else if (enc < 0xc0) dataSize = enc & 0x3f;
    else if (enc < 0xe0) dataSize = 0; // 13-bit int
    else if (enc < 0xf0) dataSize = ((enc & 0x0f) << 8) | blob[p + 1];
    else if (enc === 0xf0) dataSize = blob.readUInt32LE(p + 1);
    else dataSize = enc === 0xf4 ? 8 : enc - 0xef; // F1..F3: 2, 3, 4 bytes
    const entrySize = headerSize + dataSize;
    const backlen = backlenSize(entrySize);
    if (entrySize + backlen > end - p) throw fail(baseOffset, p, `element of ${entrySize} bytes passes the end`);
    // The backlen is read from its last byte backwards; every byte but the first (lowest
    // address) has the continuation bit 0x80 set.
    const blEnd = p + entrySize + backlen - 1;
    let value = 0;
    let q = blEnd;
    for (let shift = 1; ; shift *= 128, q--) {
      value += (blob[q] & 0x7f) * shift;
      if ((blob[q] & 0x80) === 0 || q === p + entrySize) break;
    }
    if (value !== entrySize || q !== p + entrySize || (blob[q] & 0x80) !== 0) {
      throw fail(baseOffset, p + entrySize, `backlen does not encode the element size ${entrySize}`);
    }
    p = blEnd + 1;
    count++;
  }
  const numele = blob.readUInt16LE(4);
  if (numele !== COUNT_UNKNOWN && numele !== count) throw fail(baseOffset, 4, `header counts ${numele} elements, found ${count}`);
  return count;
}
