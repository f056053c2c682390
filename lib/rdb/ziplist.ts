/**
 * Ziplist (src/ziplist.c), the compact list encoding of lists, hashes and sorted sets in RDB
 * files up to Redis 6.2 (types 10, 12, 13 and the nodes of quicklist type 14):
 *
 *   <zlbytes u32le> <zltail u32le> <zllen u16le> <entry>... <0xFF>
 *   entry = <prevlen: 1 byte 0..253, or 0xFE + u32le> <encoding> <data>
 *
 * Validation follows Redis's deep integrity check (ziplistValidateIntegrity), because a blob
 * that passes it is exactly one Redis itself would accept with sanitize-dump-payload on.
 */
import { RdbError } from './errors';

const HEADER_SIZE = 10;
const END = 0xff;
const BIG_PREVLEN = 0xfe;
const COUNT_UNKNOWN = 0xffff;

/**
 * Elements of a ziplist, in order. Strings are subarrays of blob (no copy); integers become
 * their decimal text, as Redis prints them. baseOffset is blob's offset in the RDB stream,
 * so that an RdbError('BAD_ENCODING') points at the faulty byte.
 */
export function decodeZiplist(blob: Buffer, baseOffset = 0): Buffer[] {
  const fail = (at: number, detail: string): RdbError =>
    new RdbError('BAD_ENCODING', baseOffset + at, `ziplist: ${detail}`);
  const size = blob.length;
  if (size < HEADER_SIZE + 1) throw fail(0, `${size} bytes is shorter than header and end marker`);
  const zlbytes = blob.readUInt32LE(0);
  if (zlbytes !== size) throw fail(0, `header says ${zlbytes} bytes, blob has ${size}`);
  const end = size - 1;
  if (blob[end] !== END) throw fail(end, `last byte is 0x${hex(blob[end])}, not the 0xFF end marker`);
  const zltail = blob.readUInt32LE(4);
  if (zltail > end) throw fail(4, `tail offset ${zltail} is past the end marker at ${end}`);
  const zllen = blob.readUInt16LE(8);

  const out: Buffer[] = [];
  let p = HEADER_SIZE;
  let prevSize = 0;
  let last = -1;
  while (p < end) {
    const start = p;
    let prevlen = blob[p];
    if (prevlen === END) throw fail(p, 'end marker before the end of the ziplist');
    if (prevlen === BIG_PREVLEN) {
      if (p + 5 > end) throw fail(p, '5-byte prevlen passes the end');
      prevlen = blob.readUInt32LE(p + 1);
      p += 5;
    } else {
      p += 1;
    }
    if (prevlen !== prevSize) {
      throw fail(start, `prevlen ${prevlen} but the previous entry has ${prevSize} bytes`);
    }
    if (p >= end) throw fail(p, 'entry encoding passes the end');
    const enc = blob[p];
    const kind = enc >> 6;
    if (kind < 3) {
      let len: number;
      if (kind === 0) {
        len = enc & 0x3f;
        p += 1;
      } else if (kind === 1) {
        if (p + 2 > end) throw fail(p, '14-bit string length passes the end');
        len = ((enc & 0x3f) << 8) | blob[p + 1];
        p += 2;
      } else {
        // Redis ignores the low 6 bits of this encoding byte (written as 0), and so do we.
        if (p + 5 > end) throw fail(p, '32-bit string length passes the end');
        len = blob.readUInt32BE(p + 1);
        p += 5;
      }
      if (len > end - p) throw fail(p, `string of ${len} bytes passes the end`);
      out.push(blob.subarray(p, p + len));
      p += len;
    } else {
      const width = intWidth(enc);
      if (width < 0) throw fail(p, `unknown encoding 0x${hex(enc)}`);
      if (p + 1 + width > end) throw fail(p, `${width}-byte integer passes the end`);
      out.push(intText(blob, p + 1, enc));
      p += 1 + width;
    }
    prevSize = p - start;
    last = start;
  }
  // Entries never reach past `end`, so here p === end. The redundant fields must agree too:
  // a mismatch means the blob is not what Redis wrote, whatever the entries look like.
  if (last >= 0 && zltail !== last) throw fail(4, `tail offset ${zltail}, but the last entry is at ${last}`);
  if (zllen !== COUNT_UNKNOWN && zllen !== out.length) {
    throw fail(8, `header counts ${zllen} entries, found ${out.length}`);
  }
  return out;
}

/** Bytes of integer data after the encoding byte, or -1 for an encoding Redis never writes. */
function intWidth(enc: number): number {
  switch (enc) {
    case 0xc0:
      return 2;
    case 0xd0:
      return 4;
    case 0xe0:
      return 8;
    case 0xf0:
      return 3;
    case 0xfe:
      return 1;
    default:
      return enc >= 0xf1 && enc <= 0xfd ? 0 : -1;
  }
}

function intText(blob: Buffer, at: number, enc: number): Buffer {
  switch (enc) {
    case 0xc0:
      return decimal(blob.readInt16LE(at));
    case 0xd0:
      return decimal(blob.readInt32LE(at));
    case 0xe0: {
      const hi = blob.readInt32LE(at + 4);
      // Within +-2^53 the double arithmetic is exact; only beyond it is BigInt needed.
      if (hi >= -0x200000 && hi < 0x200000) return decimal(hi * 0x100000000 + blob.readUInt32LE(at));
      return Buffer.from(blob.readBigInt64LE(at).toString(), 'latin1');
    }
    case 0xf0:
      return decimal(blob.readIntLE(at, 3));
    case 0xfe:
      return decimal(blob.readInt8(at));
    default:
      return decimal((enc & 0x0f) - 1);
  }
}

function decimal(n: number): Buffer {
  return Buffer.from(String(n), 'latin1');
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0').toUpperCase();
}
