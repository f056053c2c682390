/**
 * Cheap Buffers for the decoders: making one Buffer per element is the largest cost of a
 * decoded parse (tens of millions per large snapshot).
 *
 * - view(): a Buffer over existing memory. Node's `Buffer[Symbol.species]` is its internal
 *   FastBuffer class, which builds the view without the species lookup and argument checks of
 *   `subarray` or `Buffer.from(arrayBuffer, ...)`: about half their cost (the same trick as
 *   lib/resp/parser.ts). A Node that stops exposing it falls back to Buffer.from.
 * - alloc(): a small fresh Buffer carved from a private slab, as Buffer.allocUnsafe does from
 *   Node's pool (so a kept value pins at most one SLAB_BYTES slab), without its bookkeeping.
 * - decimalBuffer(): an integer's decimal text as bytes, written straight into the slab
 *   rather than through a string and Buffer.from.
 */

type ViewFactory = (bytes: ArrayBufferLike, byteOffset: number, length: number) => Buffer;

function viewFactory(): ViewFactory {
  const species: unknown = (Buffer as unknown as Record<symbol, unknown>)[Symbol.species];
  if (typeof species === 'function' && species !== Buffer) {
    const FastBuffer = species as new (bytes: ArrayBufferLike, byteOffset: number, length: number) => unknown;
    const probe = new FastBuffer(new ArrayBuffer(3), 1, 1);
    if (Buffer.isBuffer(probe) && probe.byteOffset === 1 && probe.length === 1) {
      return (bytes, byteOffset, length) => new FastBuffer(bytes, byteOffset, length) as Buffer;
    }
  }
  return (bytes, byteOffset, length) => Buffer.from(bytes, byteOffset, length);
}

/** A Buffer over `length` bytes of `bytes` from `byteOffset` (no copy, no checks). */
export const view: ViewFactory = viewFactory();

/** buf.subarray(start, end) for 0 <= start <= end <= buf.length, at about half the cost. */
export function sub(buf: Buffer, start: number, end: number): Buffer {
  return view(buf.buffer, buf.byteOffset + start, end - start);
}

const SLAB_BYTES = 8 * 1024;
/** Requests above this size get their own allocation. */
const SLAB_MAX = SLAB_BYTES >>> 2;

let slab = new ArrayBuffer(SLAB_BYTES);
let slabBytes = new Uint8Array(slab);
let slabPos = 0;

function reserve(n: number): void {
  if (slabPos + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabBytes = new Uint8Array(slab);
    slabPos = 0;
  }
}

/** A fresh, uninitialized Buffer of n bytes (Buffer.allocUnsafe without Node's pool logic). */
export function alloc(n: number): Buffer {
  if (n > SLAB_MAX) return Buffer.allocUnsafe(n);
  reserve(n);
  const b = view(slab, slabPos, n);
  slabPos = (slabPos + n + 7) & ~7;
  return b;
}

/** The decimal text of an integer (as String(n) prints it) in a fresh Buffer. */
export function decimalBuffer(n: number): Buffer {
  if (!Number.isSafeInteger(n) || Object.is(n, -0)) return Buffer.from(String(n), 'latin1');
  const neg = n < 0;
  let v = neg ? -n : n;
  let digits = 1;
  for (let t = v; t >= 10; t = Math.floor(t / 10)) digits++;
  const len = digits + (neg ? 1 : 0);
  reserve(len);
  const bytes = slabBytes;
  const start = slabPos;
  let i = start + len;
  do {
    const q = Math.floor(v / 10);
    bytes[--i] = 48 + (v - q * 10);
    v = q;
  } while (v !== 0);
  if (neg) bytes[start] = 45;
  slabPos = (start + len + 7) & ~7;
  return view(slab, start, len);
}
