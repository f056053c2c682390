/**
 * CRC-64/Jones as Redis computes it (src/crc64.c): reflected polynomial 0xad93d23594c935a9,
 * init 0, no final xor; crc64(0, "123456789") = 0xe9c6d914c4b8d9ca. It guards the end of
 * every RDB file (version 5+) and every DUMP payload, stored as 8 bytes little-endian.
 *
 * A streaming parser runs it over the whole snapshot, so it must not be the bottleneck:
 * the 64-bit state lives in two uint32 halves (BigInt in the loop is ~50x slower), and the
 * inner loop consumes 16 bytes per step with 16 lookup tables ("slicing-by-16"), which cuts
 * the serial dependency on the previous state to one step per 16 bytes. Long inputs go
 * through the same algorithm in a small WebAssembly function (built below), where the state
 * is one i64 and a table entry one load: about 2.5x the speed of the JavaScript loop, which
 * remains for short inputs and where WebAssembly is not available (e.g. node --jitless).
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

// ---- the WebAssembly version of the bulk loop ----

/** Memory layout: the 16 tables (TABLE as little-endian i64s), the state, the input block. */
const WASM_CRC_AT = SLICES * 256 * 8;
const WASM_INPUT_AT = WASM_CRC_AT + 64;
const WASM_BLOCK = 64 * 1024;
/** Shorter inputs are not worth the copy and the call. */
const WASM_MIN_BYTES = 512;

interface WasmCrc {
  /** update(n): folds input block bytes [0, n) into the state. */
  update: (n: number) => void;
  bytes: Uint8Array;
  /** The state as [lo, hi] int32 halves. */
  state: Int32Array;
}

/** What is used of the WebAssembly global (not in the ES2022 type library this builds with). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

/** Built on first use: undefined before, null when unavailable. */
let wasmCrc: WasmCrc | null | undefined;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a small non-negative constant (< 2^31). */
function sleb(n: number): number[] {
  const out = uleb(n);
  if (out[out.length - 1] & 0x40) {
    out[out.length - 1] |= 0x80;
    out.push(0);
  }
  return out;
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

/**
 * The module: memory "mem" (2 pages) and update(n: i32), which runs slicing-by-16 over the
 * input block, as Crc64.update does in JavaScript:
 *
 *   crc = load64(CRC); p = INPUT; end = p + n; end16 = p + (n & ~15)
 *   while p < end16: a = crc ^ load64(p); b = load64(p + 8)
 *     crc = XOR over j < 8 of T[15 - j][byte j of a] ^ T[7 - j][byte j of b]; p += 16
 *   while p < end: crc = T[0][(crc ^ load8(p)) & 255] ^ (crc >>> 8); p += 1
 *   store64(CRC, crc)
 */
function wasmModule(): Uint8Array {
  const I32_CONST = 0x41;
  const I64_CONST = 0x42;
  const LOCAL_GET = 0x20;
  const LOCAL_SET = 0x21;
  const I64_LOAD = 0x29;
  const I64_STORE = 0x37;
  const I32_LOAD8_U = 0x2d;
  const I32_ADD = 0x6a;
  const I32_AND = 0x71;
  const I32_XOR = 0x73;
  const I32_SHL = 0x74;
  const I32_GE_U = 0x4f;
  const I64_XOR = 0x85;
  const I64_SHR_U = 0x88;
  const I32_WRAP_I64 = 0xa7;
  const BLOCK = 0x02;
  const LOOP = 0x03;
  const VOID = 0x40;
  const BR = 0x0c;
  const BR_IF = 0x0d;
  const END = 0x0b;
  // locals: 0 n, 1 p, 2 end, 3 end16 (i32); 4 crc, 5 a, 6 b (i64)
  const [N, P, E, E16, CRC, A, B] = [0, 1, 2, 3, 4, 5, 6];
  /** T[k][byte j of the i64 in local v]: the table entry, on the stack. */
  const lookup = (v: number, j: number, k: number): number[] => [
    LOCAL_GET, v,
    ...(j > 0 ? [I64_CONST, ...sleb(8 * j), I64_SHR_U] : []),
    I32_WRAP_I64, I32_CONST, ...sleb(255), I32_AND, I32_CONST, 3, I32_SHL,
    I64_LOAD, 3, ...uleb(k * 2048),
  ];
  const step16: number[] = [];
  for (let j = 0; j < 8; j++) {
    step16.push(...lookup(A, j, 15 - j));
    if (j > 0) step16.push(I64_XOR);
    step16.push(...lookup(B, j, 7 - j), I64_XOR);
  }
  const body = [
    I32_CONST, ...sleb(WASM_CRC_AT), I64_LOAD, 3, 0, LOCAL_SET, CRC,
    I32_CONST, ...sleb(WASM_INPUT_AT), LOCAL_SET, P,
    LOCAL_GET, P, LOCAL_GET, N, I32_ADD, LOCAL_SET, E,
    LOCAL_GET, P, LOCAL_GET, N, I32_CONST, 0x70 /* -16 */, I32_AND, I32_ADD, LOCAL_SET, E16,
    BLOCK, VOID, LOOP, VOID,
    LOCAL_GET, P, LOCAL_GET, E16, I32_GE_U, BR_IF, 1,
    LOCAL_GET, CRC, LOCAL_GET, P, I64_LOAD, 3, 0, I64_XOR, LOCAL_SET, A,
    LOCAL_GET, P, I64_LOAD, 3, 8, LOCAL_SET, B,
    ...step16, LOCAL_SET, CRC,
    LOCAL_GET, P, I32_CONST, 16, I32_ADD, LOCAL_SET, P,
    BR, 0, END, END,
    BLOCK, VOID, LOOP, VOID,
    LOCAL_GET, P, LOCAL_GET, E, I32_GE_U, BR_IF, 1,
    LOCAL_GET, CRC, I64_CONST, 8, I64_SHR_U,
    LOCAL_GET, CRC, I32_WRAP_I64, LOCAL_GET, P, I32_LOAD8_U, 0, 0, I32_XOR,
    I32_CONST, ...sleb(255), I32_AND, I32_CONST, 3, I32_SHL, I64_LOAD, 3, 0,
    I64_XOR, LOCAL_SET, CRC,
    LOCAL_GET, P, I32_CONST, 1, I32_ADD, LOCAL_SET, P,
    BR, 0, END, END,
    I32_CONST, ...sleb(WASM_CRC_AT), LOCAL_GET, CRC, I64_STORE, 3, 0,
    END,
  ];
  const locals = [2, 3, 0x7f, 3, 0x7e]; // 3 more i32, 3 i64
  const func = [...locals, ...body];
  const pages = Math.ceil((WASM_INPUT_AT + WASM_BLOCK) / 65536);
  const name = (s: string): number[] => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 1, 0x7f, 0]), // type 0: (i32) -> ()
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 0, pages]), // one memory of `pages` pages
    ...section(7, [2, ...name('mem'), 2, 0, ...name('update'), 0, 0]),
    ...section(10, [1, ...uleb(func.length), ...func]),
  ]);
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
    if (end - start >= WASM_MIN_BYTES) {
      if (wasmCrc === undefined) wasmCrc = LITTLE_ENDIAN ? Crc64.buildWasm() : null;
      const wasm = wasmCrc;
      if (wasm !== null) {
        // Block by block through the module's memory.
        wasm.state[0] = this.lo;
        wasm.state[1] = this.hi;
        for (let i = start; i < end; ) {
          const n = Math.min(end - i, WASM_BLOCK);
          wasm.bytes.set(buf.subarray(i, i + n), WASM_INPUT_AT);
          wasm.update(n);
          i += n;
        }
        this.lo = wasm.state[0];
        this.hi = wasm.state[1];
        return this;
      }
    }
    this.updateJs(buf, start, end);
    return this;
  }

  /** The WebAssembly loop, or null when it cannot be built or fails its self-test. */
  private static buildWasm(): WasmCrc | null {
    try {
      const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
      if (api === undefined) return null;
      const instance = new api.Instance(new api.Module(wasmModule()));
      const mem = instance.exports.mem as { buffer: ArrayBuffer };
      new Int32Array(mem.buffer, 0, TABLE.length).set(TABLE);
      const wasm: WasmCrc = {
        update: instance.exports.update as (n: number) => void,
        bytes: new Uint8Array(mem.buffer),
        state: new Int32Array(mem.buffer, WASM_CRC_AT, 2),
      };
      // Self-test against the JavaScript loop before trusting it.
      const probe = new Uint8Array(WASM_MIN_BYTES + 37);
      for (let i = 0; i < probe.length; i++) probe[i] = (i * 151 + 7) & 0xff;
      const js = new Crc64();
      js.updateJs(probe, 0, probe.length);
      wasm.bytes.set(probe, WASM_INPUT_AT);
      wasm.state[0] = 0;
      wasm.state[1] = 0;
      wasm.update(probe.length);
      return js.equals(new Uint8Array(wasm.state.buffer, WASM_CRC_AT, 8)) ? wasm : null;
    } catch {
      return null;
    }
  }

  /** update() in JavaScript (range already checked). */
  private updateJs(buf: Uint8Array, start: number, end: number): void {
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
  }

  /** The CRC so far as the 8 little-endian bytes Redis stores after an RDB or DUMP payload. */
  digest(): Buffer {
    const out = Buffer.allocUnsafe(8);
    this.writeDigest(out, 0);
    return out;
  }

  /** digest() written at buf[offset..offset+8]. */
  writeDigest(buf: Buffer, offset: number): void {
    buf.writeInt32LE(this.lo, offset);
    buf.writeInt32LE(this.hi, offset + 4);
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
