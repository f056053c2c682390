/**
 * Zipmap (src/zipmap.c), the small-hash encoding of Redis before 2.6 (RDB type 9); still
 * loadable, so an old RDB can hold one:
 *
 *   <zmlen u8: count, 254+ = unknown> (<len> field <len> <free u8> value <free bytes>)... 0xFF
 *   len = one byte 0..253, or 254 + u32le
 *
 * The comment at the top of old zipmap.c calls 253 the escape; the code (ZIPMAP_BIGLEN 254)
 * has always treated 253 as a plain length, and so do we.
 */
import { RdbError } from './errors';

const BIGLEN = 254;
const END = 0xff;

/**
 * field, value, field, value … of a zipmap, as subarrays of blob (no copy). baseOffset is
 * blob's offset in the RDB stream, so that an RdbError('BAD_ENCODING') points at the fault.
 */
export function decodeZipmap(blob: Buffer, baseOffset = 0): Buffer[] {
  const fail = (at: number, detail: string): RdbError =>
    new RdbError('BAD_ENCODING', baseOffset + at, `zipmap: ${detail}`);
  const size = blob.length;
  if (size < 2) throw fail(0, `${size} bytes is shorter than count and end marker`);
  const end = size - 1;
  if (blob[end] !== END) {
    throw fail(end, `last byte is 0x${blob[end].toString(16).padStart(2, '0').toUpperCase()}, not the 0xFF end marker`);
  }

  let p = 1;
  // Reads a string length at p; leaves p after it. A 0xFF here is an end marker where a
  // value belongs (the loop below consumes the one that may start a field).
  const readLength = (what: string): number => {
    const first = blob[p];
    if (first < BIGLEN) {
      p += 1;
      return first;
    }
    if (first === END) throw fail(p, `end marker where a ${what} length belongs`);
    if (p + 5 > end) throw fail(p, `5-byte ${what} length passes the end`);
    const len = blob.readUInt32LE(p + 1);
    p += 5;
    return len;
  };

  const out: Buffer[] = [];
  while (p < end && blob[p] !== END) {
    const fieldLen = readLength('field');
    if (fieldLen > end - p) throw fail(p, `field of ${fieldLen} bytes passes the end`);
    const field = blob.subarray(p, p + fieldLen);
    p += fieldLen;
    if (p >= end) throw fail(p, 'value missing at the end');
    const valueLen = readLength('value');
    if (p >= end) throw fail(p, 'free-space byte missing at the end');
    const free = blob[p++];
    if (valueLen + free > end - p) throw fail(p, `value of ${valueLen} bytes (+${free} free) passes the end`);
    out.push(field, blob.subarray(p, p + valueLen));
    p += valueLen + free;
  }
  if (p !== end) throw fail(p, 'end marker before the end of the zipmap');
  const zmlen = blob[0];
  if (zmlen < BIGLEN && zmlen !== out.length / 2) throw fail(0, `header counts ${zmlen} pairs, found ${out.length / 2}`);
  return out;
}
