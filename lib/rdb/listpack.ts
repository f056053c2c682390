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
    if (this.isString) return this.blob.subarray(this.strStart, this.strEnd);
    return Buffer.from(this.big === null ? String(this.num) : this.big.toString(), 'latin1');
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
  const reader = new ListpackReader(blob, baseOffset);
  const out = new Array<Buffer>(reader.count);
  for (let i = 0; i < out.length; i++) out[i] = reader.nextBuffer();
  return out;
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
  const fail = (at: number, detail: string): RdbError =>
    new RdbError('BAD_ENCODING', baseOffset + at, `listpack: ${detail}`);
  const size = blob.length;
  if (size < HEADER_SIZE + 1) throw fail(0, `${size} bytes is shorter than header and end marker`);
  const total = blob.readUInt32LE(0);
  if (total !== size) throw fail(0, `header says ${total} bytes, blob has ${size}`);
  const end = size - 1;
  if (blob[end] !== EOF) {
    throw fail(end, `last byte is 0x${blob[end].toString(16).padStart(2, '0').toUpperCase()}, not the 0xFF end marker`);
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
    else if (enc === EOF) throw fail(p, 'end marker before the end of the listpack');
    else throw fail(p, `unknown encoding 0x${enc.toString(16).toUpperCase()}`);
    if (p + headerSize > end) throw fail(p, 'element header passes the end');
    let dataSize: number;
    if (enc < 0x80) dataSize = 0; // 7-bit uint
    else if (enc < 0xc0) dataSize = enc & 0x3f;
    else if (enc < 0xe0) dataSize = 0; // 13-bit int
    else if (enc < 0xf0) dataSize = ((enc & 0x0f) << 8) | blob[p + 1];
    else if (enc === 0xf0) dataSize = blob.readUInt32LE(p + 1);
    else dataSize = enc === 0xf4 ? 8 : enc - 0xef; // F1..F3: 2, 3, 4 bytes
    const entrySize = headerSize + dataSize;
    const backlen = backlenSize(entrySize);
    if (entrySize + backlen > end - p) throw fail(p, `element of ${entrySize} bytes passes the end`);
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
      throw fail(p + entrySize, `backlen does not encode the element size ${entrySize}`);
    }
    p = blEnd + 1;
    count++;
  }
  const numele = blob.readUInt16LE(4);
  if (numele !== COUNT_UNKNOWN && numele !== count) throw fail(4, `header counts ${numele} elements, found ${count}`);
  return count;
}
