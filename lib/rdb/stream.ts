import { RdbError } from './errors';
import { decodeListpack } from './listpack';
import type { RdbReads } from './parser';
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
