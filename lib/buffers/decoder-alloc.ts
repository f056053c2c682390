/**
 * Cheap Buffers and arrays for the streaming decoders (lib/resp, lib/rdb): making one Buffer
 * per element is the largest cost of a decoded parse (tens of millions per large snapshot).
 *
 * - view(): a Buffer over existing memory. Node's `Buffer[Symbol.species]` is its internal
 *   FastBuffer class, which builds the view without the species lookup and argument checks of
 *   `subarray` or `Buffer.from(arrayBuffer, ...)`: about half their cost. A Node that stops
 *   exposing it falls back to Buffer.from.
 * - slabRoom() and co.: small fresh memory carved from a private slab, as Buffer.allocUnsafe
 *   does from Node's pool (so a kept value pins at most one SLAB_BYTES slab), without its
 *   bookkeeping, and without a Buffer when a decoder only needs the bytes.
 * - decimalBuffer(): an integer's decimal text as bytes, written straight into the slab
 *   rather than through a string and Buffer.from.
 * - list() and pair(): arrays for decoded values without an allocation site (see below).
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

/**
 * A new ArrayBuffer costs about 1-2 us (allocation, zeroing, V8's external memory
 * bookkeeping), so slabs are large enough to spread that over hundreds of values; a kept
 * value pins its slab, as any view of a pushed chunk pins that chunk.
 */
const SLAB_BYTES = 64 * 1024;
/** Requests above this size get their own allocation. */
export const SLAB_MAX = SLAB_BYTES >>> 3;

let slab = newSlab();
let slabBytes = new Uint8Array(slab);
let slabDataView = new DataView(slab);
let slabPos = 0;

/** Uninitialized memory (every byte handed out is written first). */
function newSlab(): ArrayBuffer {
  return Buffer.allocUnsafeSlow(SLAB_BYTES).buffer as ArrayBuffer;
}

function reserve(n: number): void {
  if (slabPos + n > SLAB_BYTES) {
    slab = newSlab();
    slabBytes = new Uint8Array(slab);
    slabDataView = new DataView(slab);
    slabPos = 0;
  }
}

/**
 * Room for n <= SLAB_MAX bytes, for a decoder to write into: returns the slab (slabData()
 * is a DataView of it); write at slabStart(), then slabTake(n) (or leave it, on an error),
 * and make a Buffer of it with slabBuffer() if one is needed.
 */
export function slabRoom(n: number): Uint8Array {
  reserve(n);
  return slabBytes;
}

export function slabData(): DataView {
  return slabDataView;
}

export function slabStart(): number {
  return slabPos;
}

export function slabTake(n: number): void {
  slabPos = (slabPos + n + 7) & ~7;
}

/** A Buffer of n bytes of the slab from start (taken since the last slabRoom). */
export function slabBuffer(start: number, n: number): Buffer {
  return view(slab, start, n);
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

/*
 * Arrays for decoded values. A parse keeps every value of a pushed chunk alive until push()
 * returns, so a scavenge in the middle of a chunk finds most recent values alive; V8's
 * allocation-site pretenuring then often decides (depending on timing) to allocate such a
 * site's objects in old space, and the parse runs 2-3x slower for the rest of the process,
 * in back-to-back mark-compacts. Literals (`[a, b]`, `[]`, `{...}`) carry allocation sites;
 * an array from this `new Array(n)`, whose site has seen object elements, does not. So
 * decoders allocate their per-element arrays here, and empty ones too (`list(0)`: from the
 * same site, which a literal or a never-filled `new Array()` would not be).
 */

/** A fresh array of n empty slots, or an empty array to push to. */
export function list<T>(n: number): T[] {
  return new Array<T>(n);
}

/** A fresh [a, b]. */
export function pair<A, B>(a: A, b: B): [A, B] {
  const p = list<A | B>(2) as [A, B];
  p[0] = a;
  p[1] = b;
  return p;
}
