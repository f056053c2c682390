import { Crc64 } from './crc64';
import { RdbError } from './errors';
import type { RdbEvent, RdbKey } from './events';
import { decodeIntset } from './intset';
import * as listpack from './listpack';
import * as lzf from './lzf';
import { decodeModuleValue, moduleNameFromId } from './module';
import type { RdbReads } from './reads';
import { decodeStreamNode, readStreamTail, type StreamTail } from './stream';
import { RdbType as RdbTypes, type HashFieldExpire, type KeyValue, type StreamEntry, type ValueKind } from './types';
import { decodeZiplist } from './ziplist';
import * as alloc from '../buffers/decoder-alloc';
import { decodeZipmap } from './zipmap';
// Module-local bindings: under a CommonJS transform (tsx, esbuild) every use of an import
// is a property read through a getter, measurable on these per-element paths.
const view = alloc.view;
const list = alloc.list;
const pair = alloc.pair;
const { decodeListpack, listpackItems, listpackPairs, listpackScores, parseScoreBytes } = listpack;
const { lzfDecompressInto, lzfDecompressRange } = lzf;
const { slabData, slabRoom, slabStart, slabTake, SLAB_MAX } = alloc;
const RdbType = RdbTypes;

export interface RdbParserOptions {
  /**
   * A key whose serialized value grows past this many bytes is emitted in chunks of about
   * this size instead of whole, so memory stays bounded whatever the key size. Decoded, a
   * chunk also ends at CHUNK_MAX_ITEMS items (for keys of many tiny elements).
   */
  bigKeyBytes?: number;
  /** Largest single string accepted inside a value (Redis's own limit is 512 MB). */
  maxStringBytes?: number;
  /** Bytes after the EOF opcode (and checksum) are kept in `trailing` instead of an error. */
  allowTrailingData?: boolean;
  /**
   * Decode every value (default). When false, a whole key carries only its `raw` bytes
   * (`value` is null; decode later with decodeRawValue if needed), which is several times
   * faster: enough for a RESTORE-based copy. Chunked keys are always decoded.
   */
  decodeValues?: boolean;
}

/** Thrown (never escapes) when the buffered bytes end inside an atomic read. */
const NEED_MORE: unique symbol = Symbol('need-more');

const OP_SLOT_INFO = 244;
const OP_FUNCTION2 = 245;
const OP_FUNCTION_PRE_GA = 246;
const OP_MODULE_AUX = 247;
const OP_IDLE = 248;
const OP_FREQ = 249;
const OP_AUX = 250;
const OP_RESIZEDB = 251;
const OP_EXPIRETIME_MS = 252;
const OP_EXPIRETIME = 253;
const OP_SELECTDB = 254;
const OP_EOF = 255;

const MAX_RDB_VERSION = 12;
const LZF_MAX_RATIO = 100; // LZF cannot expand more than ~88x; a larger claim is corrupt
const EMPTY = Buffer.alloc(0);
/** Shared placeholders: a key only gets its own arrays when it is a collection being decoded. */
const NONE: Buffer[] = [];
const NO_SCORES: number[] = [];
const NO_EXPIRES: HashFieldExpire[] = [];
const NO_ENTRIES: StreamEntry[] = [];
/** LIST and SET item arrays are allocated for up to this many elements ahead. */
const PREALLOC_ITEMS = 1024;
/**
 * A decoded chunk holds at most about this many items (members, fields and values, stream
 * entries): small elements cost far more in memory as objects than their bytes (a 3-byte list
 * element is a Buffer of about 100 bytes), so a byte limit alone would let a chunk of tiny
 * elements take tens of MB.
 */
const CHUNK_MAX_ITEMS = 16384;
/** Large pending items are retried only after the buffer doubles, keeping re-parsing linear. */
const RETRY_DOUBLING_FROM = 1 << 20;
/** A big string is forwarded in pieces of at least this size (or its remainder). */
const STRING_PIECE_BYTES = 1 << 20;
/**
 * The longest encoding of a collection with no element: an empty ziplist (10-byte header and
 * the end byte; a listpack takes 7, an intset 8). A longer blob holds elements or is corrupt,
 * so only blobs this short need decoding to tell whether Redis would skip the key as empty.
 */
const EMPTY_BLOB_MAX = 11;
/** The longest decimal text of an integer-encoded string, by encoding: int8, int16, int32. */
const INT_TEXT_MAX = [4, 6, 11];

const enum State {
  Header,
  Opcode,
  Value,
  StringStream,
  Checksum,
  Done,
}

/** What a collection's blob decodes to: items, field-value pairs or member-score pairs. */
type Elements = Buffer[] | Array<[Buffer, Buffer]> | Array<[Buffer, number]>;

/** What a listpack decodes to. */
const enum Shape {
  Items,
  Pairs,
  Scores,
}

const enum Phase {
  Start,
  Elements,
  StreamTail,
}

/** What a key being parsed has accumulated so far. */
interface KeyCtx {
  db: number;
  key: Buffer;
  rdbType: number;
  expireMs: number | null;
  idleSeconds: number | null;
  lfuFreq: number | null;
  offset: number;
  valueStart: number;
  phase: Phase;
  remaining: number;
  total: number;
  minExpire: number;
  /** False while a key is only walked for its extent (see decodeValues). */
  decode: boolean;
  /** Whether a walked (not decoded) quicklist has met an element yet: its nodes may be empty. */
  holds: boolean;
  chunked: boolean;
  chunkIndex: number;
  chunkStart: number;
  items: Buffer[];
  /** Elements stored in items by index (LIST and SET; the others push). */
  filled: number;
  scores: number[];
  fieldExpires: HashFieldExpire[];
  entries: StreamEntry[];
}

const KIND_BY_TYPE: Record<number, KeyValue['type']> = {
  [RdbType.STRING]: 'string',
  [RdbType.LIST]: 'list',
  [RdbType.LIST_ZIPLIST]: 'list',
  [RdbType.LIST_QUICKLIST]: 'list',
  [RdbType.LIST_QUICKLIST_2]: 'list',
  [RdbType.SET]: 'set',
  [RdbType.SET_INTSET]: 'set',
  [RdbType.SET_LISTPACK]: 'set',
  [RdbType.ZSET]: 'zset',
  [RdbType.ZSET_2]: 'zset',
  [RdbType.ZSET_ZIPLIST]: 'zset',
  [RdbType.ZSET_LISTPACK]: 'zset',
  [RdbType.HASH]: 'hash',
  [RdbType.HASH_ZIPMAP]: 'hash',
  [RdbType.HASH_ZIPLIST]: 'hash',
  [RdbType.HASH_LISTPACK]: 'hash',
  [RdbType.HASH_METADATA_PRE_GA]: 'hash',
  [RdbType.HASH_LISTPACK_EX_PRE_GA]: 'hash',
  [RdbType.HASH_METADATA]: 'hash',
  [RdbType.HASH_LISTPACK_EX]: 'hash',
  [RdbType.STREAM_LISTPACKS]: 'stream',
  [RdbType.STREAM_LISTPACKS_2]: 'stream',
  [RdbType.STREAM_LISTPACKS_3]: 'stream',
  [RdbType.MODULE_2]: 'module',
};

/** The kind of value an RDB object type byte holds (the first byte of a DUMP payload); undefined for an unknown type. */
export function valueKindOf(rdbType: number): KeyValue['type'] | undefined {
  return KIND_BY_TYPE[rdbType];
}

/** The items a key's chunk holds so far (see CHUNK_MAX_ITEMS). */
function heldItems(k: KeyCtx): number {
  if (k.rdbType === RdbType.LIST || k.rdbType === RdbType.SET) return k.filled;
  return KIND_BY_TYPE[k.rdbType] === 'stream' ? k.entries.length : k.items.length;
}

function checkType(type: number, at: number): void {
  if (KIND_BY_TYPE[type] !== undefined) return;
  if (type === RdbType.MODULE_PRE_GA) {
    throw new RdbError('UNKNOWN_TYPE', at, 'module value of the pre-GA format (type 6) cannot be read without its module');
  }
  throw new RdbError('UNKNOWN_TYPE', at, `unknown object type or opcode ${type}`);
}

/** Redis writes the text of a zset score; "inf" and "-inf" are not JavaScript number syntax. */
export function parseScore(text: Buffer, offset: number): number {
  const n = parseScoreBytes(text, 0, text.length);
  if (Number.isNaN(n)) throw new RdbError('BAD_ENCODING', offset, `zset score "${text.toString('latin1')}" is not a number`);
  return n;
}

/**
 * A streaming RDB parser: `push` chunks as they arrive (split anywhere), get events back.
 * It holds only the bytes of the item being parsed (one small key, or one element of a
 * big key), never the whole file.
 */
export class RdbParser implements RdbReads {
  /** RDB format version from the header (0 before the header was read). */
  version = 0;
  /** Bytes after the end of the snapshot, when `allowTrailingData` is set. */
  trailing: Buffer = EMPTY;
  /**
   * Keys left out because they hold no element: a list, set, zset or hash whose count is 0 or
   * whose ziplist, listpack or quicklist nodes are all empty. Redis cannot hold such a key and
   * skips it when it loads one ("empty keys skipped", rdbLoadRioWithLoadingCtx in rdb.c, from
   * the emptykey exits of rdbLoadObject); older versions could write them (redis#8453).
   */
  emptyKeysSkipped = 0;

  private readonly bigKeyBytes: number;
  private readonly maxStringBytes: number;
  private readonly allowTrailingData: boolean;
  private readonly decodeValues: boolean;

  private buf: Buffer = EMPTY;
  /** buf's memory, for making views of it cheaply (see view). */
  private ab: ArrayBufferLike = EMPTY.buffer;
  private abOff = EMPTY.byteOffset;
  /** Whether `buf` is our own allocation (so its spare tail may be written). */
  private ownBuf = false;
  private pos = 0;
  private end = 0;
  /** Absolute stream offset of buf[0]. */
  private base = 0;
  private resumeAt = 0;
  /**
   * Where parsing resumes when the buffered bytes run out (NEED_MORE): the start of the
   * current step, or past the last element a step committed.
   */
  private mark = 0;
  private state = State.Header;
  private readonly crc = new Crc64();
  private crcDone = 0;

  private db = 0;
  private expireMs: number | null = null;
  private idleSeconds: number | null = null;
  private lfuFreq: number | null = null;
  /** The key being parsed: null between keys, else kc. */
  private k: KeyCtx | null = null;
  private readonly kc: KeyCtx = {
    db: 0,
    key: EMPTY,
    rdbType: 0,
    expireMs: null,
    idleSeconds: null,
    lfuFreq: null,
    offset: 0,
    valueStart: 0,
    phase: Phase.Start,
    remaining: 0,
    total: 0,
    minExpire: 0,
    decode: true,
    holds: false,
    chunked: false,
    chunkIndex: 0,
    chunkStart: 0,
    items: NONE,
    filled: 0,
    scores: NO_SCORES,
    fieldExpires: NO_EXPIRES,
    entries: NO_ENTRIES,
  };
  private stringLeft = 0;
  /** A DUMP payload body holds one value and nothing else. */
  private valueOnly = false;
  private derivedAt = -1;
  private events: RdbEvent[] = list(0);
  /** The string blobStr() read last: blob[blobStart, blobEnd). */
  private blob: Uint8Array = EMPTY;
  private blobStart = 0;
  private blobEnd = 0;

  constructor(opts: RdbParserOptions = {}) {
    this.bigKeyBytes = opts.bigKeyBytes ?? 1024 * 1024;
    this.maxStringBytes = opts.maxStringBytes ?? 512 * 1024 * 1024;
    this.allowTrailingData = opts.allowTrailingData ?? false;
    this.decodeValues = opts.decodeValues ?? true;
  }

  /** Parses the DUMP-payload form of a value: type byte, value, 2-byte version, CRC64. */
  static forDumpValue(rdbVersion: number): RdbParser {
    const p = new RdbParser({ bigKeyBytes: Infinity });
    p.version = rdbVersion;
    p.state = State.Opcode;
    p.valueOnly = true;
    return p;
  }

  /** Absolute number of bytes consumed so far. */
  get offset(): number {
    return this.base + this.pos;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  push(chunk: Buffer): RdbEvent[] {
    if (this.state === State.Done) {
      this.takeTrailing(chunk, this.base + this.end + this.trailing.length);
      return [];
    }
    this.append(chunk);
    if (this.base + this.end >= this.resumeAt) this.run();
    const out = this.events;
    this.events = list(0);
    return out;
  }

  /** Call at the end of the input: anything short of a complete snapshot is an error. */
  finish(): RdbEvent[] {
    if (this.state !== State.Done) {
      this.run();
      if (!this.done) {
        throw new RdbError('TRUNCATED', this.base + this.end, `the input ended ${this.where()}`);
      }
    }
    const out = this.events;
    this.events = list(0);
    return out;
  }

  /** Parses one value given as its type byte and serialized bytes (a DUMP payload's body). */
  parseValue(rdbType: number, raw: Buffer): RdbKey {
    this.append(raw);
    checkType(rdbType, 0);
    this.beginValue(rdbType, 0, EMPTY);
    this.run();
    const ev = this.events;
    this.events = list(0);
    if (!this.done) throw new RdbError('TRUNCATED', this.base + this.end, `the value ended ${this.where()}`);
    if (this.pos !== this.end) throw new RdbError('TRAILING_DATA', this.base + this.pos, `${this.end - this.pos} bytes follow the value`);
    // RESTORE refuses it too: rdbLoadObject returns no object for an empty key
    if (this.emptyKeysSkipped > 0) throw new RdbError('BAD_ENCODING', 0, `the value (type ${rdbType}) holds no element`);
    return ev[0] as RdbKey;
  }

  private where(): string {
    const k = this.k;
    switch (this.state) {
      case State.Header:
        return 'inside the RDB header';
      case State.Opcode:
        return this.pos < this.end
          ? `inside the item (opcode or type byte ${this.buf[this.pos]}) that starts at byte ${this.base + this.pos}`
          : `before the EOF opcode, at byte ${this.base + this.pos}`;
      case State.Value:
      case State.StringStream:
        return k === null
          ? 'inside a value'
          : `inside the value of key "${printable(k.key)}" (type ${k.rdbType}, starting at byte ${k.offset})`;
      case State.Checksum:
        return 'inside the 8-byte checksum after the EOF opcode';
      default:
        return '';
    }
  }

  private takeTrailing(chunk: Buffer, at: number): void {
    if (!this.allowTrailingData) {
      throw new RdbError('TRAILING_DATA', at, 'bytes follow the end of the RDB snapshot');
    }
    this.trailing = this.trailing.length === 0 ? chunk : Buffer.concat([this.trailing, chunk]);
  }

  /**
   * Appends a chunk, dropping the bytes no item needs any more (after folding them into the
   * checksum). Buffers already handed out are never written to: spare capacity is only ever
   * past `end`, and compaction copies into a new allocation.
   */
  private append(chunk: Buffer): void {
    let keep = this.pos;
    const k = this.k;
    if (k !== null && !k.chunked) keep = Math.min(keep, k.valueStart - this.base);
    if (keep > 0) this.checksumUpTo(keep);
    const live = this.end - keep;
    if (live === 0) {
      this.base += this.end;
      this.setBuf(chunk);
      this.ownBuf = false;
      this.pos = 0;
      this.end = chunk.length;
      return;
    }
    if (this.ownBuf && this.buf.length - this.end >= chunk.length) {
      chunk.copy(this.buf, this.end);
      this.end += chunk.length;
      return;
    }
    const next = Buffer.allocUnsafe(Math.max(2 * (live + chunk.length), 64 * 1024));
    this.buf.copy(next, 0, keep, this.end);
    chunk.copy(next, live);
    this.setBuf(next);
    this.ownBuf = true;
    this.base += keep;
    this.pos -= keep;
    this.end = live + chunk.length;
  }

  private setBuf(b: Buffer): void {
    this.buf = b;
    this.ab = b.buffer;
    this.abOff = b.byteOffset;
  }

  private checksumUpTo(rel: number): void {
    const from = this.crcDone - this.base;
    if (rel > from) {
      this.crc.update(this.buf, from, rel);
      this.crcDone = this.base + rel;
    }
  }

  private run(): void {
    for (;;) {
      this.mark = this.pos;
      try {
        if (!this.step()) return;
      } catch (e) {
        if (e !== NEED_MORE) throw e;
        const mark = this.mark;
        this.pos = mark;
        const pending = this.end - mark;
        this.resumeAt = pending > RETRY_DOUBLING_FROM ? this.base + mark + 2 * pending : 0;
        return;
      }
      this.resumeAt = 0;
    }
  }

  /** Parses one atomic item; false when there is nothing more to do now. */
  private step(): boolean {
    switch (this.state) {
      case State.Header:
        this.readHeader();
        return true;
      case State.Opcode:
        if (this.pos === this.end) return false;
        this.readOpcode();
        return true;
      case State.Value:
        this.valueStep();
        return true;
      case State.StringStream:
        return this.stringStreamStep();
      case State.Checksum:
        this.readChecksum();
        return true;
      default:
        return false;
    }
  }

  // ---- primitive reads: each throws NEED_MORE when the bytes are not buffered yet ----

  need(n: number): void {
    if (this.end - this.pos < n) throw NEED_MORE;
  }

  u8(): number {
    if (this.pos >= this.end) throw NEED_MORE;
    return this.buf[this.pos++];
  }

  bytes(n: number): Buffer {
    this.need(n);
    const b = view(this.ab, this.abOff + this.pos, n);
    this.pos += n;
    return b;
  }

  int64le(): number {
    this.need(8);
    const v = this.buf.readBigInt64LE(this.pos);
    this.pos += 8;
    return Number(v);
  }

  /** A length as a number; lengths past 2^53 cannot be real and are rejected. */
  len(): number {
    const at = this.base + this.pos;
    const b = this.u8();
    const t = b >> 6;
    if (t === 0) return b & 0x3f;
    if (t === 1) return ((b & 0x3f) << 8) | this.u8();
    if (b === 0x80) {
      this.need(4);
      const v = this.buf.readUInt32BE(this.pos);
      this.pos += 4;
      return v;
    }
    if (b === 0x81) {
      this.need(8);
      const hi = this.buf.readUInt32BE(this.pos);
      const lo = this.buf.readUInt32BE(this.pos + 4);
      this.pos += 8;
      if (hi >= 0x200000) throw new RdbError('BAD_LENGTH', at, `64-bit length ${BigInt(hi) * 2n ** 32n + BigInt(lo)} is not plausible`);
      return hi * 0x100000000 + lo;
    }
    throw new RdbError('BAD_LENGTH', at, `byte 0x${b.toString(16)} is not a length encoding`);
  }

  /** A length-encoded unsigned 64-bit value that may exceed 2^53 (stream ids, counters). */
  lenBig(): bigint {
    const b = this.buf[this.pos];
    if (this.pos < this.end && b === 0x81) {
      this.need(9);
      const v = this.buf.readBigUInt64BE(this.pos + 1);
      this.pos += 9;
      return v;
    }
    return BigInt(this.len());
  }

  /** A string in any of its encodings (raw, integer, LZF). */
  str(): Buffer {
    const at = this.base + this.pos;
    const b = this.u8();
    const t = b >> 6;
    if (t === 3) return this.encodedStr(b & 0x3f, at);
    let n: number;
    if (t === 0) n = b; // 6-bit length, the common case
    else {
      this.pos--;
      n = this.len();
    }
    if (n > this.maxStringBytes) throw new RdbError('BAD_LENGTH', at, `string of ${n} bytes exceeds the ${this.maxStringBytes}-byte limit`);
    return this.bytes(n);
  }

  /**
   * Steps over a string without making a Buffer of it (or decompressing it); returns its
   * length as str() would read it (for an integer-encoded one, the longest decimal text of
   * its width: callers only compare lengths with a bound).
   */
  private skipStr(): number {
    const at = this.base + this.pos;
    const b = this.u8();
    if (b >> 6 === 3) {
      const enc = b & 0x3f;
      if (enc === 3) {
        const clen = this.len();
        const ulen = this.len();
        this.need(clen);
        this.pos += clen;
        return ulen;
      }
      if (enc <= 2) {
        const n = 1 << enc;
        this.need(n);
        this.pos += n;
        return INT_TEXT_MAX[enc];
      }
      throw new RdbError('BAD_ENCODING', at, `unknown string encoding ${enc}`);
    }
    this.pos--;
    const n = this.len();
    if (n > this.maxStringBytes) throw new RdbError('BAD_LENGTH', at, `string of ${n} bytes exceeds the ${this.maxStringBytes}-byte limit`);
    this.need(n);
    this.pos += n;
    return n;
  }

  private encodedStr(enc: number, at: number): Buffer {
    switch (enc) {
      case 0: {
        this.need(1);
        const v = this.buf.readInt8(this.pos);
        this.pos += 1;
        return Buffer.from(String(v), 'latin1');
      }
      case 1: {
        this.need(2);
        const v = this.buf.readInt16LE(this.pos);
        this.pos += 2;
        return Buffer.from(String(v), 'latin1');
      }
      case 2: {
        this.need(4);
        const v = this.buf.readInt32LE(this.pos);
        this.pos += 4;
        return Buffer.from(String(v), 'latin1');
      }
      case 3: {
        const clen = this.len();
        const ulen = this.len();
        if (ulen > this.maxStringBytes || ulen > clen * LZF_MAX_RATIO + 64) {
          throw new RdbError('BAD_LZF', at, `LZF string claims ${ulen} bytes from ${clen} compressed bytes`);
        }
        const dataAt = this.base + this.pos;
        this.need(clen);
        const start = this.pos;
        this.pos += clen;
        return lzfDecompressRange(this.buf, start, start + clen, ulen, dataAt);
      }
      default:
        throw new RdbError('BAD_ENCODING', at, `unknown string encoding ${enc}`);
    }
  }

  double8(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  /** The text score of RDB_TYPE_ZSET (Redis 2.x/3.x): length byte with special values. */
  private doubleText(): number {
    const at = this.base + this.pos;
    const n = this.u8();
    if (n === 253) throw new RdbError('BAD_ENCODING', at, 'zset score is NaN');
    if (n === 254) return Infinity;
    if (n === 255) return -Infinity;
    return parseScore(this.bytes(n), at);
  }

  // ---- top level ----

  private readHeader(): void {
    const magic = this.bytes(9);
    if (magic.toString('latin1', 0, 5) !== 'REDIS') {
      throw new RdbError('BAD_MAGIC', this.base, `expected "REDIS" but found ${JSON.stringify(magic.toString('latin1', 0, 5))}`);
    }
    const digits = magic.toString('latin1', 5, 9);
    const version = /^\d{4}$/.test(digits) ? Number(digits) : NaN;
    if (!(version >= 1 && version <= MAX_RDB_VERSION)) {
      throw new RdbError('BAD_VERSION', this.base + 5, `RDB version "${digits}" is not one of 1 to ${MAX_RDB_VERSION}`);
    }
    this.version = version;
    this.state = State.Opcode;
    this.events.push({ kind: 'header', version });
  }

  private readOpcode(): void {
    const at = this.base + this.pos;
    const op = this.u8();
    if (op < OP_SLOT_INFO) {
      this.startKey(op, at);
      return;
    }
    switch (op) {
      case OP_EXPIRETIME_MS:
        this.expireMs = this.int64le();
        return;
      case OP_EXPIRETIME: {
        this.need(4);
        this.expireMs = this.buf.readInt32LE(this.pos) * 1000;
        this.pos += 4;
        return;
      }
      case OP_IDLE:
        this.idleSeconds = this.len();
        return;
      case OP_FREQ:
        this.lfuFreq = this.u8();
        return;
      case OP_SELECTDB:
        this.db = this.len();
        return;
      case OP_RESIZEDB: {
        const size = this.len();
        const expiresSize = this.len();
        this.events.push({ kind: 'resizedb', db: this.db, size, expiresSize });
        return;
      }
      case OP_SLOT_INFO: {
        const slot = this.len();
        const size = this.len();
        const expiresSize = this.len();
        this.events.push({ kind: 'slot-info', slot, size, expiresSize });
        return;
      }
      case OP_AUX: {
        const name = this.str();
        const value = this.str();
        this.events.push({ kind: 'aux', name, value });
        return;
      }
      case OP_MODULE_AUX: {
        const moduleId = this.lenBig();
        const whenOp = this.len();
        if (whenOp !== 2) throw new RdbError('BAD_ENCODING', at, `module aux "when" opcode is ${whenOp}, expected 2 (uint)`);
        const when = this.len();
        const rawStart = this.pos;
        decodeModuleValue(this, at);
        const raw = this.buf.subarray(rawStart, this.pos);
        this.events.push({ kind: 'module-aux', moduleId, moduleName: moduleNameFromId(moduleId), when, raw });
        return;
      }
      case OP_FUNCTION2:
        this.events.push({ kind: 'function', code: this.str() });
        return;
      case OP_FUNCTION_PRE_GA: {
        const name = this.str();
        const engine = this.str();
        if (this.len() !== 0) this.str(); // the description, which the GA format dropped
        const body = this.str();
        const head = Buffer.from(`#!${engine.toString('latin1')} name=${name.toString('latin1')}\n`, 'latin1');
        this.events.push({ kind: 'function', code: Buffer.concat([head, body]) });
        return;
      }
      case OP_EOF:
        this.checksumUpTo(this.pos);
        this.state = this.version >= 5 ? State.Checksum : State.Done;
        if (this.state === State.Done) this.finishSnapshot(null);
        return;
      default:
        this.startKey(op, at);
    }
  }

  private readChecksum(): void {
    const at = this.base + this.pos;
    const stored = this.bytes(8);
    const zero = stored.every((b) => b === 0);
    if (!zero && !this.crc.digest().equals(stored)) {
      throw new RdbError(
        'BAD_CHECKSUM',
        at,
        `stored CRC64 ${stored.toString('hex')} does not match computed ${this.crc.digest().toString('hex')}`,
      );
    }
    this.finishSnapshot(zero ? null : Buffer.from(stored));
  }

  private finishSnapshot(checksum: Buffer | null): void {
    this.state = State.Done;
    this.events.push({ kind: 'end', checksum, size: this.base + this.pos, emptyKeysSkipped: this.emptyKeysSkipped });
    if (this.pos < this.end) this.takeTrailing(this.buf.subarray(this.pos, this.end), this.base + this.pos);
  }

  // ---- keys ----

  private startKey(type: number, at: number): void {
    checkType(type, at);
    this.beginValue(type, at, this.str());
    // The key is read: commit it (see mark) and go on with the value in this same step.
    this.mark = this.pos;
    this.valueStep();
  }

  /** Starts the value of a key whose name was read; the context object is reused. */
  private beginValue(type: number, at: number, key: Buffer): void {
    const k = this.kc;
    const valueStart = this.base + this.pos;
    k.db = this.db;
    k.key = key;
    k.rdbType = type;
    k.expireMs = this.expireMs;
    k.idleSeconds = this.idleSeconds;
    k.lfuFreq = this.lfuFreq;
    k.offset = at;
    k.valueStart = valueStart;
    k.phase = Phase.Start;
    k.remaining = 0;
    k.total = 0;
    k.minExpire = 0;
    k.decode = this.decodeValues;
    k.holds = false;
    k.chunked = false;
    k.chunkIndex = 0;
    k.chunkStart = valueStart;
    k.items = NONE;
    k.scores = NO_SCORES;
    k.fieldExpires = NO_EXPIRES;
    k.entries = NO_ENTRIES;
    this.k = k;
    this.expireMs = this.idleSeconds = this.lfuFreq = null;
    this.state = State.Value;
  }

  private valueStep(): void {
    const k = this.k as KeyCtx;
    const at = this.base + this.pos;
    const type = k.rdbType;
    switch (type) {
      case RdbType.STRING:
        this.stringValue(k, at);
        return;
      case RdbType.STREAM_LISTPACKS:
      case RdbType.STREAM_LISTPACKS_2:
      case RdbType.STREAM_LISTPACKS_3:
        this.streamStep(k);
        return;
      case RdbType.MODULE_2:
        this.moduleValue(k, at);
        return;
      case RdbType.LIST:
      case RdbType.SET:
      case RdbType.ZSET:
      case RdbType.ZSET_2:
      case RdbType.HASH:
      case RdbType.HASH_METADATA:
      case RdbType.HASH_METADATA_PRE_GA:
      case RdbType.LIST_QUICKLIST:
      case RdbType.LIST_QUICKLIST_2:
        break;
      default:
        this.blobValue(k);
        return;
    }
    if (k.phase === Phase.Start) {
      if (type === RdbType.HASH_METADATA) k.minExpire = this.int64le();
      k.total = k.remaining = this.len();
      k.phase = Phase.Elements;
      if (k.decode) this.freshArrays(k);
    } else {
      // As many elements as are buffered, each committed once read whole (see mark), up to
      // the end of the key or of a chunk.
      const decode = k.decode;
      for (;;) {
        if (decode) this.element(k, type);
        else this.skipElement(k, type);
        this.mark = this.pos;
        if (--k.remaining === 0 || this.base + this.pos - k.chunkStart >= this.bigKeyBytes || (decode && heldItems(k) >= CHUNK_MAX_ITEMS)) break;
      }
    }
    if (k.remaining > 0) this.maybeChunk(k);
    else if (!this.holdsElements(k)) this.skipEmptyKey(); // Redis skips an empty collection on load (see emptyKeysSkipped)
    else if (!k.decode) this.emitRaw(k);
    else this.emitKey(k, true);
  }

  /**
   * Whether a counted collection read to its end holds an element. A quicklist's nodes may
   * all be empty ziplists or listpacks, which Redis skips one by one and then the key (the
   * quicklist branch of rdbLoadObject); a chunk is only ever cut with elements in it.
   */
  private holdsElements(k: KeyCtx): boolean {
    if (k.total === 0) return false;
    if (k.rdbType !== RdbType.LIST_QUICKLIST && k.rdbType !== RdbType.LIST_QUICKLIST_2) return true;
    return k.decode ? k.chunked || k.items.length > 0 : k.holds;
  }

  private freshArrays(k: KeyCtx): void {
    // LIST and SET elements are stored by index (see element), into an array sized ahead.
    const byIndex = k.rdbType === RdbType.LIST || k.rdbType === RdbType.SET;
    k.items = list(byIndex ? Math.min(k.total, PREALLOC_ITEMS) : 0);
    k.filled = 0;
    if (k.rdbType === RdbType.ZSET || k.rdbType === RdbType.ZSET_2) k.scores = list(0);
    if (k.rdbType === RdbType.HASH_METADATA || k.rdbType === RdbType.HASH_METADATA_PRE_GA) k.fieldExpires = list(0);
  }

  private skipElement(k: KeyCtx, type: number): void {
    switch (type) {
      case RdbType.ZSET: {
        this.skipStr();
        const n = this.u8(); // 253-255: NaN, +inf, -inf, with no text
        if (n < 253) {
          this.need(n);
          this.pos += n;
        }
        return;
      }
      case RdbType.ZSET_2:
        this.skipStr();
        this.need(8);
        this.pos += 8;
        return;
      case RdbType.HASH:
        this.skipStr();
        this.skipStr();
        return;
      case RdbType.HASH_METADATA:
      case RdbType.HASH_METADATA_PRE_GA:
        this.len();
        this.skipStr();
        this.skipStr();
        return;
      case RdbType.LIST_QUICKLIST:
      case RdbType.LIST_QUICKLIST_2: {
        const packed = type === RdbType.LIST_QUICKLIST || this.len() === 2;
        const from = this.pos;
        const n = this.skipStr();
        if (!k.holds) k.holds = !packed || n > EMPTY_BLOB_MAX || this.nodeHolds(type, from);
        return;
      }
      default:
        this.skipStr();
    }
  }

  /** Whether the short packed quicklist node at `from` holds an element (see EMPTY_BLOB_MAX). */
  private nodeHolds(type: number, from: number): boolean {
    const end = this.pos;
    this.pos = from;
    const blobAt = this.blobOffset();
    const node = this.str();
    const items = this.decoded(type === RdbType.LIST_QUICKLIST ? decodeZiplist : decodeListpack, node, blobAt);
    this.pos = end;
    return items.length > 0;
  }

  /**
   * Reads one element of a counted collection. Nothing in `k` changes before every read
   * of the element succeeded, so a retry after NEED_MORE starts clean.
   */
  private element(k: KeyCtx, type: number): void {
    switch (type) {
      case RdbType.LIST:
      case RdbType.SET: {
        const item = this.str();
        k.items[k.filled++] = item;
        return;
      }
      case RdbType.ZSET:
      case RdbType.ZSET_2: {
        const member = this.str();
        const score = type === RdbType.ZSET ? this.doubleText() : this.double8();
        k.items.push(member);
        k.scores.push(score);
        return;
      }
      case RdbType.HASH: {
        const field = this.str();
        k.items.push(field, this.str());
        return;
      }
      case RdbType.HASH_METADATA:
      case RdbType.HASH_METADATA_PRE_GA: {
        const ttl = this.len();
        const field = this.str();
        k.items.push(field, this.str());
        if (ttl !== 0) {
          k.fieldExpires.push({ field, expireMs: type === RdbType.HASH_METADATA ? ttl + k.minExpire - 1 : ttl });
        }
        return;
      }
      case RdbType.LIST_QUICKLIST: {
        const blobAt = this.blobOffset();
        for (const item of this.decoded(decodeZiplist, this.str(), blobAt)) k.items.push(item);
        return;
      }
      default: {
        const containerAt = this.base + this.pos;
        const container = this.len();
        const blobAt = this.blobOffset();
        if (container === 2) {
          this.blobStr();
          this.listpack(Shape.Items, blobAt, k.items);
          return;
        }
        const blob = this.str(); // read (and waited for) before a bad container fails
        if (container === 1) k.items.push(blob);
        else throw new RdbError('BAD_ENCODING', containerAt, `quicklist node container ${container} is neither 1 (plain) nor 2 (packed)`);
      }
    }
  }

  /**
   * Offset of the payload bytes of the string that comes next, for errors inside an encoded
   * blob. A blob that is LZF-compressed (or integer-encoded) has no byte-for-byte place in
   * the stream, so `derivedAt` remembers where its string starts instead.
   */
  private blobOffset(): number {
    const b = this.buf[this.pos];
    this.derivedAt = b >> 6 === 3 ? this.base + this.pos : -1;
    const head = b >> 6 === 0 ? 1 : b >> 6 === 1 ? 2 : b === 0x80 ? 5 : b === 0x81 ? 9 : 1;
    return this.base + this.pos + head;
  }

  /**
   * Reads a string that is only decoded further (a listpack): its bytes are left in
   * blob[blobStart, blobEnd), with no Buffer made of them when it can be helped. Checks and
   * errors are those of str().
   */
  private blobStr(): void {
    const at = this.base + this.pos;
    const b = this.u8();
    if (b >> 6 === 3) {
      const enc = b & 0x3f;
      let out: Buffer;
      if (enc === 3) {
        const clen = this.len();
        const ulen = this.len();
        if (ulen > this.maxStringBytes || ulen > clen * LZF_MAX_RATIO + 64) {
          throw new RdbError('BAD_LZF', at, `LZF string claims ${ulen} bytes from ${clen} compressed bytes`);
        }
        const dataAt = this.base + this.pos;
        this.need(clen);
        const start = this.pos;
        this.pos += clen;
        if (ulen <= SLAB_MAX) {
          const dst = slabRoom(ulen);
          const off = slabStart();
          lzfDecompressInto(this.buf, start, start + clen, dst, slabData(), off, ulen, dataAt);
          slabTake(ulen);
          this.setBlob(dst, off, off + ulen);
          return;
        }
        out = lzfDecompressRange(this.buf, start, start + clen, ulen, dataAt);
      } else {
        out = this.encodedStr(enc, at);
      }
      this.setBlob(out, 0, out.length);
      return;
    }
    this.pos--;
    const n = this.len();
    if (n > this.maxStringBytes) throw new RdbError('BAD_LENGTH', at, `string of ${n} bytes exceeds the ${this.maxStringBytes}-byte limit`);
    this.need(n);
    this.setBlob(this.buf, this.pos, this.pos + n);
    this.pos += n;
  }

  private setBlob(bytes: Uint8Array, start: number, end: number): void {
    this.blob = bytes;
    this.blobStart = start;
    this.blobEnd = end;
  }

  /** Decodes the listpack that blobStr() left, as `shape`; error offsets as in decoded(). */
  private listpack(shape: Shape, blobAt: number, into: Buffer[] | null): Elements {
    const at = this.derivedAt < 0 ? blobAt : 0;
    try {
      switch (shape) {
        case Shape.Items:
          return listpackItems(this.blob, this.blobStart, this.blobEnd, at, into);
        case Shape.Pairs:
          return listpackPairs(this.blob, this.blobStart, this.blobEnd, at);
        default:
          return listpackScores(this.blob, this.blobStart, this.blobEnd, at);
      }
    } catch (e) {
      throw this.derivedAt < 0 ? e : this.derivedError(e);
    }
  }

  /** Runs a blob decoder, mapping its error offsets onto the stream (see blobOffset). */
  private decoded<I, T>(decode: (input: I, at: number) => T, input: I, at: number): T {
    if (this.derivedAt < 0) return decode(input, at);
    try {
      return decode(input, 0);
    } catch (e) {
      throw this.derivedError(e);
    }
  }

  private derivedError(e: unknown): unknown {
    if (!(e instanceof RdbError)) return e;
    return new RdbError(e.code, this.derivedAt, `${e.detail} (at byte ${e.offset} of the blob decompressed from the string at byte ${this.derivedAt})`);
  }

  private stringValue(k: KeyCtx, at: number): void {
    const b = this.u8();
    if (b >> 6 !== 3) {
      this.pos--;
      const n = this.len();
      if (n > this.maxStringBytes) throw new RdbError('BAD_LENGTH', at, `string of ${n} bytes exceeds the ${this.maxStringBytes}-byte limit`);
      if (n > this.bigKeyBytes) {
        k.chunked = true;
        this.stringLeft = n;
        this.state = State.StringStream;
        return;
      }
      if (k.decode) this.emitValue(k, 'string', this.bytes(n), null);
      else {
        this.need(n);
        this.pos += n;
        this.emitRaw(k);
      }
      return;
    }
    if (!k.decode) {
      this.pos--;
      this.skipStr();
      this.emitRaw(k);
      return;
    }
    this.emitValue(k, 'string', this.encodedStr(b & 0x3f, at), null);
  }

  /** Forwards a big raw string in pieces, as it arrives. */
  private stringStreamStep(): boolean {
    const k = this.k as KeyCtx;
    const avail = this.end - this.pos;
    const n = Math.min(avail, this.stringLeft);
    if (n < Math.min(this.stringLeft, STRING_PIECE_BYTES)) throw NEED_MORE;
    const piece = this.bytes(n);
    this.stringLeft -= n;
    const last = this.stringLeft === 0;
    this.pushKey(k, { type: 'string', value: piece }, null, { index: k.chunkIndex++, last });
    if (last) this.endKey();
    return !last || this.pos < this.end;
  }

  private blobValue(k: KeyCtx): void {
    const type = k.rdbType;
    if (type === RdbType.HASH_LISTPACK_EX) this.int64le(); // min field expire: derivable, not needed
    if (!k.decode) {
      const from = this.pos;
      if (this.skipStr() > EMPTY_BLOB_MAX) {
        this.emitRaw(k);
        return;
      }
      // short enough to hold no element (see EMPTY_BLOB_MAX): decoded to tell, emitted raw
      this.pos = from;
    }
    const blobAt = this.blobOffset();
    switch (type) {
      case RdbType.SET_LISTPACK:
        this.blobStr();
        this.emitBlob(k, 'set', this.listpack(Shape.Items, blobAt, null), null);
        return;
      case RdbType.ZSET_LISTPACK:
        this.blobStr();
        this.emitBlob(k, 'zset', this.listpack(Shape.Scores, blobAt, null), null);
        return;
      case RdbType.HASH_LISTPACK:
        this.blobStr();
        this.emitBlob(k, 'hash', this.listpack(Shape.Pairs, blobAt, null), list(0));
        return;
      default:
    }
    const blob = this.str();
    switch (type) {
      case RdbType.LIST_ZIPLIST:
        this.emitBlob(k, 'list', this.decoded(decodeZiplist, blob, blobAt), null);
        return;
      case RdbType.SET_INTSET: {
        const members = this.decoded(decodeIntset, blob, blobAt);
        if (members.length === 0) {
          // not an empty key to Redis but a corrupt intset (intsetValidateIntegrity in intset.c)
          throw new RdbError('BAD_ENCODING', this.derivedAt < 0 ? blobAt : this.derivedAt, 'intset holds no member');
        }
        this.emitBlob(k, 'set', members, null);
        return;
      }
      case RdbType.ZSET_ZIPLIST: {
        const flat = this.decoded(decodeZiplist, blob, blobAt);
        this.emitBlob(k, 'zset', this.decoded(pairsWithScores, flat, blobAt), null);
        return;
      }
      case RdbType.HASH_ZIPMAP:
      case RdbType.HASH_ZIPLIST: {
        const decode = type === RdbType.HASH_ZIPMAP ? decodeZipmap : decodeZiplist;
        const flat = this.decoded(decode, blob, blobAt);
        this.emitBlob(k, 'hash', this.decoded(pairs, flat, blobAt), list(0));
        return;
      }
      default: {
        // HASH_LISTPACK_EX(_PRE_GA): field, value, absolute TTL (0 = none) triplets
        const v = this.decoded(hashWithTtls, this.decoded(decodeListpack, blob, blobAt), blobAt);
        this.emitBlob(k, 'hash', v.value, v.fieldExpires);
      }
    }
  }

  /**
   * Emits a key whose value is one blob (decoded, or raw when values are not decoded), unless
   * the blob holds no element: Redis skips such a key (rdbLoadObject's emptykey exits). An
   * empty zipmap is the one it keeps, as an empty hash, and so is it kept here.
   */
  private emitBlob(k: KeyCtx, type: ValueKind, value: Elements, fieldExpires: HashFieldExpire[] | null): void {
    if (value.length === 0 && k.rdbType !== RdbType.HASH_ZIPMAP) this.skipEmptyKey();
    else if (k.decode) this.emitValue(k, type, value, fieldExpires);
    else this.emitRaw(k);
  }

  private skipEmptyKey(): void {
    this.emptyKeysSkipped++;
    this.endKey();
  }

  private moduleValue(k: KeyCtx, at: number): void {
    const moduleId = this.lenBig();
    const rawStart = this.pos;
    decodeModuleValue(this, at);
    this.emitWhole(k, {
      type: 'module',
      value: { moduleId, moduleName: moduleNameFromId(moduleId), encodingVersion: Number(moduleId & 1023n), raw: this.buf.subarray(rawStart, this.pos) },
    });
  }

  private streamStep(k: KeyCtx): void {
    if (k.phase === Phase.Start) {
      k.total = k.remaining = this.len();
      k.phase = k.remaining === 0 ? Phase.StreamTail : Phase.Elements;
      k.entries = [];
      return;
    }
    if (k.phase === Phase.Elements) {
      const nodeKeyAt = this.base + this.pos;
      const nodeKey = this.str();
      const blobAt = this.blobOffset();
      const lp = this.str();
      for (const e of this.decoded((b, at) => decodeStreamNode(nodeKey, nodeKeyAt, b, at), lp, blobAt)) k.entries.push(e);
      // the last part keeps the last node with the groups: a writer can still add, in order,
      // the entries its pending ids name (see deletedPending in lib/sink/typed.ts)
      if (--k.remaining === 0) k.phase = Phase.StreamTail;
      else this.maybeChunk(k);
      return;
    }
    const tail: StreamTail = readStreamTail(this, k.rdbType);
    const value = { entries: k.entries, ...tail };
    if (k.chunked) this.pushKey(k, { type: 'stream', value }, null, { index: k.chunkIndex++, last: true });
    else this.pushKey(k, { type: 'stream', value }, this.rawOf(k), null);
    this.endKey();
  }

  /** Switches a growing key to chunks, and cuts a chunk each time one is big enough. */
  private maybeChunk(k: KeyCtx): void {
    const now = this.base + this.pos;
    if (now - k.chunkStart < this.bigKeyBytes && !(k.decode && heldItems(k) >= CHUNK_MAX_ITEMS)) return;
    // a run of empty quicklist nodes: the chunk goes on until it holds an element (see holdsElements)
    if (k.decode && heldItems(k) === 0) return;
    if (!k.decode) {
      // Too big for one RESTORE after all: walk it again from its start, decoding, to
      // chunk it. Its bytes are still buffered, as an unchunked key pins them.
      k.decode = true;
      k.phase = Phase.Start;
      this.pos = k.valueStart - this.base;
      return;
    }
    k.chunked = true;
    this.emitKey(k, false);
    k.chunkStart = now;
  }

  /** A whole key, not decoded: its raw bytes only. */
  private emitRaw(k: KeyCtx): void {
    this.events.push(keyEvent(k, KIND_BY_TYPE[k.rdbType], null, null, this.rawOf(k), null));
    this.endKey();
  }

  private emitWhole(k: KeyCtx, v: KeyValue): void {
    this.pushKey(k, v, this.rawOf(k), null);
    this.endKey();
  }

  /** emitWhole without the intermediate KeyValue. */
  private emitValue(k: KeyCtx, type: ValueKind, value: KeyValue['value'], fieldExpires: HashFieldExpire[] | null): void {
    this.events.push(keyEvent(k, type, value, fieldExpires, this.rawOf(k), null));
    this.endKey();
  }

  /** Emits the collected elements: the whole key, or the next chunk of it. */
  private emitKey(k: KeyCtx, last: boolean): void {
    const items = k.items;
    const type = KIND_BY_TYPE[k.rdbType];
    let value: KeyValue['value'];
    let fieldExpires: HashFieldExpire[] | null = null;
    switch (type) {
      case 'list':
      case 'set':
        if ((k.rdbType === RdbType.LIST || k.rdbType === RdbType.SET) && items.length > k.filled) items.length = k.filled;
        value = items;
        break;
      case 'zset':
        value = withScores(items, k.scores);
        break;
      case 'hash':
        value = pairs(items, k.offset);
        fieldExpires = k.fieldExpires;
        break;
      default:
        value = { entries: k.entries, length: 0, lastId: '', firstId: null, maxDeletedId: null, entriesAdded: null, groups: [] };
    }
    if (!k.chunked) {
      this.events.push(keyEvent(k, type, value, fieldExpires, this.rawOf(k), null));
    } else {
      this.events.push(keyEvent(k, type, value, fieldExpires, null, { index: k.chunkIndex++, last }));
      k.items = list(0);
      k.filled = 0;
      k.scores = list(0);
      k.fieldExpires = list(0);
      k.entries = list(0);
    }
    if (last) this.endKey();
  }

  private rawOf(k: KeyCtx): Buffer {
    const start = k.valueStart - this.base;
    return view(this.ab, this.abOff + start, this.pos - start);
  }

  private pushKey(k: KeyCtx, v: KeyValue, raw: Buffer | null, chunk: RdbKey['chunk']): void {
    this.events.push(keyEvent(k, v.type, v.value, v.type === 'hash' ? v.fieldExpires : null, raw, chunk));
  }

  private endKey(): void {
    this.k = null;
    this.state = this.valueOnly ? State.Done : State.Opcode;
  }
}

function withScores(members: Buffer[], scores: number[]): Array<[Buffer, number]> {
  const out = list<[Buffer, number]>(members.length);
  for (let i = 0; i < members.length; i++) out[i] = pair(members[i], scores[i]);
  return out;
}

function pairs(flat: Buffer[], at: number): Array<[Buffer, Buffer]> {
  if (flat.length % 2 !== 0) throw new RdbError('BAD_ENCODING', at, `hash holds an odd number (${flat.length}) of fields and values`);
  const out = list<[Buffer, Buffer]>(flat.length / 2);
  for (let i = 0; i < flat.length; i += 2) out[i / 2] = pair(flat[i], flat[i + 1]);
  return out;
}

function pairsWithScores(flat: Buffer[], at: number): Array<[Buffer, number]> {
  if (flat.length % 2 !== 0) throw new RdbError('BAD_ENCODING', at, `zset holds an odd number (${flat.length}) of members and scores`);
  const out = list<[Buffer, number]>(flat.length / 2);
  for (let i = 0; i < flat.length; i += 2) out[i / 2] = pair(flat[i], parseScore(flat[i + 1], at));
  return out;
}

/** Decodes the value of a key that was parsed with decodeValues off. */
export function decodeRawValue(rdbType: number, raw: Buffer, rdbVersion: number): KeyValue {
  return RdbParser.forDumpValue(rdbVersion).parseValue(rdbType, raw) as KeyValue;
}

/** Whether a key event carries its decoded value. */
export function isDecoded(k: RdbKey): k is RdbKey & KeyValue {
  return k.value !== null;
}

type KeyEventCtor = new (
  k: KeyCtx,
  type: ValueKind,
  value: KeyValue['value'] | null,
  fieldExpires: HashFieldExpire[],
  raw: Buffer | null,
  chunk: RdbKey['chunk'],
) => RdbKey;

/**
 * Builds key events: plain objects (prototype Object.prototype, the same properties in the
 * same order as a literal), all of one hidden class, `fieldExpires` included. Made by `new`
 * rather than as a literal so that they carry no allocation site V8 could decide to
 * pretenure (see list() in lib/buffers/decoder-alloc.ts): events live until push() returns.
 */
const KeyEvent = function (this: Record<string, unknown>, k: KeyCtx, type: ValueKind, value: KeyValue['value'] | null, fieldExpires: HashFieldExpire[], raw: Buffer | null, chunk: RdbKey['chunk']) {
  this.kind = 'key';
  this.db = k.db;
  this.key = k.key;
  this.type = type;
  this.value = value;
  this.fieldExpires = fieldExpires;
  this.rdbType = k.rdbType;
  this.expireMs = k.expireMs;
  this.idleSeconds = k.idleSeconds;
  this.lfuFreq = k.lfuFreq;
  this.raw = raw;
  this.chunk = chunk;
  this.offset = k.offset;
} as unknown as KeyEventCtor;
KeyEvent.prototype = Object.prototype;

function keyEvent(k: KeyCtx, type: ValueKind, value: KeyValue['value'] | null, fieldExpires: HashFieldExpire[] | null, raw: Buffer | null, chunk: RdbKey['chunk']): RdbKey {
  return new KeyEvent(k, type, value, fieldExpires ?? NO_EXPIRES, raw, chunk);
}

/** HASH_LISTPACK_EX(_PRE_GA) holds field, value, absolute TTL (0 = none) triplets. */
function hashWithTtls(flat: Buffer[], at: number): { value: Array<[Buffer, Buffer]>; fieldExpires: HashFieldExpire[] } {
  if (flat.length % 3 !== 0) throw new RdbError('BAD_ENCODING', at, `hash listpack with TTLs holds ${flat.length} entries, not a multiple of 3`);
  const value = list<[Buffer, Buffer]>(0);
  const fieldExpires = list<HashFieldExpire>(0);
  for (let i = 0; i < flat.length; i += 3) {
    value.push(pair(flat[i], flat[i + 1]));
    const ttl = Number(flat[i + 2].toString('latin1'));
    if (!Number.isSafeInteger(ttl) || ttl < 0) throw new RdbError('BAD_ENCODING', at, `hash field TTL "${flat[i + 2].toString('latin1')}" is not a time`);
    if (ttl !== 0) fieldExpires.push({ field: flat[i], expireMs: ttl });
  }
  return { value, fieldExpires };
}

/** A key for an error message: text when it is printable, else hex. */
export function printable(b: Buffer): string {
  const s = b.toString('utf8', 0, Math.min(b.length, 64));
  const clean = /^[\x20-\x7e\u00a0-\uffff]*$/.test(s) && !s.includes('\ufffd');
  const shown = clean ? s : b.subarray(0, 32).toString('hex');
  return b.length > 64 ? `${shown}…` : shown;
}
