/**
 * CRC-64/Jones as Redis computes it (src/crc64.c): reflected polynomial 0xad93d23594c935a9,
 * init 0, no final xor; crc64(0, "123456789") = 0xe9c6d914c4b8d9ca. It guards the end of
 * every RDB file (version 5+) and every DUMP payload, stored as 8 bytes little-endian.
 *
 * A streaming parser runs it over the whole snapshot, so it must not be the bottleneck:
 * the 64-bit state lives in two uint32 halves (BigInt in the loop is ~50x slower), and the
 * inner loop consumes 16 bytes per step with 16 lookup tables ("slicing-by-16"), which cuts
 * the serial dependency on the previous state to one step per 16 bytes.
 */

const POLY_LO = 0xac4bc9b5; // reflected 0xad93d23594c935a9 = 0x95ac9329_ac4bc9b5
const POLY_HI = 0x95ac9329;
const SLICES = 16;

/**
 * TABLE[(k * 256 + i) * 2] / [+1] = low / high half of the CRC of byte i followed by k zero
 * bytes. Interleaving the halves keeps both in one cache line; 32 KB in all fits in L1.
 */
const TABLE = buildTable();

/** Whether an Int32Array reads memory little-endian, as the word loop in update() needs. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([0x01020304]).buffer)[0] === 0x04;

function buildTable(): Int32Array {
  const t = new Int32Array(SLICES * 256 * 2);
  for (let i = 0; i < 256; i++) {
    let lo = i;
    let hi = 0;
    for (let bit = 0; bit < 8; bit++) {
      if (lo & 1) {
        lo = ((lo >>> 1) | (hi << 31)) ^ POLY_LO;
        hi = (hi >>> 1) ^ POLY_HI;
      } else {
        lo = (lo >>> 1) | (hi << 31);
        hi >>>= 1;
      }
    }
    t[i * 2] = lo;
    t[i * 2 + 1] = hi;
  }
  for (let k = 1; k < SLICES; k++) {
    for (let i = 0; i < 256; i++) {
      const prev = ((k - 1) * 256 + i) * 2;
      const lo = t[prev];
      const hi = t[prev + 1];
      const idx = (lo & 0xff) * 2;
      const cur = (k * 256 + i) * 2;
      t[cur] = ((lo >>> 8) | (hi << 24)) ^ t[idx];
      t[cur + 1] = (hi >>> 8) ^ t[idx + 1];
    }
  }
  return t;
}

/** Incremental CRC-64, for feeding a stream chunk by chunk. */
export class Crc64 {
  private lo = 0;
  private hi = 0;

  /** Starts from a previous CRC (e.g. one computed over earlier chunks), or from 0. */
  constructor(initial: bigint = 0n) {
    this.lo = Number(initial & 0xffffffffn) | 0;
    this.hi = Number((initial >> 32n) & 0xffffffffn) | 0;
  }

  update(buf: Uint8Array, start = 0, end = buf.length): this {
    if (start < 0 || end > buf.length || start > end) {
      throw new RangeError(`Crc64.update: range ${start}..${end} outside 0..${buf.length}`);
    }
    const t = TABLE;
    let lo = this.lo;
    let hi = this.hi;
    let i = start;
    if (LITTLE_ENDIAN && end - start >= 64) {
      // Bytes up to a 4-byte boundary one by one, then the bulk as 32-bit words read through
      // an Int32Array view: one load per 4 bytes instead of four loads and shifts.
      for (; ((buf.byteOffset + i) & 3) !== 0; i++) {
        const idx = ((lo ^ buf[i]) & 0xff) * 2;
        lo = ((lo >>> 8) | (hi << 24)) ^ t[idx];
        hi = (hi >>> 8) ^ t[idx + 1];
      }
      const words = new Int32Array(buf.buffer, buf.byteOffset + i, (end - i) >>> 2);
      const wordEnd = words.length - 3;
      let w = 0;
      for (; w < wordEnd; w += 4) {
        const a = lo ^ words[w];
        const b = hi ^ words[w + 1];
        const c = words[w + 2];
        const d = words[w + 3];
        const i0 = 0x1e00 + (a & 0xff) * 2;
        const i1 = 0x1c00 + ((a >>> 7) & 0x1fe);
        const i2 = 0x1a00 + ((a >>> 15) & 0x1fe);
        const i3 = 0x1800 + ((a >>> 23) & 0x1fe);
        const i4 = 0x1600 + (b & 0xff) * 2;
        const i5 = 0x1400 + ((b >>> 7) & 0x1fe);
        const i6 = 0x1200 + ((b >>> 15) & 0x1fe);
        const i7 = 0x1000 + ((b >>> 23) & 0x1fe);
        const i8 = 0x0e00 + (c & 0xff) * 2;
        const i9 = 0x0c00 + ((c >>> 7) & 0x1fe);
        const i10 = 0x0a00 + ((c >>> 15) & 0x1fe);
        const i11 = 0x0800 + ((c >>> 23) & 0x1fe);
        const i12 = 0x0600 + (d & 0xff) * 2;
        const i13 = 0x0400 + ((d >>> 7) & 0x1fe);
        const i14 = 0x0200 + ((d >>> 15) & 0x1fe);
        const i15 = (d >>> 23) & 0x1fe;
        lo = t[i0] ^ t[i1] ^ t[i2] ^ t[i3] ^ t[i4] ^ t[i5] ^ t[i6] ^ t[i7] ^
          t[i8] ^ t[i9] ^ t[i10] ^ t[i11] ^ t[i12] ^ t[i13] ^ t[i14] ^ t[i15];
        hi = t[i0 + 1] ^ t[i1 + 1] ^ t[i2 + 1] ^ t[i3 + 1] ^ t[i4 + 1] ^ t[i5 + 1] ^ t[i6 + 1] ^
          t[i7 + 1] ^ t[i8 + 1] ^ t[i9 + 1] ^ t[i10 + 1] ^ t[i11 + 1] ^ t[i12 + 1] ^
          t[i13 + 1] ^ t[i14 + 1] ^ t[i15 + 1];
      }
      i += w * 4;
    }
    const bulkEnd = end - 15;
    while (i < bulkEnd) {
      const a = lo ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24));
      const b = hi ^ (buf[i + 4] | (buf[i + 5] << 8) | (buf[i + 6] << 16) | (buf[i + 7] << 24));
      const c = buf[i + 8] | (buf[i + 9] << 8) | (buf[i + 10] << 16) | (buf[i + 11] << 24);
      const d = buf[i + 12] | (buf[i + 13] << 8) | (buf[i + 14] << 16) | (buf[i + 15] << 24);
      // Byte j of the 16 is followed by 15 - j more bytes: it indexes table 15 - j.
      const i0 = 0x1e00 + (a & 0xff) * 2;
      const i1 = 0x1c00 + ((a >>> 7) & 0x1fe);
      const i2 = 0x1a00 + ((a >>> 15) & 0x1fe);
      const i3 = 0x1800 + ((a >>> 23) & 0x1fe);
      const i4 = 0x1600 + (b & 0xff) * 2;
      const i5 = 0x1400 + ((b >>> 7) & 0x1fe);
      const i6 = 0x1200 + ((b >>> 15) & 0x1fe);
      const i7 = 0x1000 + ((b >>> 23) & 0x1fe);
      const i8 = 0x0e00 + (c & 0xff) * 2;
      const i9 = 0x0c00 + ((c >>> 7) & 0x1fe);
      const i10 = 0x0a00 + ((c >>> 15) & 0x1fe);
      const i11 = 0x0800 + ((c >>> 23) & 0x1fe);
      const i12 = 0x0600 + (d & 0xff) * 2;
      const i13 = 0x0400 + ((d >>> 7) & 0x1fe);
      const i14 = 0x0200 + ((d >>> 15) & 0x1fe);
      const i15 = (d >>> 23) & 0x1fe;
      lo = t[i0] ^ t[i1] ^ t[i2] ^ t[i3] ^ t[i4] ^ t[i5] ^ t[i6] ^ t[i7] ^
        t[i8] ^ t[i9] ^ t[i10] ^ t[i11] ^ t[i12] ^ t[i13] ^ t[i14] ^ t[i15];
      hi = t[i0 + 1] ^ t[i1 + 1] ^ t[i2 + 1] ^ t[i3 + 1] ^ t[i4 + 1] ^ t[i5 + 1] ^ t[i6 + 1] ^
        t[i7 + 1] ^ t[i8 + 1] ^ t[i9 + 1] ^ t[i10 + 1] ^ t[i11 + 1] ^ t[i12 + 1] ^
        t[i13 + 1] ^ t[i14 + 1] ^ t[i15 + 1];
      i += 16;
    }
    for (; i < end; i++) {
      const idx = ((lo ^ buf[i]) & 0xff) * 2;
      lo = ((lo >>> 8) | (hi << 24)) ^ t[idx];
      hi = (hi >>> 8) ^ t[idx + 1];
    }
    this.lo = lo;
    this.hi = hi;
    return this;
  }

  /** The CRC so far as the 8 little-endian bytes Redis stores after an RDB or DUMP payload. */
  digest(): Buffer {
    const out = Buffer.allocUnsafe(8);
    out.writeInt32LE(this.lo, 0);
    out.writeInt32LE(this.hi, 4);
    return out;
  }

  /** Whether the 8 bytes at buf[offset..offset+8] are this CRC as Redis stores it. */
  equals(buf: Uint8Array, offset = 0): boolean {
    if (offset < 0 || offset + 8 > buf.length) return false;
    const lo = buf[offset] | (buf[offset + 1] << 8) | (buf[offset + 2] << 16) | (buf[offset + 3] << 24);
    const hi = buf[offset + 4] | (buf[offset + 5] << 8) | (buf[offset + 6] << 16) | (buf[offset + 7] << 24);
    return lo === this.lo && hi === this.hi;
  }

  /** The CRC so far as an unsigned 64-bit integer (for messages and for resuming). */
  value(): bigint {
    return (BigInt(this.hi >>> 0) << 32n) | BigInt(this.lo >>> 0);
  }
}

/** One-shot CRC-64 of buf, continuing from crc (as Redis's crc64(crc, s, l)). */
export function crc64(buf: Uint8Array, crc: bigint = 0n): bigint {
  return new Crc64(crc).update(buf).value();
}
