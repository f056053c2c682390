/**
 * LZF, the compression Redis applies to RDB strings (rdbcompression yes) and to quicklist
 * nodes. Format (lzf_c.c / lzf_d.c), one control byte then:
 *
 *   000LLLLL                      literal run of L+1 bytes (1..32) that follow
 *   LLLooooo oooooooo             back-reference: copy L+2 bytes (L = 1..6) from
 *                                 distance o+1 (1..8192) behind the output end
 *   111ooooo LLLLLLLL oooooooo    same with length L+9 (9..264)
 *
 * A back-reference may overlap the bytes it produces (distance < length), which is how
 * runs of one byte compress; so it must be copied front to back, byte by byte.
 */
import { RdbError } from './errors';
import * as alloc from '../buffers/decoder-alloc';
// Module-local bindings: under a CommonJS transform (tsx, esbuild) every use of an import
// is a property read through a getter, measurable on these per-element paths.
const { slabBuffer, slabData, slabRoom, slabStart, slabTake, SLAB_MAX } = alloc;

/**
 * Decompresses an LZF block whose uncompressed size the RDB stores next to it. Input that
 * does not produce exactly outLen bytes is corrupt: RdbError BAD_LZF at baseOffset plus the
 * position in input where decoding failed.
 */
export function lzfDecompress(input: Uint8Array, outLen: number, baseOffset = 0): Buffer {
  return lzfDecompressRange(input, 0, input.length, outLen, baseOffset);
}

/**
 * lzfDecompress of input[start, end), without a view of it; baseOffset is the offset of
 * input[start]. Small outputs come from a shared slab, as Buffer.allocUnsafe's do.
 */
export function lzfDecompressRange(input: Uint8Array, start: number, end: number, outLen: number, baseOffset = 0): Buffer {
  checkLengths(end - start, outLen, baseOffset);
  if (outLen <= SLAB_MAX) {
    const out = slabRoom(outLen);
    const at = slabStart();
    decompress(input, start, end, out, slabData(), at, outLen, baseOffset);
    slabTake(outLen);
    return slabBuffer(at, outLen);
  }
  const out = Buffer.allocUnsafe(outLen);
  decompress(input, start, end, out, new DataView(out.buffer, out.byteOffset, outLen), 0, outLen, baseOffset);
  return out;
}

/**
 * lzfDecompressRange into out[outStart, outStart + outLen), which the caller provides (and
 * may find partly written on an error); `data` is a DataView of the same memory as `out`
 * (data offset i = out[i]).
 */
export function lzfDecompressInto(input: Uint8Array, start: number, end: number, out: Uint8Array, data: DataView, outStart: number, outLen: number, baseOffset = 0): void {
  checkLengths(end - start, outLen, baseOffset);
  decompress(input, start, end, out, data, outStart, outLen, baseOffset);
}

/** Checks the lengths before any output is allocated. */
function checkLengths(inLen: number, outLen: number, baseOffset: number): void {
  if (!Number.isSafeInteger(outLen) || outLen < 0) {
    throw new RdbError('BAD_LZF', baseOffset, `invalid uncompressed length ${outLen}`);
  }
  // No encoder emits these. Redis refuses a zero length, and on empty input its
  // lzf_decompress would read a control byte that is not there.
  if (inLen === 0) throw new RdbError('BAD_LZF', baseOffset, 'empty compressed data');
  if (outLen === 0) throw new RdbError('BAD_LZF', baseOffset, 'zero uncompressed length');
  // No input byte yields more than 88 output bytes (the 3-byte back-reference copies at most
  // 264), so a larger outLen is a lie we reject before allocating for it.
  if (outLen > inLen * 88) {
    throw new RdbError('BAD_LZF', baseOffset, `${inLen} compressed bytes cannot expand to ${outLen}`);
  }
}

/** The decoder proper; out positions are absolute, error positions relative (as documented). */
function decompress(input: Uint8Array, start: number, end: number, out: Uint8Array, data: DataView, outStart: number, outLen: number, baseOffset: number): void {
  const inBase = baseOffset - start; // errors report inBase + ip
  const outEnd = outStart + outLen;
  let ip = start;
  let op = outStart;
  while (ip < end) {
    const ctrlAt = ip;
    const ctrl = input[ip++];
    if (ctrl < 32) {
      const run = ctrl + 1;
      if (ip + run > end) {
        throw new RdbError('BAD_LZF', inBase + ctrlAt, `literal run of ${run} bytes passes the end of the input`);
      }
      if (op + run > outEnd) {
        throw new RdbError('BAD_LZF', inBase + ctrlAt, `output exceeds the declared ${outLen} bytes`);
      }
      for (let k = 0; k < run; k++) out[op++] = input[ip++];
    } else {
      let len = ctrl >> 5;
      if (len === 7) {
        if (ip >= end) {
          throw new RdbError('BAD_LZF', inBase + ctrlAt, 'back-reference length byte missing');
        }
        len += input[ip++];
      }
      if (ip >= end) {
        throw new RdbError('BAD_LZF', inBase + ctrlAt, 'back-reference offset byte missing');
      }
      const dist = ((ctrl & 0x1f) << 8) + input[ip++] + 1;
      len += 2;
      if (dist > op - outStart) {
        throw new RdbError('BAD_LZF', inBase + ctrlAt, `back-reference ${dist} bytes behind output position ${op - outStart}`);
      }
      if (op + len > outEnd) {
        throw new RdbError('BAD_LZF', inBase + ctrlAt, `output exceeds the declared ${outLen} bytes`);
      }
      let ref = op - dist;
      const copyEnd = op + len;
      // copyWithin and fill pay a call per use (~17 ns), so they only win for long copies;
      // and copyWithin copies as if through a temporary, which is wrong for an overlapping
      // reference. 4-byte words (DataView) are right for one as long as each word's source
      // is already written, i.e. dist >= 4; and about 3x faster than bytes.
      if (len >= 32 && dist >= len) {
        out.copyWithin(op, ref, copyEnd);
        op = copyEnd;
      } else if (dist === 1) {
        // a run of one byte, as in padding: how LZF compresses it
        const v = out[ref];
        if (len >= 64) {
          u8fill.call(out, v, op, copyEnd);
          op = copyEnd;
        } else {
          const word = v * 0x01010101;
          for (; op + 4 <= copyEnd; op += 4) data.setInt32(op, word, true);
          while (op < copyEnd) out[op++] = v;
        }
      } else {
        if (dist >= 4) {
          for (; op + 4 <= copyEnd; op += 4, ref += 4) data.setInt32(op, data.getInt32(ref, true), true);
        }
        while (op < copyEnd) out[op++] = out[ref++];
      }
    }
  }
  if (op !== outEnd) {
    throw new RdbError('BAD_LZF', inBase + end, `decompressed to ${op - outStart} bytes, expected ${outLen}`);
  }
}

/** TypedArray fill, without the argument handling of Buffer's own fill. */
const u8fill = Uint8Array.prototype.fill;

const MAX_LITERAL = 32;
const MAX_DISTANCE = 8192;
const MAX_MATCH = 264;
const MIN_MATCH = 3;

/**
 * Compresses in LZF format so that Redis's lzf_decompress restores it (for building DUMP
 * payloads and RDB files). The output is not byte-identical to lzf_c.c, only compatible.
 * Returns null when compression would not make the data smaller: the caller then stores
 * it raw, as Redis does.
 */
export function lzfCompress(input: Uint8Array): Buffer | null {
  const n = input.length;
  if (n < MIN_MATCH + 1) return null;
  // Scale the hash table to the input (up to 64 K slots, as HLOG=16 in Redis), so that small
  // strings do not pay for clearing a big table. Slots hold position + 1; 0 means empty.
  let hashBits = 8;
  while (hashBits < 16 && 1 << hashBits < n) hashBits++;
  const table = new Int32Array(1 << hashBits);
  const shift = 32 - hashBits;

  // Anything >= n bytes is useless (we return null), so the buffer never needs more than n
  // bytes plus the slack one step may write past the limit before we check it.
  const out = Buffer.allocUnsafe(n + 4);
  let op = 1; // out[0] is reserved for the control byte of the first literal run
  let lit = 0; // length of the open literal run, whose control byte is out[op - lit - 1]
  let ip = 0;
  const lastMatchStart = n - MIN_MATCH;

  while (ip <= lastMatchStart) {
    const h = Math.imul((input[ip] << 16) | (input[ip + 1] << 8) | input[ip + 2], 0x9e3779b1) >>> shift;
    const ref = table[h] - 1;
    table[h] = ip + 1;
    if (
      ref >= 0 &&
      ip - ref <= MAX_DISTANCE &&
      input[ref] === input[ip] &&
      input[ref + 1] === input[ip + 1] &&
      input[ref + 2] === input[ip + 2]
    ) {
      const maxLen = Math.min(n - ip, MAX_MATCH);
      let len = MIN_MATCH;
      while (len < maxLen && input[ref + len] === input[ip + len]) len++;

      // Close the open literal run, or take back its unused control byte.
      if (lit > 0) out[op - lit - 1] = lit - 1;
      else op--;

      const dist = ip - ref - 1;
      const code = len - 2;
      if (code < 7) {
        out[op++] = (code << 5) | (dist >> 8);
      } else {
        out[op++] = (7 << 5) | (dist >> 8);
        out[op++] = code - 7;
      }
      out[op++] = dist & 0xff;
      op++; // control byte of the next literal run
      lit = 0;

      // Index the positions inside the match too, so later repeats of them are found.
      const matchEnd = ip + len;
      const indexEnd = Math.min(matchEnd, lastMatchStart + 1);
      for (let p = ip + 1; p < indexEnd; p++) {
        table[Math.imul((input[p] << 16) | (input[p + 1] << 8) | input[p + 2], 0x9e3779b1) >>> shift] = p + 1;
      }
      ip = matchEnd;
    } else {
      out[op++] = input[ip++];
      if (++lit === MAX_LITERAL) {
        out[op - lit - 1] = lit - 1;
        lit = 0;
        op++;
      }
    }
    if (op >= n) return null;
  }
  while (ip < n) {
    out[op++] = input[ip++];
    if (++lit === MAX_LITERAL) {
      out[op - lit - 1] = lit - 1;
      lit = 0;
      op++;
    }
    if (op >= n) return null;
  }
  if (lit > 0) out[op - lit - 1] = lit - 1;
  else op--;
  if (op >= n) return null;
  // Do not pin a large mostly-unused buffer behind a small result.
  return op < n >>> 1 ? Buffer.from(out.subarray(0, op)) : out.subarray(0, op);
}
