/**
 * Logical comparison of two DUMP payloads of one key, for when their bytes differ: both are
 * decoded with our RDB parser, so a listpack and a hashtable of the same hash, or the same
 * value in the encodings of two RDB versions (a 7.4 source, a 6.2 destination), compare equal.
 */
import { parseDumpPayload } from '../rdb/dump';
import type { KeyValue, StreamGroup, StreamValue } from '../rdb/types';

/** Why a key differs; `missing` and `extra` are about existence, the rest about what both hold. */
export type DifferenceReason = 'missing' | 'extra' | 'type' | 'value' | 'ttl' | 'stream-group' | 'unreadable';

export interface ValueDifference {
  reason: 'type' | 'value' | 'ttl' | 'stream-group';
  /** What each side holds where they part, short, for a person to read. */
  source: string;
  destination: string;
}

/** RDB 12 (Redis 7.4) is the first with hash field TTLs: an older destination drops them, as the README says. */
const FIELD_TTL_RDB = 12;
const PREVIEW = 40;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Bytes as a short JSON string ("…" after PREVIEW characters); bytes that are not UTF-8 as
 * "b64:…", as rdb2json writes them: lossy UTF-8 would show 0xfe and 0xff both as U+FFFD.
 */
export function preview(b: Buffer): string {
  let s: string;
  try {
    s = utf8.decode(b);
  } catch {
    s = `b64:${b.subarray(0, PREVIEW).toString('base64')}${b.length > PREVIEW ? '…' : ''}`;
  }
  return JSON.stringify(s.length > PREVIEW ? `${s.slice(0, PREVIEW)}…` : s);
}

/** Two strings of which `preview` could show the same start: the bytes from the first that differs. */
function stringDifference(a: Buffer, b: Buffer): ValueDifference {
  let at = 0;
  while (at < a.length && at < b.length && a[at] === b[at]) at++;
  const from = at < PREVIEW ? '' : `, from byte ${at}`;
  const start = at < PREVIEW ? 0 : at;
  return differ('value', `${preview(a.subarray(start))} (${a.length} bytes${from})`, `${preview(b.subarray(start))} (${b.length} bytes${from})`);
}

/** The type of a DUMP payload as TYPE names it, from its first byte (rdb.h's RDB_TYPE_*), without decoding the value. */
export function typeOfPayload(payload: Buffer): string {
  const t = payload[0];
  if (t === 0) return 'string';
  if (t === 1 || t === 10 || t === 14 || t === 18) return 'list';
  if (t === 2 || t === 11 || t === 20) return 'set';
  if (t === 3 || t === 5 || t === 12 || t === 17) return 'zset';
  if (t === 4 || t === 9 || t === 13 || t === 16 || (t >= 22 && t <= 25)) return 'hash';
  if (t === 15 || t === 19 || t === 21) return 'stream';
  return 'module';
}

/**
 * null when the two payloads hold the same value, else where they part. Hash field TTLs are
 * compared within `ttlToleranceMs`, and only where the destination's RDB version can hold them.
 */
export function compareValues(source: Buffer, destination: Buffer, ttlToleranceMs: number): ValueDifference | null {
  if (source.equals(destination)) return null;
  const a = parseDumpPayload(source);
  const b = parseDumpPayload(destination);
  if (a.type !== b.type) return { reason: 'type', source: a.type, destination: b.type };
  const fieldTtls = b.rdbVersion >= FIELD_TTL_RDB;
  return compareKeyValues(a as KeyValue, b as KeyValue, fieldTtls, ttlToleranceMs);
}

function differ(reason: ValueDifference['reason'], source: string, destination: string): ValueDifference {
  return { reason, source, destination };
}

const byBuffer = (x: Buffer, y: Buffer): number => Buffer.compare(x, y);

function compareKeyValues(a: KeyValue, b: KeyValue, fieldTtls: boolean, ttlToleranceMs: number): ValueDifference | null {
  switch (a.type) {
    case 'string': {
      const bv = b.value as Buffer;
      return a.value.equals(bv) ? null : stringDifference(a.value, bv);
    }
    case 'list':
      return compareSequences('list', a.value, b.value as Buffer[]);
    case 'set':
      return compareSequences('set', a.value.slice().sort(byBuffer), (b.value as Buffer[]).slice().sort(byBuffer));
    case 'zset': {
      const x = a.value.slice().sort((p, q) => byBuffer(p[0], q[0]));
      const y = (b.value as Array<[Buffer, number]>).slice().sort((p, q) => byBuffer(p[0], q[0]));
      if (x.length !== y.length) return differ('value', `zset of ${x.length}`, `zset of ${y.length}`);
      for (let i = 0; i < x.length; i++) {
        if (!x[i][0].equals(y[i][0]) || x[i][1] !== y[i][1]) return differ('value', `${preview(x[i][0])} ${x[i][1]}`, `${preview(y[i][0])} ${y[i][1]}`);
      }
      return null;
    }
    case 'hash': {
      const bh = b as Extract<KeyValue, { type: 'hash' }>;
      const x = a.value.slice().sort((p, q) => byBuffer(p[0], q[0]));
      const y = bh.value.slice().sort((p, q) => byBuffer(p[0], q[0]));
      if (x.length !== y.length) return differ('value', `hash of ${x.length}`, `hash of ${y.length}`);
      for (let i = 0; i < x.length; i++) {
        if (!x[i][0].equals(y[i][0])) return differ('value', `field ${preview(x[i][0])}`, `field ${preview(y[i][0])}`);
        if (!x[i][1].equals(y[i][1])) return differ('value', `${preview(x[i][0])}: ${preview(x[i][1])}`, `${preview(y[i][0])}: ${preview(y[i][1])}`);
      }
      if (!fieldTtls) return null;
      const ex = new Map(a.fieldExpires.map((f) => [f.field.toString('latin1'), f.expireMs]));
      const ey = new Map(bh.fieldExpires.map((f) => [f.field.toString('latin1'), f.expireMs]));
      for (const field of new Set([...ex.keys(), ...ey.keys()])) {
        const sa = ex.get(field);
        const sb = ey.get(field);
        if (sa === undefined || sb === undefined || Math.abs(sa - sb) > ttlToleranceMs) {
          const name = preview(Buffer.from(field, 'latin1'));
          return differ('ttl', `field ${name} ${sa === undefined ? 'no TTL' : `expires ${new Date(sa).toISOString()}`}`, `field ${name} ${sb === undefined ? 'no TTL' : `expires ${new Date(sb).toISOString()}`}`);
        }
      }
      return null;
    }
    case 'stream':
      return compareStreams(a.value, b.value as StreamValue);
    case 'module':
      // a module value is opaque to us: only equal payloads (checked above) prove equality
      return differ('value', `module ${a.value.moduleName} (${a.value.raw.length} bytes)`, `module value of ${(b.value as { raw: Buffer }).raw.length} bytes`);
  }
}

function compareSequences(kind: string, x: Buffer[], y: Buffer[]): ValueDifference | null {
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (!x[i].equals(y[i])) return differ('value', `${kind}[${i}] ${preview(x[i])}`, `${kind}[${i}] ${preview(y[i])}`);
  return x.length === y.length ? null : differ('value', `${kind} of ${x.length}`, `${kind} of ${y.length}`);
}

function compareStreams(x: StreamValue, y: StreamValue): ValueDifference | null {
  if (x.entries.length !== y.entries.length) return differ('value', `${x.entries.length} entries`, `${y.entries.length} entries`);
  for (let i = 0; i < x.entries.length; i++) {
    const [p, q] = [x.entries[i], y.entries[i]];
    if (p.id !== q.id || p.fields.length !== q.fields.length || p.fields.some((f, j) => !f.equals(q.fields[j]))) return differ('value', `entry ${p.id}`, `entry ${q.id}${p.id === q.id ? ' (other fields)' : ''}`);
  }
  if (x.lastId !== y.lastId) return differ('value', `last id ${x.lastId}`, `last id ${y.lastId}`);
  // 7.0+ metadata, where both servers keep it
  if (x.maxDeletedId !== null && y.maxDeletedId !== null && x.maxDeletedId !== y.maxDeletedId) return differ('value', `max deleted id ${x.maxDeletedId}`, `max deleted id ${y.maxDeletedId}`);
  if (x.entriesAdded !== null && y.entriesAdded !== null && x.entriesAdded !== y.entriesAdded) return differ('value', `${x.entriesAdded} entries added`, `${y.entriesAdded} entries added`);
  const gx = new Map(x.groups.map((g) => [g.name.toString('latin1'), g]));
  const gy = new Map(y.groups.map((g) => [g.name.toString('latin1'), g]));
  for (const name of new Set([...gx.keys(), ...gy.keys()])) {
    const label = `group ${preview(Buffer.from(name, 'latin1'))}`;
    const a = gx.get(name);
    const b = gy.get(name);
    if (a === undefined || b === undefined) return differ('stream-group', a === undefined ? `no ${label}` : label, b === undefined ? `no ${label}` : label);
    const d = compareGroups(label, a, b);
    if (d !== null) return d;
  }
  return null;
}

/**
 * A consumer group: its last delivered id and its pending entries (id, owner, delivery
 * count). Delivery and seen times are left out: a destination fed by commands stamps its own.
 */
function compareGroups(label: string, a: StreamGroup, b: StreamGroup): ValueDifference | null {
  if (a.lastDeliveredId !== b.lastDeliveredId) return differ('stream-group', `${label} last id ${a.lastDeliveredId}`, `${label} last id ${b.lastDeliveredId}`);
  const owners = (g: StreamGroup): Map<string, string> => {
    const m = new Map<string, string>();
    for (const c of g.consumers) for (const id of c.pending) m.set(id, c.name.toString('latin1'));
    return m;
  };
  const oa = owners(a);
  const ob = owners(b);
  const pel = (g: StreamGroup, o: Map<string, string>): string[] => g.pending.map((p) => `${p.id} ${JSON.stringify(o.get(p.id) ?? '')} x${p.deliveryCount}`);
  const pa = pel(a, oa);
  const pb = pel(b, ob);
  if (pa.length !== pb.length) return differ('stream-group', `${label} ${pa.length} pending`, `${label} ${pb.length} pending`);
  for (let i = 0; i < pa.length; i++) if (pa[i] !== pb[i]) return differ('stream-group', `${label} pending ${pa[i]}`, `${label} pending ${pb[i]}`);
  const consumers = (g: StreamGroup): string => g.consumers.map((c) => c.name.toString('latin1')).sort().join('\n');
  if (consumers(a) !== consumers(b)) return differ('stream-group', `${label} ${a.consumers.length} consumers`, `${label} ${b.consumers.length} consumers`);
  return null;
}
