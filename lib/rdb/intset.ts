/**
 * Intset (src/intset.c), the encoding of sets of integers (RDB type 11):
 *
 *   <encoding u32le: 2, 4 or 8> <length u32le> <length integers of that width, LE, ascending>
 *
 * Validation follows Redis's deep check (intsetValidateIntegrity): exact size, and members
 * strictly ascending, since a duplicate or misplaced member means the blob is corrupt.
 */
import { RdbError } from './errors';

const HEADER_SIZE = 8;

/**
 * Members of an intset as their decimal text, in stored (ascending) order. baseOffset is
 * blob's offset in the RDB stream, so that an RdbError('BAD_ENCODING') points at the fault.
 */
export function decodeIntset(blob: Buffer, baseOffset = 0): Buffer[] {
  const fail = (at: number, detail: string): RdbError =>
    new RdbError('BAD_ENCODING', baseOffset + at, `intset: ${detail}`);
  if (blob.length < HEADER_SIZE) throw fail(0, `${blob.length} bytes is shorter than the 8-byte header`);
  const width = blob.readUInt32LE(0);
  if (width !== 2 && width !== 4 && width !== 8) throw fail(0, `unknown encoding ${width}`);
  const length = blob.readUInt32LE(4);
  const expected = HEADER_SIZE + length * width;
  if (expected !== blob.length) {
    throw fail(4, `${length} members of ${width} bytes need ${expected} bytes, blob has ${blob.length}`);
  }
  const out = new Array<Buffer>(length);
  if (width === 8) {
    // Compare as (signed high half, unsigned low half); text through BigInt only when the
    // value is beyond 2^53, where doubles lose integers.
    let prevHi = 0;
    let prevLo = 0;
    for (let i = 0, at = HEADER_SIZE; i < length; i++, at += 8) {
      const lo = blob.readUInt32LE(at);
      const hi = blob.readInt32LE(at + 4);
      if (i > 0 && (hi < prevHi || (hi === prevHi && lo <= prevLo))) throw fail(at, 'members not strictly ascending');
      const text =
        hi >= -0x200000 && hi < 0x200000 ? String(hi * 0x100000000 + lo) : blob.readBigInt64LE(at).toString();
      out[i] = Buffer.from(text, 'latin1');
      prevHi = hi;
      prevLo = lo;
    }
  } else {
    let prev = -Infinity;
    for (let i = 0, at = HEADER_SIZE; i < length; i++, at += width) {
      const v = width === 2 ? blob.readInt16LE(at) : blob.readInt32LE(at);
      if (v <= prev) throw fail(at, 'members not strictly ascending');
      out[i] = Buffer.from(String(v), 'latin1');
      prev = v;
    }
  }
  return out;
}
