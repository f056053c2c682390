/**
 * Streaming RESP2/RESP3 parser.
 *
 * Usage:
 *
 *   const parser = new RespParser();
 *   socket.on('data', (chunk) => {
 *     parser.push(chunk);
 *     let value;
 *     while ((value = parser.next()) !== undefined) handle(value, parser.lastSize);
 *   });
 *
 * `next()` returns `undefined` (never a RESP value) when the buffered bytes do not hold a
 * complete value; `null` is a real value (RESP null). `lastSize` is the exact number of bytes
 * the returned value occupied on the wire and `offset` the running total, which is what a
 * replica must acknowledge as its replication offset.
 *
 * Value model: scalars become the JS value that holds them exactly; aggregates whose shape or
 * meaning differs from a plain array keep their RESP3 kind as a small class.
 *
 *   `$` bulk string            Buffer (binary-safe)
 *   `+` simple string          string (UTF-8)
 *   `-` error, `!` blob error  RespError (returned, not thrown)
 *   `:` integer                number, or bigint when outside ±(2^53-1)
 *   `(` big number             bigint
 *   `,` double                 number (inf, -inf, nan map to Infinity, -Infinity, NaN)
 *   `#` boolean                boolean
 *   `_` null, `$-1`, `*-1`     null
 *   `*` array                  RespValue[]
 *   `%` map                    RespMap (ordered key/value pairs; keys are not deduplicated)
 *   `~` set                    RespSet
 *   `>` push                   RespPush (out-of-band: pub/sub messages, invalidations)
 *   `=` verbatim string        RespVerbatim (3-char format plus the text as a Buffer)
 *   `|` attribute              skipped by default; with `keepAttributes`, the value it precedes
 *                              is returned wrapped in RespAttributed
 *
 * Integer and double therefore share `number`: the value is exact either way, and nothing in
 * this package dispatches on the wire tag. RESP3 streamed aggregates (`?` counts, `;` chunks)
 * are not supported; Redis does not send them.
 *
 * Buffer lifetime: a returned Buffer is usually a view into a chunk passed to `push()` (no
 * copy), and otherwise a view into a Buffer the parser allocated to join a value split across
 * chunks. The parser never writes into either after handing it out, so values stay valid for as
 * long as the caller does not overwrite the chunks it pushed. A view keeps its whole chunk alive;
 * copy (`Buffer.from(value)`) what you retain for long.
 *
 * Memory: a split value is joined exactly once, when all of its bytes have arrived; until then
 * chunks are only queued, so a 100 MB bulk in 64 KB chunks costs one 100 MB copy. A claimed
 * length or count allocates nothing up front beyond a small fixed array head.
 */
import { Buffer } from 'node:buffer';
import { view } from '../buffers/decoder-alloc';
import { describeByte, RespError, RespProtocolError, type RespProtocolErrorCode } from './errors';

export type RespValue =
  | Buffer
  | string
  | number
  | bigint
  | boolean
  | null
  | RespError
  | RespValue[]
  | RespMap
  | RespSet
  | RespPush
  | RespVerbatim
  | RespAttributed;

/** RESP3 map. Kept flat (k0, v0, k1, v1, ...) as it arrives: keys may be Buffers, which a JS Map could not look up. */
export class RespMap {
  constructor(readonly flat: RespValue[]) {}

  get size(): number {
    return this.flat.length >>> 1;
  }

  /** The value of the first entry whose key is a string or Buffer with exactly these UTF-8 bytes. */
  get(key: string | Buffer): RespValue | undefined {
    const bytes = typeof key === 'string' ? Buffer.from(key) : key;
    const flat = this.flat;
    for (let i = 0; i < flat.length; i += 2) {
      const k = flat[i];
      if (typeof k === 'string' ? bytes.equals(Buffer.from(k)) : Buffer.isBuffer(k) && bytes.equals(k)) {
        return flat[i + 1];
      }
    }
    return undefined;
  }

  *[Symbol.iterator](): IterableIterator<[RespValue, RespValue]> {
    const flat = this.flat;
    for (let i = 0; i < flat.length; i += 2) yield [flat[i], flat[i + 1]];
  }
}

/** RESP3 set. Kept as an array in wire order: elements may be Buffers, which a JS Set compares by identity. */
export class RespSet {
  constructor(readonly items: RespValue[]) {}
}

/** RESP3 push: out-of-band data, never the reply to a command. `items[0]` names its kind (e.g. "message"). */
export class RespPush {
  constructor(readonly items: RespValue[]) {}
}

/** RESP3 verbatim string, e.g. format "txt" or "mkd". */
export class RespVerbatim {
  constructor(
    readonly format: string,
    readonly text: Buffer,
  ) {}

  toString(): string {
    return this.text.toString('utf8');
  }
}

/** A value together with the RESP3 attribute that preceded it (only with `keepAttributes`). */
export class RespAttributed {
  constructor(
    readonly attributes: RespMap,
    readonly value: RespValue,
  ) {}
}

export interface RespParserOptions {
  /** Largest accepted bulk, verbatim or blob-error length. Default 512 MiB (Redis's proto-max-bulk-len). */
  maxBulkLength?: number;
  /** Largest accepted element count of an array, set or push, and pair count of a map or attribute. Default 2^31-1. */
  maxArrayLength?: number;
  /** Longest accepted simple string, error, number or header line, CRLF excluded. Default 1 MiB. */
  maxLineLength?: number;
  /** Deepest accepted nesting of aggregates. Default 1024. */
  maxDepth?: number;
  /** Return attributed values as RespAttributed instead of dropping the attribute. Default false. */
  keepAttributes?: boolean;
}

const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);
const NO_ITEMS: RespValue[] = [];
/** Arrays are preallocated up to this many slots; beyond it they grow as elements actually arrive. */
const PREALLOC = 1024;
/** More digits than this cannot be a 64-bit integer, whatever the sign. */
const MAX_INTEGER_DIGITS = 20;
/** Longer than any length line ("$" plus a 20-digit number plus CRLF). */
const EAGER_LINE = 64;
const DOUBLE_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const BIG_NUMBER_RE = /^-?\d+$/;


/** One open aggregate. Frames are pooled per depth so that parsing allocates only the values themselves. */
class Frame {
  type = 0;
  count = 0;
  index = 0;
  items: RespValue[] = NO_ITEMS;
  /** Attribute annotating this aggregate itself (keepAttributes only). */
  own: RespMap | null = null;
  /** Attribute waiting for the next element of this aggregate (keepAttributes only). */
  pending: RespMap | null = null;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`RespParser option ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}

export class RespParser {
  private readonly maxBulk: number;
  private readonly maxArray: number;
  private readonly maxLine: number;
  private readonly maxDepth: number;
  private readonly keepAttributes: boolean;

  /** Chunk being parsed, and the position of the next unparsed byte in it. */
  private buf: Buffer = EMPTY;
  private pos = 0;
  /** Absolute stream offset of buf[0]. */
  private base = 0;
  /** Chunks pushed while `buf` still had unparsed bytes. */
  private queue: Buffer[] = [];
  private queued = 0;
  /** Queued chunks, and their bytes, already searched for the LF of a stalled line; reset whenever the queue head changes. */
  private scannedChunks = 0;
  private scannedBytes = 0;
  /** Bytes from `pos` that the stalled scalar needs in total; 0 when it is a line (read through the next LF). */
  private need = 0;
  /** Where the last successfully read length line ended (the byte after its LF). */
  private cursor = 0;
  private depth = 0;
  private readonly frames: Frame[] = [];
  /** How many kept attributes wait for their value, so the hot path tests one number. */
  private pendingAttrs = 0;
  private topAttrs: RespMap | null = null;
  private failure: RespProtocolError | null = null;
  private lastSize_ = 0;
  private offset_ = 0;

  constructor(options: RespParserOptions = {}) {
    this.maxBulk = positiveInteger('maxBulkLength', options.maxBulkLength, 512 * 1024 * 1024);
    this.maxArray = positiveInteger('maxArrayLength', options.maxArrayLength, 2 ** 31 - 1);
    this.maxLine = positiveInteger('maxLineLength', options.maxLineLength, 1024 * 1024);
    this.maxDepth = positiveInteger('maxDepth', options.maxDepth, 1024);
    this.keepAttributes = options.keepAttributes === true;
  }

  /** Bytes the value last returned by `next()` occupied, including any attribute before it. */
  get lastSize(): number {
    return this.lastSize_;
  }

  /** Absolute stream offset just past the value last returned by `next()`: the sum of all `lastSize`s. */
  get offset(): number {
    return this.offset_;
  }

  /** Bytes pushed but not yet returned as part of a complete value. */
  get bufferedBytes(): number {
    return this.base + this.buf.length + this.queued - this.offset_;
  }

  /** Appends a chunk. Never parses, never throws on content, never copies. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.pos === this.buf.length && this.queue.length === 0) {
      this.base += this.buf.length;
      this.buf = chunk;
      this.pos = 0;
    } else {
      this.queue.push(chunk);
      this.queued += chunk.length;
    }
  }

  /**
   * The next complete top-level value, or `undefined` when more bytes are needed.
   * @throws RespProtocolError on invalid input, and again on every later call.
   */
  next(): RespValue | undefined {
    if (this.failure !== null) throw this.failure;
    try {
      for (;;) {
        const value = this.parse();
        if (value !== undefined) return value;
        if (!this.refill()) return undefined;
      }
    } catch (err) {
      if (err instanceof RespProtocolError) this.failure = err;
      throw err;
    }
  }

  /**
   * Removes and returns every buffered byte that is not part of a returned value, for a caller
   * that switches the connection to another framing (after `+FULLRESYNC`, the RDB payload
   * follows raw). Only allowed between values. The bytes count as consumed in `offset`.
   */
  takeBuffered(): Buffer {
    if (this.base + this.pos !== this.offset_) {
      throw new Error('RespParser.takeBuffered() called in the middle of a value');
    }
    const parts = [this.buf.subarray(this.pos), ...this.queue];
    const out = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    this.offset_ += out.length;
    this.base = this.offset_;
    this.buf = EMPTY;
    this.pos = 0;
    this.queue = [];
    this.queued = 0;
    this.scannedChunks = 0;
    this.scannedBytes = 0;
    return out;
  }

  /** Parses from the saved state; returns a complete top-level value or `undefined` after saving where it stalled. */
  private parse(): RespValue | undefined {
    const buf = this.buf;
    const len = buf.length;
    const bytes = buf.buffer;
    const byteOffset = buf.byteOffset;
    const frames = this.frames;
    let pos = this.pos;
    let depth = this.depth;

    for (;;) {
      if (pos >= len) return this.stall(pos, depth, 0);
      let value: RespValue;
      const type = buf[pos];

      // Cases are ordered by frequency in a replication stream: bulk strings inside arrays.
      if (type === 36 /* $ */) {
        const n = this.readLength(buf, pos + 1, len, this.maxBulk);
        if (n >= 0) {
          const start = this.cursor;
          const end = start + n;
          if (end + 2 > len) return this.stall(pos, depth, end + 2 - pos);
          if (buf[end] !== CR || buf[end + 1] !== LF) this.missingCrlf(buf, end);
          value = view(bytes, byteOffset + start, n);
          pos = end + 2;
        } else if (n === -1) {
          value = null;
          pos = this.cursor;
        } else {
          return this.stall(pos, depth, 0);
        }
      } else if (type === 42 /* * */) {
        const n = this.readLength(buf, pos + 1, len, this.maxArray);
        if (n < -1) return this.stall(pos, depth, 0);
        if (n > 0) {
          depth = this.open(depth, type, n, pos);
          pos = this.cursor;
          continue;
        }
        value = n === 0 ? [] : null;
        pos = this.cursor;
      } else if (type === 37 /* % */ || type === 126 /* ~ */ || type === 62 /* > */ || type === 124 /* | */) {
        const n = this.readLength(buf, pos + 1, len, this.maxArray);
        if (n < -1) return this.stall(pos, depth, 0);
        if (n === -1) this.fail('BAD_LENGTH', pos + 1, `${describeByte(type)} aggregate cannot be -1 (null)`);
        if (n > 0) {
          depth = this.open(depth, type, type === 37 || type === 124 ? n * 2 : n, pos);
          pos = this.cursor;
          continue;
        }
        pos = this.cursor;
        if (type === 124) {
          this.attributeDone([], depth);
          continue;
        }
        value = type === 37 ? new RespMap([]) : type === 126 ? new RespSet([]) : new RespPush([]);
      } else {
        const v = this.scalar(buf, pos, len, type);
        if (v === undefined) return this.stall(pos, depth, this.need);
        value = v;
        pos = this.cursor;
      }

      if (this.pendingAttrs !== 0) value = this.annotate(depth, value);

      // Hand the value to its parent; each parent it completes becomes the value to hand up.
      for (;;) {
        if (depth === 0) {
          this.pos = pos;
          this.depth = 0;
          const end = this.base + pos;
          this.lastSize_ = end - this.offset_;
          this.offset_ = end;
          return value;
        }
        const f = frames[depth - 1];
        f.items[f.index++] = value;
        if (f.index < f.count) break;
        depth--;
        const items = f.items;
        f.items = NO_ITEMS;
        if (f.type === 124) {
          this.attributeDone(items, depth);
          break;
        }
        value = f.type === 42 ? items : f.type === 37 ? new RespMap(items) : f.type === 126 ? new RespSet(items) : new RespPush(items);
        if (f.own !== null) {
          value = new RespAttributed(f.own, value);
          f.own = null;
        }
      }
    }
  }

  /**
   * Reads a length line starting at `i` (just after the type byte): -1 for the literal "-1",
   * otherwise the non-negative length, with `cursor` set past the LF; -2 when the line is incomplete.
   */
  private readLength(buf: Buffer, i: number, len: number, max: number): number {
    if (i >= len) return -2;
    if (buf[i] === 45 /* - */) {
      if (i + 1 >= len) return -2;
      if (buf[i + 1] !== 49 /* 1 */) this.fail('BAD_LENGTH', i, 'negative length other than -1');
      if (i + 2 >= len) return -2;
      if (buf[i + 2] !== CR) this.fail('BAD_LENGTH', i, 'negative length other than -1');
      if (i + 3 >= len) return -2;
      if (buf[i + 3] !== LF) this.missingCrlf(buf, i + 2);
      this.cursor = i + 4;
      return -1;
    }
    const first = i;
    let n = 0;
    for (; i < len; i++) {
      const c = buf[i];
      if (c === CR) break;
      const d = c - 48;
      if (d < 0 || d > 9) this.fail('BAD_LENGTH', i, `non-digit ${describeByte(c)} in length`, c);
      n = n * 10 + d;
      if (n > max) this.fail('LENGTH_LIMIT', first, `length exceeds the maximum of ${max}`);
    }
    if (i + 1 >= len) return -2;
    if (i === first) this.fail('BAD_LENGTH', i, 'empty length');
    if (buf[i + 1] !== LF) this.missingCrlf(buf, i);
    this.cursor = i + 2;
    return n;
  }

  /** Every type but `$`, `*` and the other aggregates. Sets `cursor` past the value, or `need` and returns undefined. */
  private scalar(buf: Buffer, pos: number, len: number, type: number): RespValue | undefined {
    switch (type) {
      case 43 /* + */: {
        const end = this.lineEnd(buf, pos, len);
        return end < 0 ? undefined : buf.toString('utf8', pos + 1, end);
      }
      case 45 /* - */: {
        const end = this.lineEnd(buf, pos, len);
        return end < 0 ? undefined : new RespError(buf.toString('utf8', pos + 1, end));
      }
      case 58 /* : */:
        return this.integer(buf, pos, len);
      case 95 /* _ */: {
        const end = this.lineEnd(buf, pos, len);
        if (end < 0) return undefined;
        if (end !== pos + 1) this.fail('BAD_VALUE', pos + 1, 'null must be "_\\r\\n"');
        return null;
      }
      case 35 /* # */: {
        const end = this.lineEnd(buf, pos, len);
        if (end < 0) return undefined;
        const c = buf[pos + 1];
        if (end !== pos + 2 || (c !== 116 /* t */ && c !== 102) /* f */) {
          this.fail('BAD_VALUE', pos + 1, 'boolean must be "#t" or "#f"');
        }
        return c === 116;
      }
      case 44 /* , */: {
        const end = this.lineEnd(buf, pos, len);
        return end < 0 ? undefined : this.double(buf.toString('latin1', pos + 1, end), pos + 1);
      }
      case 40 /* ( */: {
        const end = this.lineEnd(buf, pos, len);
        if (end < 0) return undefined;
        const text = buf.toString('latin1', pos + 1, end);
        if (!BIG_NUMBER_RE.test(text)) this.fail('BAD_VALUE', pos + 1, `malformed big number "${text}"`);
        return BigInt(text);
      }
      case 61 /* = */: {
        const start = this.blob(buf, pos, len);
        if (start < 0) return undefined;
        const end = this.cursor - 2;
        if (end - start < 4 || buf[start + 3] !== 58 /* : */) {
          this.fail('BAD_VALUE', start, 'verbatim string must start with a 3-character format and ":"');
        }
        return new RespVerbatim(buf.toString('latin1', start, start + 3), buf.subarray(start + 4, end));
      }
      case 33 /* ! */: {
        const start = this.blob(buf, pos, len);
        return start < 0 ? undefined : new RespError(buf.toString('utf8', start, this.cursor - 2));
      }
      default:
        return this.fail('UNKNOWN_TYPE', pos, `unknown type byte ${describeByte(type)}`, type);
    }
  }

  /** Index of the CR ending the line that starts at `pos` (with `cursor` past its LF), or -1 when incomplete. */
  private lineEnd(buf: Buffer, pos: number, len: number): number {
    let i = pos + 1;
    // A manual loop beats indexOf on the short lines RESP carries, and it catches a bare LF.
    for (; i < len; i++) {
      const c = buf[i];
      if (c === CR) break;
      if (c === LF) this.fail('MISSING_CRLF', i, 'bare LF inside a line', c);
    }
    if (i + 1 >= len) {
      this.need = 0;
      return -1;
    }
    if (buf[i + 1] !== LF) this.missingCrlf(buf, i);
    // Also checked when complete, so that acceptance does not depend on how the line was chunked.
    if (i - pos - 1 > this.maxLine) this.lineTooLong(pos);
    this.cursor = i + 2;
    return i;
  }

  /** Reads the length-prefixed payload of `=` or `!`: its start (with `cursor` past its CRLF), or -1 when incomplete. */
  private blob(buf: Buffer, pos: number, len: number): number {
    const n = this.readLength(buf, pos + 1, len, this.maxBulk);
    if (n < -1) {
      this.need = 0;
      return -1;
    }
    if (n === -1) this.fail('BAD_LENGTH', pos + 1, `${describeByte(buf[pos])} payload cannot be -1 (null)`);
    const start = this.cursor;
    const end = start + n;
    if (end + 2 > len) {
      this.need = end + 2 - pos;
      return -1;
    }
    if (buf[end] !== CR || buf[end + 1] !== LF) this.missingCrlf(buf, end);
    this.cursor = end + 2;
    return start;
  }

  private integer(buf: Buffer, pos: number, len: number): number | bigint | undefined {
    let i = pos + 1;
    const negative = i < len && buf[i] === 45; /* - */
    if (negative || (i < len && buf[i] === 43 /* + */)) i++;
    const first = i;
    let n = 0;
    for (; i < len; i++) {
      const c = buf[i];
      if (c === CR) break;
      const d = c - 48;
      if (d < 0 || d > 9) this.fail('BAD_VALUE', i, `non-digit ${describeByte(c)} in integer`, c);
      if (i - first === MAX_INTEGER_DIGITS) this.fail('BAD_VALUE', first, 'integer has more than 20 digits');
      n = n * 10 + d;
    }
    if (i + 1 >= len) {
      this.need = 0;
      return undefined;
    }
    if (i === first) this.fail('BAD_VALUE', i, 'integer without digits');
    if (buf[i + 1] !== LF) this.missingCrlf(buf, i);
    this.cursor = i + 2;
    // Up to 15 digits the float accumulation above is exact; beyond, only BigInt is.
    if (i - first <= 15) return negative ? 0 - n : n;
    const big = BigInt(buf.toString('latin1', pos + 1, i));
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }

  private double(text: string, at: number): number {
    switch (text) {
      case 'inf':
      case '+inf':
        return Infinity;
      case '-inf':
        return -Infinity;
      case 'nan':
      case '-nan':
        return NaN;
    }
    // Number() alone would accept "", " 1", "0x10" and "Infinity", none of which is RESP.
    if (!DOUBLE_RE.test(text)) this.fail('BAD_VALUE', at, `malformed double "${text}"`);
    return Number(text);
  }

  private open(depth: number, type: number, count: number, at: number): number {
    if (depth >= this.maxDepth) this.fail('TOO_DEEP', at, `aggregates nested deeper than ${this.maxDepth}`);
    let f = this.frames[depth];
    if (f === undefined) {
      f = new Frame();
      this.frames.push(f);
    }
    f.type = type;
    f.count = count;
    f.index = 0;
    f.items = new Array<RespValue>(count < PREALLOC ? count : PREALLOC);
    // An attribute before an attribute stays pending for the value after both (see attributeDone).
    if (this.pendingAttrs !== 0 && type !== 124) f.own = this.takeAttributes(depth);
    return depth + 1;
  }

  /** An attribute at `depth` is complete: drop it, or hold it for the next value at that depth. */
  private attributeDone(items: RespValue[], depth: number): void {
    if (!this.keepAttributes) return;
    const holder = depth === 0 ? null : this.frames[depth - 1];
    const earlier = holder === null ? this.topAttrs : holder.pending;
    const attributes = new RespMap(earlier === null ? items : earlier.flat.concat(items));
    if (earlier === null) this.pendingAttrs++;
    if (holder === null) this.topAttrs = attributes;
    else holder.pending = attributes;
  }

  private takeAttributes(depth: number): RespMap | null {
    const holder = depth === 0 ? null : this.frames[depth - 1];
    const attributes = holder === null ? this.topAttrs : holder.pending;
    if (attributes !== null) {
      this.pendingAttrs--;
      if (holder === null) this.topAttrs = null;
      else holder.pending = null;
    }
    return attributes;
  }

  private annotate(depth: number, value: RespValue): RespValue {
    const attributes = this.takeAttributes(depth);
    return attributes === null ? value : new RespAttributed(attributes, value);
  }

  private stall(pos: number, depth: number, need: number): undefined {
    this.pos = pos;
    this.depth = depth;
    this.need = need;
    if (need === 0 && this.buf.length - pos > this.maxLine + 2) this.lineTooLong(pos);
    return undefined;
  }

  /**
   * Makes the stalled scalar at `pos` complete, if the queue holds enough bytes, by joining just
   * its bytes into one Buffer; the rest of the last chunk used stays queued as a view.
   */
  private refill(): boolean {
    const queue = this.queue;
    if (queue.length === 0) return false;
    const buf = this.buf;
    const rest = buf.length - this.pos;
    if (rest === 0) {
      const next = queue.shift() as Buffer;
      this.queued -= next.length;
      this.scannedChunks = 0;
      this.scannedBytes = 0;
      this.base += buf.length;
      this.buf = next;
      this.pos = 0;
      return true;
    }
    let need = this.need === 0 ? this.lineNeed(rest) : this.need;
    // A short line is joined even without its LF, so that a bad byte in a length is reported
    // as soon as it arrives, however the stream is chunked; a long one waits for its LF.
    if (need === 0 && rest + this.queued <= EAGER_LINE) need = rest + this.queued;
    if (need === 0 || rest + this.queued < need) return false;
    const joined = Buffer.allocUnsafe(need);
    buf.copy(joined, 0, this.pos);
    let filled = rest;
    let used = 0;
    while (filled < need) {
      const chunk = queue[used];
      const take = Math.min(chunk.length, need - filled);
      chunk.copy(joined, filled, 0, take);
      filled += take;
      if (take === chunk.length) used++;
      else queue[used] = chunk.subarray(take);
      this.queued -= take;
    }
    queue.splice(0, used);
    this.scannedChunks = 0;
    this.scannedBytes = 0;
    this.base += this.pos;
    this.buf = joined;
    this.pos = 0;
    return true;
  }

  /** Bytes from `pos` through the first LF in the queue, or 0 if no queued chunk has one yet. */
  private lineNeed(rest: number): number {
    const queue = this.queue;
    for (; this.scannedChunks < queue.length; this.scannedChunks++) {
      const chunk = queue[this.scannedChunks];
      const i = chunk.indexOf(LF);
      const scanned = rest + this.scannedBytes;
      if (i !== -1) {
        if (scanned + i > this.maxLine + 2) this.lineTooLong(this.pos);
        return scanned + i + 1;
      }
      this.scannedBytes += chunk.length;
      if (scanned + chunk.length > this.maxLine + 2) this.lineTooLong(this.pos);
    }
    return 0;
  }

  private lineTooLong(lineStart: number): never {
    return this.fail('LINE_TOO_LONG', lineStart, `line longer than ${this.maxLine} bytes`);
  }

  private missingCrlf(buf: Buffer, at: number): never {
    const c = buf[at] === CR ? buf[at + 1] : buf[at];
    const where = buf[at] === CR ? at + 1 : at;
    return this.fail('MISSING_CRLF', where, `expected CRLF, got ${describeByte(c)}`, c);
  }

  /** Throws with an absolute offset; `at` is an index into the current `buf`. */
  private fail(code: RespProtocolErrorCode, at: number, detail: string, byte?: number): never {
    throw new RespProtocolError(code, this.base + at, detail, byte);
  }
}
