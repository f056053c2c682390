import { RdbError } from './errors';
import { decodeListpack } from './listpack';
import type { RdbReads } from './reads';
import { RdbType, type StreamConsumer, type StreamEntry, type StreamGroup, type StreamId, type StreamPendingEntry } from './types';

const FLAG_DELETED = 1;
const FLAG_SAMEFIELDS = 2;
const U64_MAX = (1n << 64n) - 1n;

/** Everything of a stream after its listpack nodes. */
export type StreamTail = {
  length: number;
  lastId: StreamId;
  firstId: StreamId | null;
  maxDeletedId: StreamId | null;
  entriesAdded: number | null;
  groups: StreamGroup[];
};

function listpackInt(b: Buffer, at: number): bigint {
  const s = b.toString('latin1');
  if (!/^-?\d{1,20}$/.test(s)) throw new RdbError('BAD_ENCODING', at, `stream listpack holds "${s}" where an integer belongs`);
  return BigInt(s);
}

function smallInt(b: Buffer, at: number): number {
  const v = listpackInt(b, at);
  if (v < 0n || v > 0xffffffffn) throw new RdbError('BAD_ENCODING', at, `stream listpack count ${v} is out of range`);
  return Number(v);
}

/** A stream id as Redis prints it; the raw form is 16 bytes, big-endian ms then seq. */
function rawId(b: Buffer): StreamId {
  return `${b.readBigUInt64BE(0)}-${b.readBigUInt64BE(8)}`;
}

/**
 * Decodes one stream listpack node. Its entries are stored relative to the node's master
 * entry (ids as deltas of the node key, fields either the master fields or their own).
 */
export function decodeStreamNode(nodeKey: Buffer, nodeKeyAt: number, lp: Buffer, lpAt: number): StreamEntry[] {
  if (nodeKey.length !== 16) throw new RdbError('BAD_ENCODING', nodeKeyAt, `stream node key is ${nodeKey.length} bytes, expected 16`);
  const masterMs = nodeKey.readBigUInt64BE(0);
  const masterSeq = nodeKey.readBigUInt64BE(8);
  const items = decodeListpack(lp, lpAt);
  let i = 0;
  const next = (): Buffer => {
    if (i >= items.length) throw new RdbError('BAD_ENCODING', lpAt, 'stream listpack ends inside an entry');
    return items[i++];
  };
  const count = smallInt(next(), lpAt);
  const deleted = smallInt(next(), lpAt);
  const masterFieldCount = smallInt(next(), lpAt);
  const masterFields: Buffer[] = [];
  for (let f = 0; f < masterFieldCount; f++) masterFields.push(next());
  if (listpackInt(next(), lpAt) !== 0n) throw new RdbError('BAD_ENCODING', lpAt, 'stream master entry is not terminated by 0');

  const out: StreamEntry[] = [];
  for (let e = 0; e < count + deleted; e++) {
    const flags = smallInt(next(), lpAt);
    const ms = masterMs + listpackInt(next(), lpAt);
    const seq = masterSeq + listpackInt(next(), lpAt);
    let fields: Buffer[];
    if (flags & FLAG_SAMEFIELDS) {
      fields = [];
      for (const f of masterFields) fields.push(f, next());
    } else {
      const n = smallInt(next(), lpAt);
      fields = [];
      for (let f = 0; f < 2 * n; f++) fields.push(next());
    }
    next(); // lp-count: lets Redis walk the listpack backwards
    if (!(flags & FLAG_DELETED)) out.push({ id: `${ms}-${seq}`, fields });
  }
  if (i !== items.length) throw new RdbError('BAD_ENCODING', lpAt, `stream listpack has ${items.length - i} elements after its last entry`);
  if (out.length !== count) throw new RdbError('BAD_ENCODING', lpAt, `stream node claims ${count} live entries but holds ${out.length}`);
  return out;
}

function readId(r: RdbReads): StreamId {
  const ms = r.lenBig();
  return `${ms}-${r.lenBig()}`;
}

/** Reads the stream metadata and consumer groups that follow the listpack nodes. */
export function readStreamTail(r: RdbReads, rdbType: number): StreamTail {
  const v2 = rdbType >= RdbType.STREAM_LISTPACKS_2;
  const v3 = rdbType >= RdbType.STREAM_LISTPACKS_3;
  const length = r.len();
  const lastId = readId(r);
  let firstId: StreamId | null = null;
  let maxDeletedId: StreamId | null = null;
  let entriesAdded: number | null = null;
  if (v2) {
    firstId = readId(r);
    maxDeletedId = readId(r);
    entriesAdded = Number(r.lenBig());
  }
  const groups: StreamGroup[] = [];
  for (let g = r.len(); g > 0; g--) {
    const name = r.str();
    const lastDeliveredId = readId(r);
    let entriesRead: number | null = null;
    if (v2) {
      const er = r.lenBig();
      entriesRead = er === U64_MAX ? null : Number(er);
    }
    const pending: StreamPendingEntry[] = [];
    for (let n = r.len(); n > 0; n--) {
      const id = rawId(r.bytes(16));
      const deliveryTimeMs = r.int64le();
      pending.push({ id, deliveryTimeMs, deliveryCount: r.len() });
    }
    const consumers: StreamConsumer[] = [];
    for (let c = r.len(); c > 0; c--) {
      const cname = r.str();
      const seenTimeMs = r.int64le();
      const activeTimeMs = v3 ? r.int64le() : null;
      const ids: StreamId[] = [];
      for (let n = r.len(); n > 0; n--) ids.push(rawId(r.bytes(16)));
      consumers.push({ name: cname, seenTimeMs, activeTimeMs, pending: ids });
    }
    groups.push({ name, lastDeliveredId, entriesRead, pending, consumers });
  }
  return { length, lastId, firstId, maxDeletedId, entriesAdded, groups };
}

const STREAM_TYPES: readonly number[] = [RdbType.STREAM_LISTPACKS, RdbType.STREAM_LISTPACKS_2, RdbType.STREAM_LISTPACKS_3];

export function isStreamType(rdbType: number): boolean {
  return STREAM_TYPES.includes(rdbType);
}

/**
 * The stream type a server of this RDB version writes and the newest it reads
 * (rdbSaveObjectType in rdb.c): 5.0 to 6.2 the first, 7.0 the second (first id, deleted
 * entries, entries added and read), 7.2 on the third (consumers' active time). Null before
 * 5.0, which has no streams.
 */
export function streamTypeOfRdb(rdbVersion: number): number | null {
  if (rdbVersion >= 11) return RdbType.STREAM_LISTPACKS_3;
  if (rdbVersion === 10) return RdbType.STREAM_LISTPACKS_2;
  if (rdbVersion === 9) return RdbType.STREAM_LISTPACKS;
  return null;
}

/**
 * A stream's serialized value re-encoded as an older stream type, for a destination that
 * reads only that one: what the older type has a place for is copied byte for byte (the
 * listpack nodes, the length and last id, every group with its whole PEL: ids, owners,
 * delivery times and counts, and its consumers with their seen time), and what it has not
 * is left out, as that server's rdbLoadObject would never have it: a consumer's active time
 * (type 3 to 2), the first id, the greatest deleted id, the entries added and each group's
 * entries read (to type 1: 5.0 to 6.2 have none of them). Typed commands cannot always do
 * this: XCLAIM makes no pending entry for an entry that was deleted, which a consumer may
 * still hold pending on the source (xclaimCommand in t_stream.c).
 */
export function downgradeStream(raw: Buffer, fromType: number, toType: number): Buffer {
  if (toType >= fromType) return raw;
  const w = new Walk(raw);
  for (let nodes = w.count(); nodes > 0; nodes--) {
    w.str(); // node key: the master id
    w.str(); // the listpack
  }
  w.len(); // length
  w.len(); // last id: ms, seq
  w.len();
  if (fromType >= RdbType.STREAM_LISTPACKS_2) {
    const from = w.pos;
    for (let i = 0; i < 5; i++) w.len(); // first id, greatest deleted id, entries added
    if (toType < RdbType.STREAM_LISTPACKS_2) w.leaveOut(from);
  }
  for (let groups = w.count(); groups > 0; groups--) {
    w.str(); // name
    w.len(); // last delivered id
    w.len();
    if (fromType >= RdbType.STREAM_LISTPACKS_2) {
      const from = w.pos;
      w.len(); // entries read
      if (toType < RdbType.STREAM_LISTPACKS_2) w.leaveOut(from);
    }
    for (let pending = w.count(); pending > 0; pending--) {
      w.skip(16 + 8); // raw id, delivery time
      w.len(); // delivery count
    }
    for (let consumers = w.count(); consumers > 0; consumers--) {
      w.str(); // name
      w.skip(8); // seen time
      if (fromType >= RdbType.STREAM_LISTPACKS_3) {
        const from = w.pos;
        w.skip(8); // active time
        if (toType < RdbType.STREAM_LISTPACKS_3) w.leaveOut(from);
      }
      w.skip(16 * w.count()); // the ids it owns
    }
  }
  return w.rest();
}

/** Walks a serialized value by the RDB's length and string encodings, leaving out spans of it. */
class Walk {
  pos = 0;
  private readonly kept: Buffer[] = [];
  private keptFrom = 0;

  constructor(private readonly b: Buffer) {}

  skip(n: number): void {
    if (this.pos + n > this.b.length) throw new RdbError('TRUNCATED', this.b.length, 'the stream value ends early');
    this.pos += n;
  }

  /** A length, its value. */
  count(): number {
    this.skip(1);
    const first = this.b[this.pos - 1];
    switch (first >> 6) {
      case 0:
        return first & 0x3f;
      case 1:
        this.skip(1);
        return ((first & 0x3f) << 8) | this.b[this.pos - 1];
      default:
        if (first === 0x80) {
          this.skip(4);
          return this.b.readUInt32BE(this.pos - 4);
        }
        if (first === 0x81) {
          this.skip(8);
          const v = this.b.readBigUInt64BE(this.pos - 8);
          if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RdbError('BAD_LENGTH', this.pos - 9, `length ${v} is not plausible`);
          return Number(v);
        }
        throw new RdbError('BAD_LENGTH', this.pos - 1, `byte 0x${first.toString(16)} is not a length encoding`);
    }
  }

  /** A length or a 64-bit number (ids, counters), which may pass 2^53: only stepped over. */
  len(): void {
    if (this.b[this.pos] === 0x81) this.skip(9);
    else this.count();
  }

  /** A string in any of its encodings. */
  str(): void {
    const first = this.b[this.pos];
    if (first >> 6 !== 3) {
      this.skip(this.count());
      return;
    }
    this.skip(1);
    const enc = first & 0x3f;
    if (enc <= 2) this.skip(1 << enc);
    else if (enc === 3) {
      const compressed = this.count();
      this.count();
      this.skip(compressed);
    } else throw new RdbError('BAD_ENCODING', this.pos - 1, `unknown string encoding ${enc}`);
  }

  /** Leaves out what was walked since `from`. */
  leaveOut(from: number): void {
    this.kept.push(this.b.subarray(this.keptFrom, from));
    this.keptFrom = this.pos;
  }

  /** What was kept, once the value is walked to its end. */
  rest(): Buffer {
    if (this.pos !== this.b.length) throw new RdbError('TRAILING_DATA', this.pos, `${this.b.length - this.pos} bytes follow the stream value`);
    this.kept.push(this.b.subarray(this.keptFrom));
    return Buffer.concat(this.kept);
  }
}
