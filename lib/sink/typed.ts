import { hashTagForSlot, slotOf } from '../cluster/slots';
import type { CommandArg } from '../resp/encoder';
import type { KeyValue, StreamId, StreamValue } from '../rdb';

/** Elements per command: keeps each command well under proto-max-bulk-len and quick to run. */
const PER_COMMAND = 500;

export interface TypedTarget {
  /** redis_version of the destination as [major, minor]. */
  version: [number, number];
}

export interface TypedPart {
  /** The first part of the key: replaces whatever the destination had under that name. */
  first: boolean;
  /** The last part: sets the key's TTL. */
  last: boolean;
  expireMs: number | null;
}

/**
 * Field TTLs (7.4+) that a destination older than 7.4 cannot hold, of the snapshot's hashes
 * and of the stream's commands (withoutFieldTtlCommand); counted, not silently lost.
 */
export class TypedLimits {
  droppedFieldTtls = 0;
}

const STAGING = Buffer.from('redis-sync:part:');

/**
 * Where a key written with typed commands is built before it takes its name (under "skip
 * existing", see SnapshotKeys.commands): in the key's hash slot (its first `{…}` is
 * the tag of that slot), so the rename is a one-slot command on a cluster, and under the
 * sync's own `redis-sync:` prefix, which the precheck's emptiness check leaves aside. The
 * key's name follows, so two keys never share one.
 */
export function stagingKey(key: Buffer): Buffer {
  return Buffer.concat([STAGING, Buffer.from(`{${hashTagForSlot(slotOf(key))}}:`), key]);
}

function atLeast(v: [number, number], major: number, minor: number): boolean {
  return v[0] > major || (v[0] === major && v[1] >= minor);
}

/**
 * Writes a decoded value with plain commands, for a destination that cannot RESTORE the
 * payload (an older RDB version) or for a key too big for one RESTORE. The commands of one
 * key run in order on one node; `first` starts with DEL, so a repeated full sync never
 * appends to what an earlier one wrote.
 */
export function typedCommands(key: Buffer, v: KeyValue, part: TypedPart, target: TypedTarget, limits: TypedLimits): CommandArg[][] {
  const out: CommandArg[][] = [];
  if (part.first && v.type !== 'string') out.push(['DEL', key]);
  const chunked = <T>(items: T[], head: CommandArg[], flat: (item: T) => CommandArg[]): void => {
    for (let i = 0; i < items.length; i += PER_COMMAND) out.push([...head, ...items.slice(i, i + PER_COMMAND).flatMap(flat)]);
  };
  switch (v.type) {
    case 'string':
      out.push(part.first ? ['SET', key, v.value] : ['APPEND', key, v.value]);
      break;
    case 'list':
      chunked(v.value, ['RPUSH', key], (x) => [x]);
      break;
    case 'set':
      chunked(v.value, ['SADD', key], (x) => [x]);
      break;
    case 'zset':
      chunked(v.value, ['ZADD', key], ([m, s]) => [s, m]);
      break;
    case 'hash':
      chunked(v.value, ['HSET', key], ([f, x]) => [f, x]);
      if (atLeast(target.version, 7, 4)) for (const fe of v.fieldExpires) out.push(['HPEXPIREAT', key, fe.expireMs, 'FIELDS', 1, fe.field]);
      else limits.droppedFieldTtls += v.fieldExpires.length;
      break;
    case 'stream':
      streamCommands(key, v.value, part, target, out);
      break;
    default:
      throw new Error(`a module value (${v.value.moduleName}) can only be copied by RESTORE into a destination that has the module`);
  }
  if (part.last && part.expireMs !== null) out.push(['PEXPIREAT', key, part.expireMs]);
  return out;
}

function streamCommands(key: Buffer, s: StreamValue, part: TypedPart, target: TypedTarget, out: CommandArg[][]): void {
  const gone = part.last ? deletedPending(s, part.first) : [];
  for (let i = 0, j = 0; i < s.entries.length || j < gone.length; ) {
    if (j === gone.length || (i < s.entries.length && compareIds(s.entries[i].id, gone[j]) < 0)) {
      const e = s.entries[i++];
      out.push(['XADD', key, e.id, ...e.fields]);
    } else out.push(['XADD', key, gone[j++], 'x', 'x']); // for its claims only: deleted after them
  }
  if (!part.last) return;
  const v7 = atLeast(target.version, 7, 0);
  if (part.first && s.entries.length === 0 && gone.length === 0) {
    // An empty stream still exists (and keeps its last id): create it with one entry trimmed away.
    const id = s.lastId === '0-0' ? '0-1' : s.lastId;
    out.push(['XADD', key, 'MAXLEN', '0', id, 'x', 'x']);
  }
  const setid: CommandArg[] = ['XSETID', key, s.lastId];
  if (v7 && s.entriesAdded !== null) setid.push('ENTRIESADDED', s.entriesAdded);
  if (v7 && s.maxDeletedId !== null) setid.push('MAXDELETEDID', s.maxDeletedId);
  out.push(setid);
  for (const g of s.groups) {
    const create: CommandArg[] = ['XGROUP', 'CREATE', key, g.name, g.lastDeliveredId];
    if (v7 && g.entriesRead !== null) create.push('ENTRIESREAD', g.entriesRead);
    out.push(create);
    const owner = new Map<string, Buffer>();
    for (const c of g.consumers) {
      if (atLeast(target.version, 6, 2)) out.push(['XGROUP', 'CREATECONSUMER', key, g.name, c.name]);
      for (const id of c.pending) owner.set(id, c.name);
    }
    for (const p of g.pending) {
      const consumer = owner.get(p.id);
      if (consumer === undefined) continue;
      out.push(['XCLAIM', key, g.name, consumer, 0, p.id, 'TIME', p.deliveryTimeMs, 'RETRYCOUNT', p.deliveryCount, 'FORCE', 'JUSTID']);
    }
  }
  if (gone.length === 0) return;
  out.push(['XDEL', key, ...gone]);
  // XDEL moved the greatest deleted id (7.0+): set it back
  if (v7) out.push(setid);
}

/**
 * The ids that consumers hold pending although their entries were deleted (XDEL, trimming):
 * XCLAIM makes a pending entry only for an entry that exists (xclaimCommand in t_stream.c,
 * 5.0 on), so each is added before the claims and deleted after them. Only ids that can
 * still be added in order: any, when the stream comes whole; in the last part of one that
 * comes in parts, those above that part's first entry (the earlier parts hold lower ids). The
 * claims of the others claim nothing (the writer counts them as lost pending entries).
 */
function deletedPending(s: StreamValue, whole: boolean): StreamId[] {
  const floor = whole ? null : s.entries.length > 0 ? s.entries[0].id : undefined;
  if (floor === undefined || s.groups.length === 0) return [];
  const present = new Set(s.entries.map((e) => e.id));
  const gone = new Set<StreamId>();
  for (const g of s.groups) {
    for (const c of g.consumers) {
      for (const id of c.pending) if (!present.has(id) && (floor === null || compareIds(id, floor) > 0)) gone.add(id);
    }
  }
  return [...gone].sort(compareIds);
}

function compareIds(a: StreamId, b: StreamId): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as !== bs ? (as < bs ? -1 : 1) : 0;
}
