/**
 * Encodes commands as RESP arrays of bulk strings (`*N\r\n$len\r\narg\r\n...`), the only form
 * Redis accepts from clients besides inline commands.
 *
 * Arguments: Buffers are sent as is (binary-safe); strings as UTF-8; numbers and bigints as
 * decimal text that Redis parses back to the same value: String(n), except that infinities are
 * "inf"/"-inf" (what Redis's string-to-double accepts) and -0 keeps its sign. NaN is rejected,
 * since Redis rejects it for every numeric argument.
 */
import { Buffer } from 'node:buffer';

/**
 * An argument that writes its own bytes into the output, for one that would otherwise be
 * built in a Buffer of its own only to be copied (a DUMP payload around an RDB value).
 */
export interface BulkWriter {
  readonly byteLength: number;
  /** Writes exactly `byteLength` bytes at `off`. */
  writeTo(buf: Buffer, off: number): void;
}

export type CommandArg = Buffer | string | number | bigint | BulkWriter;

const CR = 13;
const LF = 10;

// Scratch space shared by measure() and writeMeasured(): byte length per argument, and the
// decimal text of numeric arguments, so nothing is encoded or converted twice. Safe to share
// because a measure/write pair runs synchronously.
const lengths: number[] = [];
const texts: string[] = [];

function numberText(n: number): string {
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  if (Number.isNaN(n)) throw new RangeError('cannot encode NaN as a Redis argument');
  if (Object.is(n, -0)) return '-0';
  return String(n);
}

function digitCount(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** Writes a non-negative integer as decimal text at `off`; returns the offset after it. */
function writeDecimal(buf: Buffer, off: number, n: number): number {
  if (n < 10) {
    buf[off] = 48 + n;
    return off + 1;
  }
  const end = off + digitCount(n);
  let i = end;
  while (n >= 10) {
    const q = Math.floor(n / 10);
    buf[--i] = 48 + (n - q * 10);
    n = q;
  }
  buf[i - 1] = 48 + n;
  return end;
}

/** Byte length of argument `i` (its text kept for writeArg when it is a number). */
function measureArg(arg: CommandArg, i: number): number {
  let n: number;
  if (typeof arg === 'string') {
    n = Buffer.byteLength(arg, 'utf8');
  } else if (arg instanceof Uint8Array) {
    n = arg.length;
  } else if (typeof arg === 'number') {
    const text = numberText(arg);
    texts[i] = text;
    n = text.length;
  } else if (typeof arg === 'bigint') {
    const text = arg.toString();
    texts[i] = text;
    n = text.length;
  } else if (arg !== null && typeof arg === 'object' && typeof arg.writeTo === 'function') {
    n = arg.byteLength;
  } else {
    throw new TypeError(`command argument ${i} is ${arg === null ? 'null' : typeof arg}, expected Buffer, string, number, bigint or BulkWriter`);
  }
  lengths[i] = n;
  return digitCount(n) + n + 5;
}

/** Exact encoded size of one command (`head` first, if given); fills the scratch arrays for writeMeasured(). */
function measure(args: readonly CommandArg[], head?: string): number {
  const first = head === undefined ? 0 : 1;
  const count = args.length + first;
  if (count === 0) throw new RangeError('cannot encode an empty command');
  let size = digitCount(count) + 3;
  if (head !== undefined) size += measureArg(head, 0);
  for (let i = 0; i < args.length; i++) size += measureArg(args[i], i + first);
  return size;
}

function writeArg(buf: Buffer, off: number, arg: CommandArg, i: number): number {
  const n = lengths[i];
  buf[off++] = 36; /* $ */
  off = writeDecimal(buf, off, n);
  buf[off++] = CR;
  buf[off++] = LF;
  if (typeof arg === 'string') {
    buf.write(arg, off, n, 'utf8');
  } else if (arg instanceof Uint8Array) {
    buf.set(arg, off);
  } else if (typeof arg === 'object') {
    arg.writeTo(buf, off);
  } else {
    buf.write(texts[i], off, n, 'latin1');
  }
  off += n;
  buf[off++] = CR;
  buf[off++] = LF;
  return off;
}

/** Writes the command last passed to measure() at `off`; returns the offset after it. */
function writeMeasured(buf: Buffer, off: number, args: readonly CommandArg[], head?: string): number {
  const first = head === undefined ? 0 : 1;
  buf[off++] = 42; /* * */
  off = writeDecimal(buf, off, args.length + first);
  buf[off++] = CR;
  buf[off++] = LF;
  if (head !== undefined) off = writeArg(buf, off, head, 0);
  for (let i = 0; i < args.length; i++) off = writeArg(buf, off, args[i], i + first);
  return off;
}

/** One command as a new Buffer of exactly its encoded size. */
export function encodeCommand(args: readonly CommandArg[]): Buffer {
  const out = Buffer.allocUnsafe(measure(args));
  writeMeasured(out, 0, args);
  return out;
}

/** Many commands back to back in one Buffer of exactly their encoded size, for one socket write. */
export function encodeCommands(commands: readonly (readonly CommandArg[])[]): Buffer {
  let total = 0;
  for (const args of commands) total += measure(args);
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const args of commands) {
    measure(args);
    off = writeMeasured(out, off, args);
  }
  return out;
}

/**
 * Accumulates commands for pipelining without knowing their number in advance. `take()` hands
 * out what was written since the last `take()` as a view into an internal slab; later writes
 * go after it or into a new slab, never over a region already handed out.
 */
export class CommandWriter {
  private slab: Buffer;
  private start = 0;
  private end = 0;

  constructor(private readonly slabSize = 64 * 1024) {
    if (!Number.isSafeInteger(slabSize) || slabSize < 1) {
      throw new RangeError(`CommandWriter slab size must be a positive integer, got ${String(slabSize)}`);
    }
    this.slab = Buffer.allocUnsafe(slabSize);
  }

  /** Bytes written and not yet taken. */
  get length(): number {
    return this.end - this.start;
  }

  write(args: readonly CommandArg[]): this {
    const size = measure(args);
    if (this.end + size > this.slab.length) this.grow(size);
    this.end = writeMeasured(this.slab, this.end, args);
    return this;
  }

  /** `write([name, ...args])` without building that array. */
  writeNamed(name: string, args: readonly CommandArg[]): this {
    const size = measure(args, name);
    if (this.end + size > this.slab.length) this.grow(size);
    this.end = writeMeasured(this.slab, this.end, args, name);
    return this;
  }

  take(): Buffer {
    const out = this.slab.subarray(this.start, this.end);
    this.start = this.end;
    return out;
  }

  private grow(size: number): void {
    const pending = this.end - this.start;
    const slab = Buffer.allocUnsafe(Math.max(this.slabSize, (pending + size) * 2));
    this.slab.copy(slab, 0, this.start, this.end);
    this.slab = slab;
    this.start = 0;
    this.end = pending;
  }
}
