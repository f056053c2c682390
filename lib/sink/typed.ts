import type { CommandArg } from '../resp/encoder';
import type { KeyValue } from '../rdb/types';

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

/** Field TTLs (7.4+) that a destination older than 7.4 cannot hold; counted, not silently lost. */
export class TypedLimits {
  droppedFieldTtls = 0;
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

function streamCommands(key: Buffer, s: Extract<KeyValue, { type: 'stream' }>['value'], part: TypedPart, target: TypedTarget, out: CommandArg[][]): void {
  for (const e of s.entries) out.push(['XADD', key, e.id, ...e.fields]);
  if (!part.last) return;
  const v7 = atLeast(target.version, 7, 0);
  if (part.first && s.entries.length === 0) {
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
}
